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

/** The width tables must fit: $COLUMNS, else the terminal's, else 120. */
function tableWidth(): number {
  const columns = Number(process.env.COLUMNS);
  if (Number.isInteger(columns) && columns > 0) return columns;
  return process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 120;
}

/**
 * One table within `width` columns, as the AWS CLI fits its tables: one row
 * too wide is turned to key | value rows; then columns too wide are narrowed
 * in proportion and their cells wrapped (cli-table3's colWidths count the
 * padding; a table is its colWidths plus one border per column and one).
 */
function fitted(head: string[], rows: string[][], width: number): string {
  if (rows.length === 1 && head.length > 1 && natural(head, rows) > width)
    return fitted(
      [],
      head.map((h, i) => [h, rows[0]![i]!]),
      width,
    );
  const natWidths = head.length
    ? head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 2)
    : rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
  const room = width - natWidths.length - 1;
  const total = natWidths.reduce((a, b) => a + b, 0);
  const colWidths = total <= room ? natWidths : shrink(natWidths, room);
  const t = new (cliTable())({ head, style: { head: [], border: [] }, colWidths, wordWrap: true, wrapOnWordBoundary: false });
  for (const r of rows) t.push(r);
  return t.toString();
}

function natural(head: string[], rows: string[][]): number {
  return head.reduce((sum, h, i) => sum + Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 3, 1);
}

/** Column widths summing to at most `room`: narrow columns keep theirs, the rest share what is left (each at least 6). */
function shrink(widths: number[], room: number): number[] {
  const out = [...widths];
  for (;;) {
    const wide = out.map((_w, i) => i).filter((i) => out[i]! > 6);
    const over = out.reduce((a, b) => a + b, 0) - room;
    if (over <= 0 || wide.length === 0) return out;
    const widest = Math.max(...wide.map((i) => out[i]!));
    for (const i of wide) if (out[i] === widest) out[i] = Math.max(6, widest - Math.ceil(over / wide.length));
  }
}

/**
 * The AWS CLI's table format, drawn with cli-table3: a titled table per
 * object (its scalars as columns), a row per item for lists of objects, and
 * nested objects and lists as titled tables below their parent; each fits
 * the terminal (tableWidth).
 */
export function formatTable(data: unknown, title?: string): string {
  const width = tableWidth();
  const out: string[] = [];
  const section = (name: string | undefined, value: unknown): void => {
    const items = Array.isArray(value) ? value : [value];
    if (items.length === 0) return;
    if (items.every(isScalar)) {
      out.push(
        fitted(
          name ? [name] : [],
          items.map((v) => [scalar(v)]),
          width,
        ),
      );
      return;
    }
    const objects = items.filter((v): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v));
    const cols = [...new Set(objects.flatMap((o) => Object.keys(o).filter((k) => isScalar(o[k]))))];
    if (cols.length) {
      if (name) out.push(`${name}`);
      out.push(
        fitted(
          cols,
          objects.map((o) => cols.map((c) => (o[c] === undefined ? '' : scalar(o[c])))),
          width,
        ),
      );
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
