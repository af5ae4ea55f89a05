import { describe, expect, it } from 'vitest';
import { clip, imageOffset, isAligned, span } from '../../../src/volume/offsets.js';

describe('sector offset arithmetic', () => {
  it('spans every (offset, length) pair over three sectors exactly', () => {
    const S = 16; // a small sector size makes the exhaustive check cheap; the math is size-independent
    for (let off = 0; off < 3 * S; off++) {
      for (let len = 1; off + len <= 3 * S; len++) {
        const s = span(off, len, S);
        const touched = new Set<number>();
        for (let b = off; b < off + len; b++) touched.add(Math.floor(b / S));
        expect(s.firstSector).toBe(Math.min(...touched));
        expect(s.count).toBe(touched.size);
        expect(s.headSkip).toBe(off - s.firstSector * S);
        expect(s.headSkip + len + s.tailSkip).toBe(s.count * S);
        expect(isAligned(off, len, S)).toBe(s.headSkip === 0 && s.tailSkip === 0);
      }
    }
  });

  it('carries offsets beyond 4 GiB exactly', () => {
    const off = 5 * 2 ** 30 + 4096 * 3 + 7;
    const s = span(off, 10_000);
    expect(s.firstSector).toBe((5 * 2 ** 30) / 4096 + 3);
    expect(s.headSkip).toBe(7);
    expect(s.count).toBe(3);
    expect(imageOffset(16 << 20, s.firstSector)).toBe((16 << 20) + 5 * 2 ** 30 + 4096 * 3);
  });

  it('clips requests at the end of the volume', () => {
    expect(clip(0, 100, 50)).toBe(50);
    expect(clip(50, 100, 50)).toBe(0);
    expect(clip(60, 100, 50)).toBe(0);
    expect(clip(10, 20, 50)).toBe(20);
  });
});
