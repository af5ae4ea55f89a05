import { describe, expect, it } from 'vitest';
import { decodeHeader, HDR_SIZE } from '../../../src/volume/luks2.js';
import { sampleHeader } from '../../helpers/luks2-header.js';

describe('LUKS2 header', () => {
  it('round-trips the kmsvol token and segment', () => {
    const h = decodeHeader(sampleHeader());
    expect(h.token.volumeId).toBe('vol-0123456789abcdef0');
    expect(h.payloadOffset).toBe(16 * 1024 * 1024);
    expect(h.sectorSize).toBe(4096);
    expect(h.digest.iterations).toBe(1000);
  });

  it('falls back to the secondary copy when the primary is damaged', () => {
    const b = sampleHeader();
    b[5000] ^= 0xff;
    expect(decodeHeader(b).token.volumeId).toBe('vol-0123456789abcdef0');
  });

  it('both copies damaged: a clear InvalidVolume.Corrupt error naming each problem', () => {
    const b = sampleHeader();
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
    expect(() => decodeHeader(sampleHeader().subarray(0, 1000))).toThrow(/truncated/);
    expect(() => decodeHeader(Buffer.alloc(0))).toThrow(/truncated/);
  });
});
