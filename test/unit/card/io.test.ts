import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RangeLock, SectorIO } from '../../../src/card/io.js';
import { GuardedKey } from '../../../src/native/index.js';
import { referenceXts } from '../../../src/native/reference.js';
import { tempHome } from '../../helpers/home.js';

const PAYLOAD = 8192;
const SIZE = 64 * 4096;

function setup(encrypted = true) {
  const file = path.join(tempHome('kmsvol-io-'), 'img');
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, PAYLOAD + SIZE);
  const fd = fs.openSync(file, 'r+');
  const raw = crypto.randomBytes(64);
  const key = encrypted ? GuardedKey.fromBuffer(Buffer.from(raw)) : null;
  return { file, fd, raw, key, io: new SectorIO(fd, key, PAYLOAD, SIZE) };
}

describe('the sector I/O path', () => {
  it('concurrent unaligned writes that share sectors all land (read-modify-write under a sector lock)', async () => {
    const { io, fd, key } = setup();
    const model = Buffer.alloc(SIZE);
    const writes = Array.from({ length: 200 }, (_, i) => {
      const off = i * 300 + 17; // 300-byte pieces, many per sector, crossing boundaries
      const data = crypto.randomBytes(300);
      data.copy(model, off);
      return io.write(data, data.length, off);
    });
    expect(await Promise.all(writes)).toEqual(Array(200).fill(300));
    const back = Buffer.alloc(SIZE);
    expect(await io.read(back, SIZE, 0)).toBe(SIZE);
    expect(back.equals(model)).toBe(true);
    await io.drain();
    fs.closeSync(fd);
    key!.zeroize();
  });

  it('writes whole sectors as aes-256-xts with IV 8n; unwritten sectors stay zero in the file and read as zeros', async () => {
    const { io, fd, raw, key, file } = setup();
    const data = crypto.randomBytes(3 * 4096);
    await io.write(data, data.length, 10 * 4096);
    await io.sync();
    const image = fs.readFileSync(file);
    expect(image.subarray(PAYLOAD + 10 * 4096, PAYLOAD + 13 * 4096).equals(referenceXts(raw, data, 10, 4096, true))).toBe(true);
    expect(image.subarray(PAYLOAD, PAYLOAD + 10 * 4096).every((b) => b === 0)).toBe(true);
    const z = Buffer.alloc(4096, 7);
    await io.read(z, 4096, 20 * 4096);
    expect(z.every((b) => b === 0)).toBe(true);
    fs.closeSync(fd);
    key!.zeroize();
  });

  it('clips at the end of the volume', async () => {
    const { io, fd, key } = setup();
    const b = Buffer.alloc(8192);
    expect(await io.read(b, 8192, SIZE - 4096)).toBe(4096);
    expect(await io.read(b, 10, SIZE)).toBe(0);
    expect(await io.write(b, 8192, SIZE - 100)).toBe(100);
    fs.closeSync(fd);
    key!.zeroize();
  });

  it('passes bytes through for unencrypted volumes', async () => {
    const { io, fd, file } = setup(false);
    await io.write(Buffer.from('plain'), 5, 4097);
    await io.sync();
    expect(fs.readFileSync(file).subarray(PAYLOAD + 4097, PAYLOAD + 4102).toString()).toBe('plain');
    fs.closeSync(fd);
  });

  it('after the key is zeroized, I/O fails with KeyZeroized instead of crashing', async () => {
    const { io, fd, key } = setup();
    key!.zeroize();
    await expect(io.read(Buffer.alloc(4096), 4096, 0)).rejects.toMatchObject({ name: 'KeyZeroized' });
    fs.closeSync(fd);
  });
});

describe('RangeLock', () => {
  it('serializes overlapping ranges and lets disjoint ones run together', async () => {
    const lock = new RangeLock();
    const order: string[] = [];
    const r1 = await lock.acquire(0, 2);
    const p2 = lock.acquire(1, 1).then((rel) => {
      order.push('overlap');
      rel();
    });
    const r3 = await lock.acquire(5, 1);
    order.push('disjoint');
    r3();
    order.push('release-1');
    r1();
    await p2;
    expect(order).toEqual(['disjoint', 'release-1', 'overlap']);
  });
});
