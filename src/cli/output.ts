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
 * and their cells wrapped at spaces. A value with no space in it (an id, an
 * ARN, a date) is never broken while narrowing headers (wrapped at their
 * words' capitals) and other columns can make room; when nothing else can,
 * the widest columns are broken first (at a + / T . : or - where there is
 * one). Nothing is cut (cli-table3's
 * colWidths count the padding; a table is its colWidths plus one border per
 * column and one).
 */
function fitted(head: string[], rows: string[][], width: number): string {
  if (rows.length === 1 && head.length > 1 && natural(head, rows) > width)
    return fitted(
      [],
      head.map((h, i) => [h, rows[0]![i]!]),
      width,
    );
  const n = head.length || rows[0]!.length;
  const column = (i: number) => rows.map((r) => r[i]!);
  const longest = (xs: string[], split: RegExp) => Math.max(0, ...xs.flatMap((x) => x.split(split).map((w) => w.length)));
  const nat = Array.from({ length: n }, (_, i) => Math.max(head[i]?.length ?? 0, ...column(i).map((c) => c.length)) + 2);
  // Each column's width at three levels: its cells' longest word (at least one character), its header's too, all of it.
  const cellWords = nat.map((w, i) => Math.min(w, Math.max(1, longest(column(i), / /)) + 2));
  const headWords = cellWords.map((w, i) => Math.min(nat[i]!, Math.max(w, longest([head[i] ?? ''], HEAD_BREAK) + 2)));
  const room = width - n - 1;
  const sum = (ws: number[]) => ws.reduce((a, b) => a + b, 0);
  const levels = [cellWords, headWords, nat];
  const k = levels.filter((ws) => sum(ws) <= room).length - 1; // each level is at least as wide as the one before
  const colWidths = k < 0 ? shrink(cellWords, room) : k === 2 ? nat : widen(levels[k]!, levels[k + 1]!, room);
  const t = new (cliTable())({
    head: head.map((h, i) => wrapText(h, colWidths[i]! - 2, HEAD_BREAK)),
    style: { head: [], border: [] },
    colWidths,
  });
  for (const r of rows) t.push(r.map((c, i) => wrapText(c, colWidths[i]! - 2, / /)));
  return t.toString();
}

/** Where a header may be wrapped: at a space, or before a capital that follows a small letter (Availability|Zone). */
const HEAD_BREAK = / |(?<=[a-z])(?=[A-Z])/;

/** Where a piece too long for its column is broken first, in this order: before a +, after a / T . : or -. */
const SOFT_BREAKS: [string, number][] = [
  ['+', 0],
  ['/', 1],
  ['T', 1],
  ['.', 1],
  [':', 1],
  ['-', 1],
];

/** `text` in lines of at most `width`, broken where `at` matches (a space is dropped there); a longer piece is broken after its last punctuation that fits, else anywhere. */
function wrapText(text: string, width: number, at: RegExp): string {
  const w = Math.max(1, width);
  const lines: string[] = [];
  let line = '';
  const pieces = text.split(new RegExp(`(${at.source})`)).filter((p) => p !== undefined);
  for (let k = 0; k < pieces.length; k += 2) {
    const sep = k > 0 ? pieces[k - 1]! : '';
    let piece = pieces[k]!;
    if (k > 0 && line.length + sep.length + piece.length <= w) {
      line += sep + piece;
      continue;
    }
    if (k > 0) lines.push(line);
    while (piece.length > w) {
      const head = piece.slice(0, w + 1);
      const soft = SOFT_BREAKS.map(([c, after]) => head.lastIndexOf(c) + after).find((j) => j > w / 2 && j <= w);
      const cut = soft ?? w;
      lines.push(piece.slice(0, cut));
      piece = piece.slice(cut);
    }
    line = piece;
  }
  lines.push(line);
  return lines.join('\n');
}

function natural(head: string[], rows: string[][]): number {
  return head.reduce((sum, h, i) => sum + Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 3, 1);
}

/** From `floor` toward `nat` (wider than `room`), the room left shared in proportion to what each column lacks. */
function widen(floor: number[], nat: number[], room: number): number[] {
  const lack = nat.map((w, i) => w - floor[i]!);
  const total = lack.reduce((a, b) => a + b, 0);
  const extra = room - floor.reduce((a, b) => a + b, 0);
  const out = floor.map((w, i) => w + Math.floor((extra * lack[i]!) / total));
  let left = room - out.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0 && i < out.length; i++)
    if (out[i]! < nat[i]!) {
      out[i]!++;
      left--;
    }
  return out;
}

/** Column widths summing to at most `room`: the widest columns narrowed first, none below 6 (a narrow one keeps its width). */
function shrink(widths: number[], room: number): number[] {
  const out = [...widths];
  for (;;) {
    const wide = out.map((_w, i) => i).filter((i) => out[i]! > 6);
    const over = out.reduce((a, b) => a + b, 0) - room;
    if (over <= 0 || wide.length === 0) return out;
    const widest = Math.max(...wide.map((i) => out[i]!));
    const next = Math.max(6, ...wide.map((i) => out[i]!).filter((w) => w < widest));
    const at = wide.filter((i) => out[i] === widest);
    for (const i of at) out[i] = Math.max(next, widest - Math.ceil(over / at.length));
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
