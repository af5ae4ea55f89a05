import { describe, expect, it } from 'vitest';
import { freeKeyslot, KEYSLOT_AREA_SIZE, type KeyslotMaterial, withKeyslot } from '../../../src/volume/keyslot.js';
import { KEYSLOTS_SIZE } from '../../../src/volume/luks2.js';

const material: KeyslotMaterial = { salt: Buffer.alloc(32, 1), iterations: 1000, area: Buffer.alloc(KEYSLOT_AREA_SIZE), secretBlob: 'c2VjcmV0' };

function meta(keyslots: Record<string, unknown> = {}, keyslotsSize = KEYSLOTS_SIZE) {
  return {
    keyslots,
    tokens: { '0': { type: 'kmsvol', keyslots: [] } },
    digests: { '0': { type: 'pbkdf2', keyslots: [] as string[], segments: ['0'] } },
    config: { json_size: '12288', keyslots_size: String(keyslotsSize) },
  };
}
const slot = (offset: number, size: number) => ({ area: { offset: String(offset), size: String(size) } });

describe('the kmsvol keyslot in LUKS2 metadata', () => {
  it('a new image takes keyslot 0 right after the headers', () => {
    expect(freeKeyslot(meta())).toEqual({ id: '0', offset: 32768 });
  });

  it('a keyslot a stock tool added is kept: the new one takes the next id and the first 4096-aligned free space after it', () => {
    // cryptsetup's luksAddKey on a zero-keyslot image puts its keyslot at 32768.
    expect(freeKeyslot(meta({ '0': slot(32768, 258048) }))).toEqual({ id: '1', offset: 32768 + 258048 });
    // A gap too small for a keyslot is skipped; one large enough is used.
    expect(freeKeyslot(meta({ '0': slot(65536, 4096) }))).toEqual({ id: '1', offset: 69632 });
    expect(freeKeyslot(meta({ '1': slot(32768 + KEYSLOT_AREA_SIZE, 4096) }))).toEqual({ id: '0', offset: 32768 });
    expect(freeKeyslot(meta({ '0': slot(32768, 1000) }))).toEqual({ id: '1', offset: 36864 });
  });

  it('a keyslot area with no room is refused', () => {
    expect(() => freeKeyslot(meta({}, 4096 * 10))).toThrow(/no room/);
  });

  it('withKeyslot adds the keyslot, assigns it to the digest of segment 0, replaces the kmsvol token, and leaves its input as it was', () => {
    const j = meta({ '0': slot(32768, 258048) });
    const before = JSON.stringify(j);
    const out = withKeyslot(j, '1', 290816, material, { type: 'kmsvol', version: 1, keyslots: ['1'] }) as ReturnType<typeof meta>;
    expect(JSON.stringify(j)).toBe(before);
    expect(Object.keys(out.keyslots)).toEqual(['0', '1']);
    expect(out.keyslots['1']).toMatchObject({
      type: 'luks2',
      key_size: 64,
      af: { type: 'luks1', stripes: 4000, hash: 'sha256' },
      area: { type: 'raw', offset: '290816', size: String(KEYSLOT_AREA_SIZE), encryption: 'aes-xts-plain64', key_size: 64 },
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000, salt: material.salt.toString('base64') },
    });
    expect(out.digests['0'].keyslots).toEqual(['1']);
    expect(out.tokens['0']).toEqual({ type: 'kmsvol', version: 1, keyslots: ['1'] });
  });
});
