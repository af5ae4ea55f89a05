import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CIPHER, decodeHeader, encodeHeader, HDR_SIZE, PAYLOAD_OFFSET } from '../../../src/volume/luks2.js';

function header() {
  return encodeHeader({
    uuid: crypto.randomUUID(),
    label: 'vol-0123456789abcdef0',
    token: {
      volumeId: 'vol-0123456789abcdef0',
      keyArn: 'arn:aws:kms:local:000000000000:key/k',
      ciphertextBlob: 'AAAA',
      encryptionContext: { 'aws:ebs:id': 'vol-0123456789abcdef0' },
    },
    digest: { hash: 'sha256', salt: crypto.randomBytes(32), digest: crypto.randomBytes(32), iterations: 1000 },
    payloadOffset: PAYLOAD_OFFSET,
    segmentSize: null,
    sectorSize: 4096,
    cipher: CIPHER,
  });
}

describe('LUKS2 header', () => {
  it('round-trips the kmsvol token and segment', () => {
    const h = decodeHeader(header());
    expect(h.token.volumeId).toBe('vol-0123456789abcdef0');
    expect(h.payloadOffset).toBe(16 * 1024 * 1024);
    expect(h.sectorSize).toBe(4096);
    expect(h.digest.iterations).toBe(1000);
  });

  it('falls back to the secondary copy when the primary is damaged', () => {
    const b = header();
    b[5000] ^= 0xff;
    expect(decodeHeader(b).token.volumeId).toBe('vol-0123456789abcdef0');
  });

  it('both copies damaged: a clear InvalidVolume.Corrupt error naming each problem', () => {
    const b = header();
    b[5000] ^= 0xff;
    b.fill(0, HDR_SIZE, HDR_SIZE + 6);
    expect(() => decodeHeader(b, 'vol.img')).toThrow(
      /vol.img has no valid LUKS2 header \(primary header: checksum mismatch; secondary header: no LUKS2 magic\)/,
    );
    try {
      decodeHeader(b);
    } catch (e) {
      expect((e as Error).name).toBe('InvalidVolume.Corrupt');
    }
  });

  it('a truncated header is refused', () => {
    expect(() => decodeHeader(header().subarray(0, 1000))).toThrow(/truncated/);
    expect(() => decodeHeader(Buffer.alloc(0))).toThrow(/truncated/);
  });
});
