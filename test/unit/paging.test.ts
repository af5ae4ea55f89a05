import { describe, expect, it } from 'vitest';
import { compareKeys, decodePosition, encodePosition, pageAfter } from '../../src/paging.js';

describe('paging tokens (src/paging.ts)', () => {
  const rows = [
    { t: 2, id: 'b' },
    { t: 1, id: 'z' },
    { t: 2, id: 'a' },
    { t: 10, id: 'c' },
  ];
  const keyOf = (r: { t: number; id: string }) => [r.t, r.id];

  it('orders by the key, numbers as numbers (10 after 2), then the id', () => {
    expect(pageAfter(rows, keyOf, undefined, undefined).page.map((r) => r.id)).toEqual(['z', 'a', 'b', 'c']);
    expect(compareKeys([2, 'a'], [10, 'a'])).toBeLessThan(0);
  });

  it('a page resumes after the last key given, even when that item is gone', () => {
    const first = pageAfter(rows, keyOf, undefined, 2);
    expect(first.page.map((r) => r.id)).toEqual(['z', 'a']);
    const token = encodePosition('List', first.last!);
    const without = rows.filter((r) => r.id !== 'a' && r.id !== 'z');
    expect(pageAfter(without, keyOf, decodePosition(token, 'List'), 2).page.map((r) => r.id)).toEqual(['b', 'c']);
    expect(pageAfter(without, keyOf, decodePosition(token, 'List'), 2).last).toBeUndefined();
  });

  it('a token of another list, an offset, or bytes that are not ours decode to nothing', () => {
    const token = encodePosition('List', [1, 'z']);
    expect(decodePosition(token, 'Other')).toBeUndefined();
    expect(decodePosition(Buffer.from(JSON.stringify({ op: 'List', at: 5 })).toString('base64url'), 'List')).toBeUndefined();
    expect(decodePosition(Buffer.from(JSON.stringify({ list: 'List', after: [{}] })).toString('base64url'), 'List')).toBeUndefined();
    expect(decodePosition('%%%', 'List')).toBeUndefined();
    expect(decodePosition('', 'List')).toBeUndefined();
  });
});
