import fs from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attach, createVolume, detach, head, volumeHome } from '../helpers/volumes.js';

const GiB = 2 ** 30;
const FULL = process.env.KMSVOL_FUZZ_FULL === '1';

/**
 * The card's sector arithmetic is C (native/src/fuse_server.c): partial first
 * and last sectors, read-modify-write, clipping at the end of the volume. It is
 * checked here through the mounted file against a byte model, with requests
 * fast-check places around sector boundaries at the start and the end.
 */
const NEAR = 6 * 4096;
const request = fc.record({
  end: fc.boolean(), // near the start, or near the end of the volume
  at: fc.integer({ min: 0, max: NEAR }),
  wiggle: fc.constantFrom(0, 1, 17, 511, 512, 4095, 4096, 4097),
  length: fc.oneof(fc.integer({ min: 1, max: 3 * 4096 + 1 }), fc.constantFrom(1, 4095, 4096, 4097, 8192, 131072)),
  write: fc.boolean(),
  byte: fc.integer({ min: 0, max: 255 }),
});

describe("the C server's sector arithmetic, through the mounted file", () => {
  it(`${FULL ? 3000 : 400} random reads and writes around sector boundaries and the end of the volume match a byte model, and again after reattach`, () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const fd = fs.openSync(a.Device, 'r+');
    // The model holds the first and last NEAR + 131072 bytes; the volume starts as zeros.
    const W = NEAR + 131072 + 8192;
    const lo = Buffer.alloc(W);
    const hi = Buffer.alloc(W);
    const hiBase = GiB - W;
    const model = (off: number) => (off < W ? { b: lo, i: off } : { b: hi, i: off - hiBase });
    const ops = fc.sample(request, { numRuns: FULL ? 3000 : 400, seed: 13 });
    for (const r of ops) {
      const off = r.end ? GiB - NEAR + r.at - r.wiggle : r.at + r.wiggle;
      if (off < 0) continue;
      const want = Math.max(0, Math.min(r.length, GiB - off)); // clipped at the end of the volume
      if (r.write) {
        const data = Buffer.alloc(r.length, r.byte);
        if (off >= GiB) {
          expect(() => fs.writeSync(fd, data, 0, data.length, off)).toThrow(/ENOSPC/);
          continue;
        }
        expect(fs.writeSync(fd, data, 0, data.length, off), `write ${r.length} at ${off}`).toBe(want);
        for (let k = 0; k < want; k++) {
          const m = model(off + k);
          m.b[m.i] = r.byte;
        }
      } else {
        const got = Buffer.alloc(r.length);
        expect(fs.readSync(fd, got, 0, r.length, off), `read ${r.length} at ${off}`).toBe(want);
        for (let k = 0; k < want; k++) {
          const m = model(off + k);
          if (got[k] !== m.b[m.i]) throw new Error(`read ${r.length} at ${off}: byte ${k} is ${got[k]}, the model says ${m.b[m.i]}`);
        }
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, vol);
    const b = attach(ctx.home, vol);
    expect(head(b.Device, W).equals(lo)).toBe(true);
    const tail = Buffer.alloc(W);
    const rfd = fs.openSync(b.Device, 'r');
    fs.readSync(rfd, tail, 0, W, hiBase);
    fs.closeSync(rfd);
    expect(tail.equals(hi)).toBe(true);
    detach(ctx.home, vol);
  });
});
