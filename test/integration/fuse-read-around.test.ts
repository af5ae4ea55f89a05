import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { createVolume, detach, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

const GiB = 2 ** 30;
const KiB = 1024;
const MiB = 1024 * KiB;
const WINDOW = 64 * KiB; // the card's default read-around window (READ_AROUND in native/src/fuse_server.c)
const MID = 1 << 20; // a window boundary inside the volume
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
/** Drop a file's pages from the page cache, written back first (dd's nocache: POSIX_FADV_DONTNEED). */
const dropCache = (file: string) => {
  const fd = fs.openSync(file, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
};
/** Bytes of a file in the page cache (util-linux's fincore). */
const resident = (file: string) => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());

/**
 * A small read that misses the page cache makes the card read the aligned
 * 64 KiB window of the image around it (read_around, native/src/fuse_server.c).
 * Checked from outside: the bytes read through an O_DIRECT descriptor (the
 * loop device's way) against a model, with the image's pages evicted between
 * reads so the window path runs, and the image's resident pages counted by
 * util-linux's fincore.
 */
function setUp(encrypted: boolean, env: Record<string, string> = {}) {
  const ctx = volumeHome();
  const vol = encrypted ? createVolume(ctx.home, ctx.key) : kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId;
  const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol], env);
  if (r.code !== 0) throw new Error(`attach-volume failed (${r.code}): ${r.stderr}`);
  const image = path.join(ctx.home, 'volumes', `${vol}.img`);
  const fd = fs.openSync(r.json.Device, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  // What the volume holds: random bytes around MID and up to the end, zeros elsewhere.
  const low = crypto.randomBytes(8 * WINDOW);
  const high = crypto.randomBytes(3 * WINDOW);
  fs.writeSync(fd, low, 0, low.length, MID - 4 * WINDOW);
  fs.writeSync(fd, high, 0, high.length, GiB - high.length);
  fs.fsyncSync(fd);
  const model = (off: number, len: number): Buffer => {
    const out = Buffer.alloc(Math.max(0, Math.min(len, GiB - off)));
    for (const [base, b] of [
      [MID - 4 * WINDOW, low],
      [GiB - high.length, high],
    ] as const) {
      const from = Math.max(off, base);
      const to = Math.min(off + out.length, base + b.length);
      if (from < to) b.copy(out, from - off, from - base, to - base);
    }
    return out;
  };
  /** Drop the image's pages from the page cache, so the next read misses. */
  const evict = () => dropCache(image);
  const read = (off: number, len: number) => {
    const b = Buffer.alloc(len);
    return b.subarray(0, fs.readSync(fd, b, 0, len, off));
  };
  const write = (off: number, b: Buffer) => expect(fs.writeSync(fd, b, 0, b.length, off)).toBe(b.length);
  const done = () => {
    fs.closeSync(fd);
    detach(ctx.home, vol);
  };
  return { read, write, model, evict, resident: () => resident(image), done };
}

/** Reads fast-check places around window boundaries (near MID and the end of the volume), 1 byte to 3 windows long. */
const reads = fc.record({
  base: fc.constantFrom(MID - 2 * WINDOW, MID - WINDOW, MID, MID + WINDOW, GiB - 2 * WINDOW, GiB - WINDOW),
  delta: fc.integer({ min: -9000, max: 9000 }),
  length: fc.oneof(fc.integer({ min: 1, max: 9000 }), fc.constantFrom(1, 4095, 4096, 4097, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW)),
  evict: fc.boolean(),
});

describe("the card's read-around window", () => {
  it('a 4 KiB read that misses brings in the aligned 64 KiB window of the image; KMSVOL_READ_AROUND_KB=0 turns it off, a value that is not decimal KiB leaves the default', () => {
    for (const [env, more] of [
      [{}, (d: number) => expect(d).toBeGreaterThanOrEqual(WINDOW)],
      [{ KMSVOL_READ_AROUND_KB: '0' }, (d: number) => expect(d).toBeLessThan(WINDOW / 2)],
      // Not decimal KiB (strtoull would take -1 as the largest value, a 1 MiB window): the default.
      [
        { KMSVOL_READ_AROUND_KB: '-1' },
        (d: number) => {
          expect(d).toBeGreaterThanOrEqual(WINDOW);
          expect(d).toBeLessThan(2 * WINDOW);
        },
      ],
    ] as const) {
      const v = setUp(true, env);
      v.evict();
      const before = v.resident();
      const off = MID + 5 * 4096; // inside the window [MID, MID + 64 KiB)
      expect(v.read(off, 4096).equals(v.model(off, 4096))).toBe(true);
      more(v.resident() - before);
      v.done();
    }
  });

  for (const encrypted of [true, false]) {
    it(`${encrypted ? 'encrypted' : 'unencrypted'}: 200 large and small writes and reads in 8 MiB, some straight after the write (dirty in the image's cache), some after an eviction, match a model`, () => {
      const v = setUp(encrypted);
      const base = MID - 4 * WINDOW;
      const mem = v.model(base, 8 * MiB);
      const ops = fc.record({
        write: fc.boolean(),
        at: fc.oneof(
          fc.integer({ min: 0, max: 8 * MiB - 1 }),
          fc.integer({ min: 0, max: (8 * MiB) / 4096 - 1 }).map((n) => n * 4096),
        ),
        length: fc.constantFrom(1, 4096, 100_000, 128 * KiB, 128 * KiB + 512, 768 * KiB, MiB),
        evict: fc.boolean(),
      });
      for (const o of fc.sample(ops, { numRuns: 200, seed: 31 })) {
        const len = Math.min(o.length, 8 * MiB - o.at);
        if (o.evict) v.evict();
        if (o.write) {
          const b = crypto.randomBytes(len);
          v.write(base + o.at, b);
          b.copy(mem, o.at);
        } else {
          const got = v.read(base + o.at, len);
          if (!got.equals(mem.subarray(o.at, o.at + len))) throw new Error(`read ${len} at ${base + o.at} (evicted: ${o.evict}) differs from what was written`);
        }
      }
      v.done();
    });
  }

  for (const encrypted of [true, false]) {
    it(`${encrypted ? 'encrypted' : 'unencrypted'}: 300 O_DIRECT reads around window boundaries and the end of the volume, the cache evicted before half of them, match the bytes written`, () => {
      const v = setUp(encrypted);
      for (const r of fc.sample(reads, { numRuns: 300, seed: 30 })) {
        const off = r.base + r.delta;
        if (r.evict) v.evict();
        const got = v.read(off, r.length);
        const want = v.model(off, r.length);
        if (!got.equals(want)) throw new Error(`read ${r.length} at ${off} (evicted: ${r.evict}): ${got.length} bytes differ from the ${want.length} written`);
      }
      v.done();
    });
  }
});

/** A volume attached with --loop (the card's environment `env`), ext4 made and mounted on it, and a file f of `size` random bytes written and synced. */
function fileOnLoop(env: Record<string, string>, size: number) {
  const ctx = volumeHome();
  const vol = createVolume(ctx.home, ctx.key);
  const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--loop'], env);
  expect(r.code, r.stderr).toBe(0);
  execFileSync('mkfs.ext4', ['-q', r.json.LoopDevice]);
  const mnt = mountLoop(ctx, r.json.LoopDevice);
  const data = crypto.randomBytes(size);
  fs.writeFileSync(path.join(mnt, 'f'), data);
  execFileSync('sync', ['-f', path.join(mnt, 'f')]);
  return { ctx, vol, mnt, data, image: path.join(ctx.home, 'volumes', `${vol}.img`) };
}

describe("the card's direct writes", () => {
  it("through ext4 on the loop device, the writes that queue behind another reach the image with O_DIRECT: not all of a 128 MiB file stays in the image's page cache, and it reads back; KMSVOL_DIRECT_WRITE_KB=0 keeps all of it", () => {
    for (const [env, check] of [
      // How many writes find another in progress depends on timing: 72 of 512 MiB stayed on an idle machine, 73 of 128 MiB under
      // the whole suite. All of it (and the file system's metadata) stays when none goes direct.
      [{}, (d: number) => expect(d).toBeLessThan(112 * MiB)],
      [{ KMSVOL_DIRECT_WRITE_KB: '0' }, (d: number) => expect(d).toBeGreaterThanOrEqual(128 * MiB)],
    ] as const) {
      const { ctx, vol, mnt, data, image } = fileOnLoop(env, 128 * MiB);
      check(resident(image));
      unmount(ctx, mnt);
      detach(ctx.home, vol);
      const b = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--loop']);
      const again = mountLoop(ctx, b.json.LoopDevice);
      expect(sha256(fs.readFileSync(path.join(again, 'f')))).toBe(sha256(data));
      unmount(ctx, again);
      detach(ctx.home, vol);
    }
  });

  it('a lone write stays buffered, whatever its size: a 1 MiB write and a 64 KiB one through an O_DIRECT descriptor each leave their ciphertext in the page cache, and read back', () => {
    const v = setUp(true);
    v.evict();
    const large = crypto.randomBytes(MiB);
    let before = v.resident();
    v.write(8 * MiB, large);
    expect(v.resident() - before).toBeGreaterThanOrEqual(MiB);
    const small = crypto.randomBytes(64 * KiB);
    before = v.resident();
    v.write(16 * MiB, small);
    expect(v.resident() - before).toBeGreaterThanOrEqual(64 * KiB);
    v.evict();
    expect(v.read(8 * MiB, MiB).equals(large)).toBe(true);
    expect(v.read(16 * MiB, 64 * KiB).equals(small)).toBe(true);
    v.done();
  });
});

describe("the card's direct reads", () => {
  it("a 1 MiB read of a range the image's page cache holds none of goes to the disk with O_DIRECT: none of it stays in the image's page cache, and it matches what was written; KMSVOL_DIRECT_READ_KB=0 reads it through the page cache", () => {
    for (const [env, added] of [
      [{}, (d: number) => expect(d).toBeLessThan(64 * KiB)],
      [{ KMSVOL_DIRECT_READ_KB: '0' }, (d: number) => expect(d).toBeGreaterThanOrEqual(MiB)],
    ] as const) {
      const v = setUp(true, env);
      v.evict();
      const before = v.resident();
      const off = MID - 4 * WINDOW;
      expect(v.read(off, MiB).equals(v.model(off, MiB))).toBe(true);
      added(v.resident() - before);
      v.done();
    }
  });

  it("through ext4 on the loop device, a file copied out after the caches are dropped leaves its ciphertext out of the image's page cache and reads back whole; KMSVOL_DIRECT_READ_KB=0 keeps it", () => {
    for (const [env, check] of [
      // The file system's own small reads (inodes, extent blocks) still go through the page cache.
      [{}, (d: number) => expect(d).toBeLessThan(16 * MiB)],
      [{ KMSVOL_DIRECT_READ_KB: '0' }, (d: number) => expect(d).toBeGreaterThanOrEqual(64 * MiB)],
    ] as const) {
      const { ctx, vol, mnt, data, image } = fileOnLoop(env, 64 * MiB);
      // Drop the file's cached pages, then the image's, and copy the file out.
      dropCache(path.join(mnt, 'f'));
      dropCache(image);
      expect(sha256(fs.readFileSync(path.join(mnt, 'f')))).toBe(sha256(data));
      check(resident(image));
      unmount(ctx, mnt);
      detach(ctx.home, vol);
    }
  });
});
