import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';

const KiB = 1024;
const MID = 1 << 20; // a read-around window boundary inside the volume
const BAD = MID + 32 * KiB; // a neighbour inside the window [MID, MID + 64 KiB)

/**
 * The card's read-around window (read_around, native/src/fuse_server.c) reads
 * 64 KiB of the image for a 4 KiB read. A block of the image that cannot be
 * read (a media error, EIO from the file system below) must fail only reads of
 * that block, as before the window and as the kernel's own readahead does, not
 * every read of its healthy neighbours. The home is on gocryptfs, which answers
 * EIO for a block whose ciphertext fails authentication: one block of the
 * image is corrupted in the cipher directory.
 */
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe.skipIf(!have('gocryptfs') || process.getuid?.() !== 0)("the card's read-around window and an unreadable neighbour", () => {
  it('a 4 KiB read of a healthy block answers its bytes although a block of its window gives EIO', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-ra-eio-'));
    const cipher = path.join(dir, 'cipher');
    const home = path.join(dir, 'home');
    fs.mkdirSync(cipher, { mode: 0o700 });
    fs.mkdirSync(home, { mode: 0o700 });
    onCleanup(() => {
      const vols = kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? [];
      for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
      spawnSync('umount', [home]);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    execFileSync('gocryptfs', ['-q', '-init', '-extpass', 'echo test', '-scryptn', '10', cipher]);
    execFileSync('gocryptfs', ['-q', '-nosyslog', '-extpass', 'echo test', cipher, home], { stdio: 'ignore' });
    fs.chmodSync(home, 0o700);

    const vol = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId;
    const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol]);
    if (r.code !== 0) throw new Error(`attach-volume failed (${r.code}): ${r.stderr}`);
    const fd = fs.openSync(r.json.Device, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    onCleanup(() => fs.closeSync(fd));
    const data = crypto.randomBytes(64 * KiB);
    fs.writeSync(fd, data, 0, data.length, MID);
    fs.fsyncSync(fd);

    // The image's ciphertext in gocryptfs's directory: an 18-byte header, then 4,128 bytes per 4 KiB block.
    const image = path.join(home, 'volumes', `${vol}.img`);
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (e.isFile()) files.push(path.join(d, e.name));
      }
    };
    walk(cipher);
    const big = files.filter((f) => fs.statSync(f).size > 2 ** 30);
    expect(big).toHaveLength(1);
    const c = fs.openSync(big[0], 'r+');
    fs.writeSync(c, Buffer.from('corrupt'), 0, 7, 18 + (BAD / 4096) * 4128 + 100);
    fs.closeSync(c);
    const evict = () => execFileSync('dd', [`if=${image}`, 'iflag=nocache', 'count=0', 'status=none']);

    const read = (off: number) => {
      const b = Buffer.alloc(4 * KiB);
      return b.subarray(0, fs.readSync(fd, b, 0, b.length, off));
    };
    // The broken block itself fails, as it should.
    evict();
    expect(() => read(BAD)).toThrow(/EIO/);
    // Its healthy neighbours in the same window answer their bytes.
    for (const off of [MID, MID + 4 * KiB, BAD + 4 * KiB]) {
      evict();
      expect(read(off).equals(data.subarray(off - MID, off - MID + 4 * KiB)), `read at ${off}`).toBe(true);
    }
  });
});
