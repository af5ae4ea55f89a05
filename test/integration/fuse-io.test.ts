import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { attach, createVolume, detach, head, volumeHome } from '../helpers/volumes.js';

const GiB = 2 ** 30;

describe('the FUSE server: I/O semantics through the decrypted volume file', () => {
  it('many concurrent unaligned writes that share sectors all land (opened O_DIRECT like the loop device, they reach the card in parallel: this checks the sector locks around read-modify-write)', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const fh = await fs.promises.open(a.Device, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    const model = Buffer.alloc(2 << 20);
    const PIECE = 600; // several pieces per 4 KiB sector, crossing boundaries
    const writes = Array.from({ length: Math.floor((model.length - 17) / PIECE) }, (_, i) => {
      const off = i * PIECE + 17;
      const data = crypto.randomBytes(PIECE);
      data.copy(model, off);
      return fh.write(data, 0, data.length, off);
    });
    const done = await Promise.all(writes);
    expect(done.every((w) => w.bytesWritten === PIECE)).toBe(true);
    await fh.sync();
    const back = Buffer.alloc(model.length);
    await fh.read(back, 0, back.length, 0);
    await fh.close();
    expect(back.equals(model)).toBe(true);
    detach(ctx.home, vol);
    // And after a fresh attach (nothing from the page cache).
    const b = attach(ctx.home, vol);
    expect(head(b.Device, model.length).equals(model)).toBe(true);
    detach(ctx.home, vol);
  });

  it('clips at the end of the volume: short reads, short writes, ENOSPC past the end', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const fd = fs.openSync(a.Device, 'r+');
    const buf = Buffer.alloc(8192, 9);
    expect(fs.writeSync(fd, buf, 0, 8192, GiB - 100)).toBe(100);
    expect(fs.readSync(fd, Buffer.alloc(8192), 0, 8192, GiB - 4096)).toBe(4096);
    expect(fs.readSync(fd, Buffer.alloc(10), 0, 10, GiB)).toBe(0);
    expect(() => fs.writeSync(fd, buf, 0, 10, GiB)).toThrow(/ENOSPC/);
    expect(() => fs.ftruncateSync(fd, 1000)).toThrow(/EPERM/);
    fs.ftruncateSync(fd, GiB); // truncating to its own size is allowed
    fs.closeSync(fd);
    expect(fs.readdirSync(path.dirname(a.Device))).toEqual([vol]);
    detach(ctx.home, vol);
  });

  it('an unencrypted volume is a raw image: bytes pass straight through', () => {
    const ctx = volumeHome();
    const r = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']);
    expect(r.json.Encrypted).toBe(false);
    const vol = r.json.VolumeId;
    const a = attach(ctx.home, vol);
    fs.writeFileSync(a.Device, Buffer.from('plain bytes'), { flag: 'r+' });
    detach(ctx.home, vol);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    expect(fs.statSync(img).size).toBe(GiB);
    expect(head(img, 11).toString()).toBe('plain bytes');
  });
});
