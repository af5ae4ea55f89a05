import jmespath from 'jmespath';
import { UsageError } from '../errors.js';

/**
 * Output as the AWS CLI prints it: JSON (4-space indent, blobs base64, dates
 * ISO 8601 with microseconds), or text; `--query` applies JMESPath first.
 */
export type OutputFormat = 'json' | 'text';

/** Convert library values to the CLI's JSON: Buffers become base64, Dates ISO strings. */
export function toWire(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (v instanceof Date) return isoMicros(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toWire(x);
    return out;
  }
  return v;
}

export function isoMicros(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

export function render(result: unknown, format: OutputFormat, query?: string): string {
  let data = toWire(result);
  if (query !== undefined) {
    try {
      data = jmespath.search(data as object, query);
    } catch (e) {
      throw new UsageError(`Bad value for --query ${query}: ${(e as Error).message}`);
    }
  }
  if (format === 'text') return formatText(data);
  if (data === null || data === undefined) return query !== undefined ? 'null\n' : '';
  if (typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length === 0 && query === undefined) return '';
  return JSON.stringify(data, null, 4) + '\n';
}

/** The AWS CLI's text format: scalars tab-separated on one line, nested objects on lines prefixed by their upper-cased key. */
export function formatText(data: unknown): string {
  const lines: string[] = [];
  walk(data, undefined, lines);
  return lines.length ? lines.join('\n') + '\n' : '';
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

function walk(data: unknown, id: string | undefined, out: string[]): void {
  const prefix = id ? [id.toUpperCase()] : [];
  if (Array.isArray(data)) {
    if (data.every(isScalar)) {
      if (data.length) out.push([...prefix, ...data.map(scalar)].join('\t'));
      return;
    }
    for (const item of data) walk(item, id, out);
    return;
  }
  if (data && typeof data === 'object') {
    const entries = Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const scalars = entries.filter(([, v]) => isScalar(v));
    if (scalars.length) out.push([...prefix, ...scalars.map(([, v]) => scalar(v))].join('\t'));
    for (const [k, v] of entries) if (!isScalar(v)) walk(v, k, out);
    return;
  }
  if (data !== undefined) out.push(scalar(data));
}
