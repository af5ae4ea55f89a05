import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GuardedKey, xtsDecrypt, xtsDecryptAsync, xtsEncrypt, xtsEncryptAsync } from '../../../src/native/index.js';
import { referenceXts } from '../../../src/native/reference.js';
import { ROOT } from '../../helpers/cli.js';

function freshKey(): { raw: Buffer; key: GuardedKey } {
  const raw = crypto.randomBytes(64);
  return { raw, key: GuardedKey.fromBuffer(Buffer.from(raw)) };
}

describe('IEEE 1619 XTS-AES-256 known answers', () => {
  const { vectors } = JSON.parse(fs.readFileSync(new URL('../../fixtures/ieee1619-xts256.json', import.meta.url), 'utf8'));
  for (const v of vectors) {
    const ptx = Buffer.alloc(512);
    for (let i = 0; i < 512; i++) ptx[i] = i % 256;
    const ctx = Buffer.from(v.ctx, 'hex');
    const keyBytes = () => Buffer.from(v.key1 + v.key2, 'hex');

    it(`${v.name}: encrypts to the standard's ciphertext (512-byte sector ${v.dataUnit})`, () => {
      const key = GuardedKey.fromBuffer(keyBytes());
      const out = Buffer.alloc(512);
      xtsEncrypt(key, ptx, out, v.dataUnit, 512);
      expect(out.toString('hex')).toBe(v.ctx);
      xtsDecrypt(key, ctx, out, v.dataUnit, 512);
      expect(out.equals(ptx)).toBe(true);
      key.zeroize();
    });

    it(`${v.name}: a different data unit or a flipped bit does not give the standard's ciphertext`, () => {
      const key = GuardedKey.fromBuffer(keyBytes());
      const out = Buffer.alloc(512);
      xtsEncrypt(key, ptx, out, v.dataUnit + 1, 512);
      expect(out.equals(ctx)).toBe(false);
      const bad = Buffer.from(ptx);
      bad[0]! ^= 1;
      xtsEncrypt(key, bad, out, v.dataUnit, 512);
      expect(out.subarray(0, 16).equals(ctx.subarray(0, 16))).toBe(false);
      expect(out.subarray(16).equals(ctx.subarray(16))).toBe(true); // XTS: blocks are independent within a unit
      key.zeroize();
    });
  }
});

describe('native XTS against the node:crypto twin', () => {
  for (const ss of [512, 4096]) {
    it(`random lengths and sector numbers (incl. above 2^32), out-of-place, ${ss}-byte sectors`, () => {
      const { raw, key } = freshKey();
      for (let i = 0; i < 40; i++) {
        const n = 1 + crypto.randomInt(32);
        const first = i % 2 ? crypto.randomInt(2 ** 32, 2 ** 40) : crypto.randomInt(0, 2 ** 20);
        const src = crypto.randomBytes(n * ss);
        const dst = Buffer.alloc(src.length);
        xtsEncrypt(key, src, dst, first, ss);
        expect(dst.equals(referenceXts(raw, src, first, ss, true)), `enc n=${n} first=${first}`).toBe(true);
        const back = Buffer.alloc(src.length);
        xtsDecrypt(key, dst, back, first, ss);
        expect(back.equals(src)).toBe(true);
      }
      key.zeroize();
    });

    it(`in place, ${ss}-byte sectors`, () => {
      const { raw, key } = freshKey();
      const src = crypto.randomBytes(8 * ss);
      const buf = Buffer.from(src);
      xtsEncrypt(key, buf, buf, 2 ** 33 + 5, ss);
      expect(buf.equals(referenceXts(raw, src, 2 ** 33 + 5, ss, true))).toBe(true);
      xtsDecrypt(key, buf, buf, 2 ** 33 + 5, ss);
      expect(buf.equals(src)).toBe(true);
      key.zeroize();
    });
  }

  it('a 4096-byte sector n uses IV 8n (dm-crypt plain64 in 512-byte units)', () => {
    const { raw, key } = freshKey();
    const src = crypto.randomBytes(4096);
    const dst = Buffer.alloc(4096);
    xtsEncrypt(key, src, dst, 10, 4096);
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(80n);
    const c = crypto.createCipheriv('aes-256-xts', raw, iv);
    expect(dst.equals(Buffer.concat([c.update(src), c.final()]))).toBe(true);
    key.zeroize();
  });

  it('64 async operations in flight at once match the twin', async () => {
    const { raw, key } = freshKey();
    const jobs = Array.from({ length: 64 }, (_, i) => {
      const ss = i % 2 ? 4096 : 512;
      const src = crypto.randomBytes((1 + (i % 7)) * ss * 4);
      return { ss, src, dst: Buffer.alloc(src.length), first: i * 1_000_003 + (i % 3 ? 2 ** 35 : 0) };
    });
    await Promise.all(jobs.map((j) => xtsEncryptAsync(key, j.src, j.dst, j.first, j.ss)));
    for (const j of jobs) expect(j.dst.equals(referenceXts(raw, j.src, j.first, j.ss, true))).toBe(true);
    await Promise.all(jobs.map((j) => xtsDecryptAsync(key, j.dst, j.dst, j.first, j.ss)));
    for (const j of jobs) expect(j.dst.equals(j.src)).toBe(true);
    key.zeroize();
  });
});

describe('the async queue (jobs on the libuv pool, completions reported in batches)', () => {
  it('many more jobs than pool threads all settle, in any order, each with its own result', async () => {
    const { raw, key } = freshKey();
    const jobs = Array.from({ length: 200 }, (_, i) => ({ src: crypto.randomBytes(4096 * (1 + (i % 5))), first: i * 977 }));
    const out = await Promise.all(
      jobs.map(async (j) => {
        const dst = Buffer.alloc(j.src.length);
        await xtsEncryptAsync(key, j.src, dst, j.first, 4096);
        return dst;
      }),
    );
    jobs.forEach((j, i) => {
      expect(out[i]!.equals(referenceXts(raw, j.src, j.first, 4096, true))).toBe(true);
    });
    key.zeroize();
  });

  it('zeroize() while jobs wait in the queue: the waiting ones reject with KeyZeroized, none crashes', async () => {
    const { key } = freshKey();
    // ~256 MiB of work (over 100 ms on this machine), so zeroize() comes while most of it still waits even when this thread is preempted.
    const bufs = Array.from({ length: 64 }, () => Buffer.alloc(4 << 20, 7));
    const pending = bufs.map((b) => xtsEncryptAsync(key, b, b, 0, 4096));
    key.zeroize(); // waits for the running jobs; the rest find the key gone
    const settled = await Promise.allSettled(pending);
    const rejected = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(r.reason).toMatchObject({ name: 'KeyZeroized' });
  });

  it('a process waits for its jobs to settle and then exits by itself (the queue does not hold the event loop)', () => {
    const script = `
      import crypto from 'node:crypto';
      import { GuardedKey, xtsEncryptAsync } from ${JSON.stringify(`${ROOT}/dist/native/index.js`)};
      const key = GuardedKey.fromBuffer(crypto.randomBytes(64));
      const b = Buffer.alloc(1 << 20);
      let n = 0;
      for (let i = 0; i < 8; i++) xtsEncryptAsync(key, b, Buffer.alloc(b.length), i, 4096).then(() => { if (++n === 8) console.log('settled 8'); });
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, UV_THREADPOOL_SIZE: '2' },
    });
    expect(out.trim()).toBe('settled 8');
  });
});

describe('argument validation (TypeScript checks, C trusts)', () => {
  it('rejects bad sizes, sector sizes and sector numbers with named errors', () => {
    const { key } = freshKey();
    const b = Buffer.alloc(4096);
    expect(() => xtsEncrypt(key, b, b, 0, 1024)).toThrow(/sectorSize must be 512 or 4096/);
    expect(() => xtsEncrypt(key, Buffer.alloc(1000), Buffer.alloc(1000), 0, 512)).toThrow(/not a positive multiple/);
    expect(() => xtsEncrypt(key, b, Buffer.alloc(512), 0, 512)).toThrow(/must equal src/);
    expect(() => xtsEncrypt(key, b, b, -1, 512)).toThrow(/non-negative safe integer/);
    expect(() => xtsEncrypt(key, b, b, 2 ** 53, 512)).toThrow(/non-negative safe integer/);
    expect(() => xtsEncrypt(key, b, b, 2 ** 50, 4096)).toThrow(/overflow/);
    key.zeroize();
  });

  it('a key whose halves are equal is rejected, and the source is zeroed anyway', () => {
    const half = crypto.randomBytes(32);
    const src = Buffer.concat([half, half]);
    expect(() => GuardedKey.fromBuffer(src)).toThrow(/halves of the XTS key are equal/);
    expect(src.every((x) => x === 0)).toBe(true);
  });
});
