import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChangeRecord } from '../../../src/volume/changefile.js';
import {
  blocksSet,
  CHANGE_HEADER,
  decodeChanges,
  encodeHeader,
  readChanges,
  trustedChanges,
  writeChanges,
  writeHeader,
} from '../../../src/volume/changefile.js';
import { tempHome } from '../../helpers/home.js';

const image = { ino: 12n, size: 1n << 30n, ctimeNs: 1_700_000_000_123_456_789n };
const bits = new Uint8Array(256);
bits[0] = 0b11;
bits[255] = 0x80;
const clean: ChangeRecord = { state: 'clean', all: false, base: 'snap-0123456789abcdef0', blocks: 2048, image, bits };
const whole = (r: ChangeRecord) => Buffer.concat([encodeHeader(r), r.bits]);

describe('the change file (volume/changefile.ts)', () => {
  it('round-trips a clean record, and its bits are trusted for the same image', () => {
    const r = decodeChanges(whole(clean));
    expect(r).toEqual(clean);
    const t = trustedChanges(r, 2048, image);
    expect(t === 'all' ? t : [...blocksSet(t)]).toEqual([0, 1, 2047]);
  });

  it('Precondition: the bits are trusted only when clean, not ALL, with a base, and for the same image', () => {
    const t = (r: ChangeRecord | { invalid: string }, blocks = 2048, img = image) => trustedChanges(r, blocks, img);
    expect(t(decodeChanges(Buffer.concat([encodeHeader({ ...clean, state: 'in-use' }), bits])))).toBe('all');
    expect(t(decodeChanges(whole({ ...clean, all: true })))).toBe('all');
    expect(t(decodeChanges(whole({ ...clean, base: null })))).toBe('all');
    expect(t(decodeChanges(whole(clean)), 2048, { ...image, ctimeNs: image.ctimeNs + 1n })).toBe('all');
    expect(t(decodeChanges(whole(clean)), 2048, { ...image, ino: 13n })).toBe('all');
    expect(t(decodeChanges(whole(clean)), 1024)).toBe('all'); // a bitmap longer than the volume
    // A volume that grew: the new blocks are not changed.
    const grown = t(decodeChanges(whole(clean)), 4096);
    expect(grown === 'all' ? grown : [grown.length, [...blocksSet(grown)]]).toEqual([512, [0, 1, 2047]]);
  });

  it('refuses a flipped bit in the bitmap or the header, a torn file, another magic or version', () => {
    const buf = whole(clean);
    for (const at of [CHANGE_HEADER + 7, 12, 30, 60]) {
      const b = Buffer.from(buf);
      b[at]! ^= 1;
      expect(decodeChanges(b), `byte ${at}`).toHaveProperty('invalid');
    }
    expect(decodeChanges(buf.subarray(0, CHANGE_HEADER + 100))).toEqual({ invalid: 'shorter than its bitmap' });
    expect(decodeChanges(buf.subarray(0, 50))).toEqual({ invalid: 'not a change file' });
    const v2 = Buffer.from(buf);
    v2.writeUInt32LE(2, 8);
    expect(decodeChanges(v2)).toEqual({ invalid: 'version 2' });
  });

  it('an in-use header over a clean bitmap, as a card leaves it, decodes as in use (its CRC covers no bitmap)', () => {
    const dir = tempHome();
    const fd = fs.openSync(path.join(dir, 'v.changes'), 'w+', 0o600);
    writeChanges(fd, clean);
    writeHeader(fd, { ...clean, state: 'in-use' });
    const r = readChanges(fd);
    expect('invalid' in r ? r.invalid : [r.state, r.base, trustedChanges(r, 2048, image)]).toEqual(['in-use', clean.base, 'all']);
    fs.closeSync(fd);
    expect(readChanges(fs.openSync(path.join(dir, 'empty'), 'w+'))).toEqual({ invalid: 'empty' });
  });
});
