/**
 * The one rule of paging tokens, for every service (EC2's NextToken, KMS's
 * Marker): a token is a stable position, the sort key of the last item
 * returned, never an offset. The next page starts after that key, so an item
 * deleted from (or added to) a page already read moves nothing: no item that
 * still exists is skipped, none is given twice. The token is opaque to
 * callers (base64url of JSON naming the list it is for); a token that is not
 * one of ours, or is for another list, is refused by the caller in its
 * service's words (`decodePosition` answers undefined).
 */

/** An item's place in its list: the values the list is ordered by, the last one unique (an id). */
export type PageKey = readonly (string | number)[];

/** Compare two keys element by element (numbers as numbers, strings by code unit, as SQLite's BINARY collation orders them). */
export function compareKeys(a: PageKey, b: PageKey): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    const sx = String(x);
    const sy = String(y);
    if (sx !== sy) return sx < sy ? -1 : 1;
  }
  return a.length - b.length;
}

/** The token that resumes `list` after the item whose key is `key`. */
export function encodePosition(list: string, key: PageKey): string {
  return Buffer.from(JSON.stringify({ list, after: key })).toString('base64url');
}

/** The key a token resumes after, or undefined when it is not a token of `list`. */
export function decodePosition(token: string, list: string): PageKey | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(token)) return undefined;
  let parsed: { list?: unknown; after?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!parsed || parsed.list !== list || !Array.isArray(parsed.after) || parsed.after.length === 0) return undefined;
  if (!parsed.after.every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) return undefined;
  return parsed.after as PageKey;
}

/**
 * One page of `rows`: at most `size` items (all when undefined) after `after`,
 * in key order, and the key of the last one when more follow.
 */
export function pageAfter<R>(rows: R[], keyOf: (r: R) => PageKey, after: PageKey | undefined, size: number | undefined): { page: R[]; last?: PageKey } {
  const keyed = rows.map((r) => ({ r, k: keyOf(r) })).sort((a, b) => compareKeys(a.k, b.k));
  const start = after === undefined ? 0 : keyed.findIndex((x) => compareKeys(x.k, after) > 0);
  const rest = start < 0 ? [] : keyed.slice(start);
  if (size === undefined || rest.length <= size) return { page: rest.map((x) => x.r) };
  const page = rest.slice(0, size);
  return { page: page.map((x) => x.r), last: page.at(-1)!.k };
}
