import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Luks2Header } from '../../../src/volume/luks2.js';
import { checkPayload, DIGEST_MAX_ITERATIONS, decodeHeader, HDR_SIZE, PAYLOAD_OFFSET } from '../../../src/volume/luks2.js';
import { sampleHeader } from '../../helpers/luks2-header.js';

/**
 * Every offset, size and digest check of decodeHeader (LUKS2's own, as
 * cryptsetup's hdr_validate_* and PBKDF2_digest_verify make them, and
 * kmsvol's), each on a header whose two copies were rewritten with their
 * checksums recomputed, as someone who can write the image would.
 */
const CSUM = 448;
const HDR_OFFSET = 256;
const CSUM_ALG = 72;
const KEYSLOTS_END = PAYLOAD_OFFSET; // 2 x 16 KiB of headers + 16,744,448 bytes of keyslot area

function reseal(head: Buffer): void {
  for (const c of [0, 1]) {
    const area = head.subarray(c * HDR_SIZE, (c + 1) * HDR_SIZE);
    area.fill(0, CSUM, CSUM + 64);
    crypto.createHash('sha256').update(area).digest().copy(area, CSUM);
  }
}

/** The header with both copies' JSON changed by `edit`, checksums recomputed. */
function edited(edit: (j: any) => void): Buffer {
  const head = sampleHeader();
  for (const c of [0, 1]) {
    const area = head.subarray(c * HDR_SIZE + 4096, (c + 1) * HDR_SIZE);
    const j = JSON.parse(area.toString('utf8').replace(/\0+$/, ''));
    edit(j);
    area.fill(0);
    Buffer.from(JSON.stringify(j)).copy(area);
  }
  reseal(head);
  return head;
}

const b64 = (n: number) => crypto.randomBytes(n).toString('base64');
const slot = (offset: number, size: number) => ({ type: 'luks2', key_size: 64, area: { type: 'raw', offset: String(offset), size: String(size) } });

const REFUSED: [string, (j: any) => void, RegExp][] = [
  [
    'segment offset below the header',
    (j) => (j.segments['0'].offset = String(HDR_SIZE)),
    /segment 0's offset "16384" is not a 4096-byte aligned offset past the headers and keyslot area/,
  ],
  [
    'segment offset inside the keyslot area',
    (j) => (j.segments['0'].offset = String(KEYSLOTS_END - 4096)),
    /segment 0's offset "16773120" is not .* past the headers and keyslot area \(16777216\)/,
  ],
  [
    'segment offset not sector-aligned',
    (j) => (j.segments['0'].offset = String(PAYLOAD_OFFSET + 512)),
    /segment 0's offset "16777728" is not a 4096-byte aligned/,
  ],
  ['segment offset not a decimal string', (j) => (j.segments['0'].offset = 16777216), /segment 0's offset 16777216 is not/],
  ['segment offset beyond 2^53', (j) => (j.segments['0'].offset = '18446744073709551615'), /segment 0's offset "18446744073709551615" is not/],
  [
    'segment size not a multiple of the sector',
    (j) => (j.segments['0'].size = '4097'),
    /segment 0's size "4097" is not "dynamic" or a positive multiple of 4096 bytes/,
  ],
  ['segment size zero', (j) => (j.segments['0'].size = '0'), /segment 0's size "0" is not "dynamic"/],
  ['segment size a number, not a string', (j) => (j.segments['0'].size = 1073741824), /segment 0's size 1073741824 is not "dynamic"/],
  ['segment iv_tweak not 0', (j) => (j.segments['0'].iv_tweak = '8'), /segment 0's iv_tweak "8" is not "0"/],
  ['segment with integrity', (j) => (j.segments['0'].integrity = { type: 'hmac(sha256)' }), /segment 0 is not a plain crypt segment/],
  ['a second segment', (j) => (j.segments['1'] = { ...j.segments['0'], offset: String(2 * PAYLOAD_OFFSET) }), /2 segments; a kmsvol image has one/],
  ['json_size wrong', (j) => (j.config.json_size = '4096'), /config.json_size "4096" is not the JSON area's 12288/],
  ['json_size missing', (j) => delete j.config.json_size, /config.json_size undefined is not the JSON area's 12288/],
  ['keyslots_size not whole 4 KiB blocks', (j) => (j.config.keyslots_size = '16744449'), /config.keyslots_size "16744449" is not a multiple of 4096 bytes/],
  [
    'keyslot area running into the segment (keyslots_size too large)',
    (j) => (j.config.keyslots_size = String(KEYSLOTS_END)),
    /segment 0's offset "16777216" is not .* \(16809984\)/,
  ],
  [
    'keyslot area overlapping the segment',
    (j) => (j.keyslots['0'] = slot(KEYSLOTS_END - 4096, 258048)),
    /keyslot 0's area \(offset "16773120", size "258048"\) is not inside the keyslot area \[32768, 16777216\)/,
  ],
  ['keyslot area inside the headers', (j) => (j.keyslots['0'] = slot(HDR_SIZE, 4096)), /keyslot 0's area \(offset "16384", size "4096"\) is not inside/],
  ['keyslot area empty', (j) => (j.keyslots['0'] = slot(2 * HDR_SIZE, 0)), /keyslot 0's area .* is not inside/],
  ['keyslot without an area', (j) => (j.keyslots['0'] = { type: 'luks2' }), /keyslot 0's area \(offset undefined, size undefined\)/],
  [
    'two keyslot areas overlapping',
    (j) => Object.assign(j.keyslots, { '0': slot(32768, 258048), '1': slot(32768 + 4096, 258048) }),
    /keyslot areas 0 and 1 overlap/,
  ],
  [
    'digest hash outside the allow-list',
    (j) => (j.digests['0'].hash = 'sha1'),
    /digest of segment 0 is "pbkdf2" over "sha1"; kmsvol checks pbkdf2 over sha256/,
  ],
  ['digest hash a prototype key', (j) => (j.digests['0'].hash = 'constructor'), /over "constructor"/],
  ['digest type not pbkdf2', (j) => (j.digests['0'].type = 'argon2id'), /digest of segment 0 is "argon2id"/],
  ['digest salt 16 bytes', (j) => (j.digests['0'].salt = b64(16)), /needs a 32-byte salt and a 20- or 32-byte digest/],
  ['digest 31 bytes', (j) => (j.digests['0'].digest = b64(31)), /needs a 32-byte salt and a 20- or 32-byte digest/],
  ['digest 64 bytes (longer than sha256)', (j) => (j.digests['0'].digest = b64(64)), /needs a 32-byte salt/],
  ['digest not strict base64', (j) => (j.digests['0'].digest = `${j.digests['0'].digest.slice(0, -1)}*`), /needs a 32-byte salt/],
  ['digest iterations 0', (j) => (j.digests['0'].iterations = 0), /asks for 0 iterations; kmsvol checks 1 to 4000000/],
  ['digest iterations beyond the bound', (j) => (j.digests['0'].iterations = DIGEST_MAX_ITERATIONS + 1), /asks for 4000001 iterations/],
  ['digest iterations a string', (j) => (j.digests['0'].iterations = '1000'), /asks for "1000" iterations/],
  ['no digest for segment 0', (j) => (j.digests['0'].segments = []), /0 digests are assigned to segment 0; LUKS2 needs exactly one/],
  ['two digests for segment 0', (j) => (j.digests['1'] = { ...j.digests['0'] }), /2 digests are assigned to segment 0/],
];

describe('LUKS2 header checks: both copies rewritten and resealed', () => {
  it.each(REFUSED)('Precondition refused: %s (InvalidVolume.Corrupt naming it in both copies)', (_what, edit, message) => {
    const head = edited(edit);
    let err: Error | undefined;
    try {
      decodeHeader(head, 'vol.img');
    } catch (e) {
      err = e as Error;
    }
    expect(err?.name).toBe('InvalidVolume.Corrupt');
    expect(err?.message).toMatch(/^vol\.img has no valid LUKS2 header \(primary header: /);
    expect(err?.message).toMatch(message);
    expect(err?.message).toContain('Restore it from a snapshot or a backup.');
  });

  it.each([
    ['a keyslot as cryptsetup luksAddKey writes it', (j: any) => (j.keyslots['0'] = slot(32768, 258048))],
    ['two adjacent keyslot areas', (j: any) => Object.assign(j.keyslots, { '0': slot(32768, 258048), '1': slot(32768 + 258048, 258048) })],
    ['a keyslot area ending where the segment starts', (j: any) => (j.keyslots['0'] = slot(KEYSLOTS_END - 258048, 258048))],
    ['a 20-byte digest (LUKS1-compatible length)', (j: any) => (j.digests['0'].digest = b64(20))],
    ['digest iterations at the bound', (j: any) => (j.digests['0'].iterations = DIGEST_MAX_ITERATIONS)],
    ['a fixed segment size', (j: any) => (j.segments['0'].size = String(2 ** 30))],
  ])('accepted: %s', (_what, edit) => {
    expect(decodeHeader(edited(edit)).token.volumeId).toBe('vol-0123456789abcdef0');
  });

  it('Precondition refused: hdr_offset of a copy not where it is; the other copy is used', () => {
    const head = sampleHeader();
    head.writeBigUInt64BE(BigInt(HDR_SIZE), HDR_OFFSET); // the primary claims to be the secondary
    reseal(head);
    expect(decodeHeader(head).token.volumeId).toBe('vol-0123456789abcdef0');
    head.writeBigUInt64BE(0n, HDR_SIZE + HDR_OFFSET);
    reseal(head);
    expect(() => decodeHeader(head)).toThrow(/primary header: hdr_offset 16384 is not 0; secondary header: hdr_offset 0 is not 16384/);
  });

  it('Precondition refused: a checksum algorithm other than sha256', () => {
    const head = sampleHeader();
    for (const c of [0, 1]) head.fill(0, c * HDR_SIZE + CSUM_ALG, c * HDR_SIZE + CSUM_ALG + 32).write('sha1', c * HDR_SIZE + CSUM_ALG, 'ascii');
    reseal(head);
    expect(() => decodeHeader(head)).toThrow(/primary header: checksum algorithm "sha1" is not sha256/);
  });
});

describe('checkPayload: segment 0 covers the volume', () => {
  const h = (segmentSize: number | null) => ({ ...decodeHeader(sampleHeader()), segmentSize }) as Luks2Header;
  it('Precondition refused: a fixed segment size that is not the volume size', () => {
    expect(() => checkPayload('vol.img', -1, h(2 ** 29), 2 ** 30)).toThrow(
      /The LUKS2 header of vol.img maps 536870912 bytes in segment 0; the volume is 1073741824/,
    );
  });
});
