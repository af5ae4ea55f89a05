import { UsageError } from '../errors.js';
import { cliTable, jmespath, yaml } from '../lazy.js';
import { toWire } from '../wire.js';

/**
 * Output as the AWS CLI prints it: JSON (4-space indent, blobs base64, dates
 * ISO 8601 with microseconds), or text; `--query` applies JMESPath first.
 */
export type OutputFormat = 'json' | 'text' | 'table' | 'yaml';

export function isoMicros(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

function isEmptyObject(v: unknown): boolean {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;
}

/**
 * The AWS CLI's table format, drawn with cli-table3: a titled table per
 * object (its scalars as columns), a row per item for lists of objects, and
 * nested objects and lists as titled tables below their parent.
 */
export function formatTable(data: unknown, title?: string): string {
  const out: string[] = [];
  const section = (name: string | undefined, value: unknown): void => {
    const items = Array.isArray(value) ? value : [value];
    if (items.length === 0) return;
    if (items.every(isScalar)) {
      const t = new (cliTable())({ head: name ? [name] : [], style: { head: [], border: [] } });
      for (const v of items) t.push([scalar(v)]);
      out.push(t.toString());
      return;
    }
    const objects = items.filter((v): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v));
    const cols = [...new Set(objects.flatMap((o) => Object.keys(o).filter((k) => isScalar(o[k]))))];
    if (cols.length) {
      const t = new (cliTable())({ head: cols, style: { head: [], border: [] } });
      for (const o of objects) t.push(cols.map((c) => (o[c] === undefined ? '' : scalar(o[c]))));
      if (name) out.push(`${name}`);
      out.push(t.toString());
    }
    for (const o of objects) for (const [k, v] of Object.entries(o)) if (!isScalar(v)) section(name ? `${name}.${k}` : k, v);
  };
  if (title) out.push(title);
  section(undefined, data);
  return `${out.join('\n')}\n`;
}

export function render(result: unknown, format: OutputFormat, query?: string, title?: string): string {
  let data = toWire(result, isoMicros);
  if (query !== undefined) {
    try {
      data = jmespath().search(data as object, query);
    } catch (e) {
      throw new UsageError(`Bad value for --query ${query}: ${(e as Error).message}`);
    }
  }
  if (format === 'text') return formatText(data);
  if (format === 'yaml') return data === undefined || (isEmptyObject(data) && query === undefined) ? '' : yaml().stringify(data);
  if (format === 'table') return data === undefined || (isEmptyObject(data) && query === undefined) ? '' : formatTable(data, title);
  if (data === null || data === undefined) return query !== undefined ? 'null\n' : '';
  if (typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length === 0 && query === undefined) return '';
  return `${JSON.stringify(data, null, 4)}\n`;
}

/** The AWS CLI's text format: scalars tab-separated on one line, nested objects on lines prefixed by their upper-cased key. */
export function formatText(data: unknown): string {
  const lines: string[] = [];
  walk(data, undefined, lines);
  return lines.length ? `${lines.join('\n')}\n` : '';
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
