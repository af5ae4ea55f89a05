import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Luks2Header } from '../../src/volume/luks2.js';
import { CorruptImageError, DIGEST_MAX_ITERATIONS, DIGEST_SALT_SIZE, decodeHeader, encodeHeader, HDR_SIZE } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';
import { runs, SEED } from './counts.js';

const CSUM = 448;
const JSON_AT = 4096;

const original: Omit<Luks2Header, 'seqid'> = {
  uuid: '0b9c6a52-7d0e-4b8e-9f57-3c1a2b4d5e6f',
  label: 'vol-0123456789abcdef0',
  token: {
    volumeId: 'vol-0123456789abcdef0',
    keyArn: 'arn:aws:kms:us-east-1:000000000000:key/8f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
    ciphertextBlob: Buffer.alloc(180, 7).toString('base64'),
    encryptionContext: { 'aws:ebs:id': 'vol-0123456789abcdef0' },
  },
  digest: { hash: 'sha256', salt: Buffer.alloc(32, 1), digest: Buffer.alloc(32, 2), iterations: 1000 },
  payloadOffset: 16 * 1024 * 1024,
  segmentSize: null,
  sectorSize: 4096,
  cipher: 'aes-xts-plain64',
};

/** Recompute a copy's checksum, as someone who can write the image (and knows LUKS2) would. */
function reseal(head: Buffer, copy: 0 | 1): void {
  const area = head.subarray(copy * HDR_SIZE, (copy + 1) * HDR_SIZE);
  area.fill(0, CSUM, CSUM + 64);
  crypto.createHash('sha256').update(area).digest().copy(area, CSUM);
}

/** What the unmutated header decodes to (the decoder also reports what the encoder fills in: the token's version, keyslots). */
const { seqid: _seq, ...decodedOriginal } = decodeHeader(encodeHeader(original));

/** Precondition of the attach path: a header decodes to the original, or to well-typed fields, or is InvalidVolume.Corrupt. */
function outcome(head: Buffer): 'same' | 'typed' | 'corrupt' {
  try {
    const h = decodeHeader(head);
    const { seqid: _s, ...rest } = h;
    if (JSON.stringify(rest) === JSON.stringify(decodedOriginal)) return 'same';
    const ok =
      typeof h.token.volumeId === 'string' &&
      typeof h.token.keyArn === 'string' &&
      typeof h.token.ciphertextBlob === 'string' &&
      h.token.encryptionContext !== null &&
      typeof h.token.encryptionContext === 'object' &&
      Object.values(h.token.encryptionContext).every((v) => typeof v === 'string') &&
      Buffer.isBuffer(h.digest.salt) &&
      Buffer.isBuffer(h.digest.digest) &&
      Number.isSafeInteger(h.digest.iterations) &&
      Number.isSafeInteger(h.payloadOffset) &&
      h.payloadOffset >= 2 * HDR_SIZE &&
      // The LUKS2 checks: the segment past the keyslot area on a sector boundary, the digest within the bounds attach computes in.
      h.payloadOffset % 4096 === 0 &&
      (h.segmentSize === null || (Number.isSafeInteger(h.segmentSize) && h.segmentSize > 0 && h.segmentSize % 4096 === 0)) &&
      h.digest.hash === 'sha256' &&
      h.digest.salt.length === DIGEST_SALT_SIZE &&
      (h.digest.digest.length === 20 || h.digest.digest.length === 32) &&
      h.digest.iterations >= 1 &&
      h.digest.iterations <= DIGEST_MAX_ITERATIONS;
    if (!ok) throw new Error(`decodeHeader returned ill-typed fields: ${JSON.stringify(h)}`);
    return 'typed';
  } catch (e) {
    if (e instanceof CorruptImageError && e.name === 'InvalidVolume.Corrupt') return 'corrupt';
    throw e;
  }
}

const byteEdit = fc.record({
  at: fc.integer({ min: 0, max: 2 * HDR_SIZE - 1 }),
  value: fc.integer({ min: 0, max: 255 }),
  span: fc.integer({ min: 1, max: 64 }),
});

/** A JSON value that may stand where a field was. */
const jsonValue = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 3 }),
);

function replaceAt(obj: any, pathParts: string[], value: unknown): void {
  let o = obj;
  for (const p of pathParts.slice(0, -1)) {
    if (o === null || typeof o !== 'object') return;
    o = o[p];
  }
  if (o !== null && typeof o === 'object') o[pathParts.at(-1)!] = value;
}

const FIELDS = [
  'tokens.0',
  'tokens.0.type',
  'tokens.0.volume_id',
  'tokens.0.key_arn',
  'tokens.0.ciphertext_blob',
  'tokens.0.encryption_context',
  'tokens.0.encryption_context.aws:ebs:id',
  'segments',
  'segments.0',
  'segments.0.offset',
  'segments.0.encryption',
  'segments.0.sector_size',
  'segments.0.size',
  'segments.0.iv_tweak',
  'segments.1',
  'digests.0.type',
  'digests.0.hash',
  'digests.1',
  'keyslots',
  'keyslots.0',
  'config.json_size',
  'config.keyslots_size',
  'digests.0',
  'digests.0.segments',
  'digests.0.salt',
  'digests.0.digest',
  'digests.0.iterations',
  'tokens',
  'digests',
];

/** The header with `field` of one copy (0, 1) or both (2) replaced by `value`, checksums resealed. */
function replaced(good: Buffer, field: string, value: unknown, copies: 0 | 1 | 2): Buffer {
  const head = Buffer.from(good);
  for (const c of copies === 2 ? ([0, 1] as const) : ([copies] as const)) {
    const area = head.subarray(c * HDR_SIZE + JSON_AT, (c + 1) * HDR_SIZE);
    const json = JSON.parse(area.toString('utf8').replace(/\0+$/, ''));
    replaceAt(json, field.split('.'), value);
    const text = Buffer.from(JSON.stringify(json));
    if (text.length >= area.length) continue;
    area.fill(0);
    text.copy(area);
    reseal(head, c);
  }
  return head;
}

/** Counterexamples fast-check found (seed 13) before decodeHeader checked field types; kept as regressions. */
const REGRESSIONS: [string, unknown, 0 | 1 | 2, 'typed' | 'corrupt' | 'same'][] = [
  ['tokens.0.volume_id', [], 0, 'same'], // the primary is refused, the secondary used: TypeError-free
  ['tokens.0.volume_id', [], 2, 'corrupt'],
  ['digests.0.segments', 0, 0, 'same'], // was: TypeError d.segments.includes is not a function
  ['digests.0.segments', 0, 2, 'corrupt'],
];

describe('fuzz: mutated LUKS2 headers on the attach path', () => {
  it.each(REGRESSIONS)('regression: %s = %j in copy %s is %s', (field, value, copies, want) => {
    expect(outcome(replaced(encodeHeader(original), field, value, copies))).toBe(want);
  });

  it(`${runs(2_000, 10_000)} byte mutations of one or both copies: the original from the other copy, or InvalidVolume.Corrupt; never other data (seed ${SEED})`, () => {
    const good = encodeHeader(original);
    fc.assert(
      fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 6 }), (edits) => {
        const head = Buffer.from(good);
        for (const e of edits) head.fill(e.value, e.at, Math.min(e.at + e.span, head.length));
        const r = outcome(head);
        // Without a resealed checksum, a changed copy never yields changed fields.
        return r === 'same' || r === 'corrupt';
      }),
      { numRuns: runs(2_000, 10_000), seed: SEED },
    );
  });

  it(`${runs(2_000, 10_000)} field replacements with the checksum resealed: well-typed fields or InvalidVolume.Corrupt, never a crash (seed ${SEED})`, () => {
    const good = encodeHeader(original);
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS), jsonValue, fc.constantFrom<0 | 1 | 2>(0, 1, 2), (field, value, copies) => {
        outcome(replaced(good, field, value, copies)); // throws on anything but the three outcomes
        return true;
      }),
      { numRuns: runs(2_000, 10_000), seed: SEED },
    );
  });

  it(`${runs(3, 40)} images with mutated headers through kmsvol attach-volume: the written data, or exit 254 in one line`, () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    const data = crypto.randomBytes(8192);
    let a = attach(ctx.home, vol);
    let fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, data, 0, data.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, vol);
    const good = Buffer.alloc(2 * HDR_SIZE);
    fd = fs.openSync(img, 'r');
    fs.readSync(fd, good, 0, good.length, 0);
    fs.closeSync(fd);
    const samples = fc.sample(fc.array(byteEdit, { minLength: 1, maxLength: 4 }), { numRuns: runs(3, 40), seed: SEED });
    const seen = { data: 0, refused: 0 };
    for (const edits of samples) {
      const head = Buffer.from(good);
      for (const e of edits) head.fill(e.value, e.at, Math.min(e.at + e.span, head.length));
      fd = fs.openSync(img, 'r+');
      fs.writeSync(fd, head, 0, head.length, 0);
      fs.closeSync(fd);
      const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]);
      if (r.code === 0) {
        a = r.json;
        const back = Buffer.alloc(data.length);
        const rfd = fs.openSync(a.Device, 'r');
        fs.readSync(rfd, back, 0, back.length, 0);
        fs.closeSync(rfd);
        detach(ctx.home, vol);
        expect(back.equals(data), `edits ${JSON.stringify(edits)}`).toBe(true);
        seen.data++;
      } else {
        expect(r.code, r.stderr).toBe(254);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toContain('(InvalidVolume.Corrupt)');
        seen.refused++;
      }
    }
    expect(seen.data + seen.refused).toBe(samples.length);
  }, 600_000);
});
