import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { buildShim, readIoLog } from '../helpers/crash.js';
import { tempHome } from '../helpers/home.js';
import { attach, detach, volumeHome } from '../helpers/volumes.js';

/**
 * A new image is made under a temporary name, fsynced, renamed into place,
 * and then its directory is fsynced: without that last fsync a power cut can
 * lose the rename, and with it an image the command said was made. The fsyncs
 * are seen below the command, by the LD_PRELOAD shim of the power-loss tests.
 */
describe('new images are durable: the directory that holds one is fsynced once it is renamed into place', () => {
  /** The fsyncs of the directory `dir` (its path ends with /`dir`) while `args` runs on `home`. */
  function dirSyncs(home: string, work: string, dir: string, args: string[]): { code: number; stderr: string; syncs: number } {
    const iolog = path.join(work, `${dir.replaceAll('/', '_')}.iolog`);
    const shim = buildShim(work, { iolog, match: `/${dir}` });
    const r = kmsvol(home, args, { LD_PRELOAD: shim });
    const syncs = fs.existsSync(iolog) ? readIoLog(iolog).filter((e) => e.op === 'E').length : 0;
    return { code: r.code, stderr: r.stderr, syncs };
  }

  it("create-volume fsyncs volumes/; create-snapshot fsyncs the block store's directory of each block it stores", () => {
    const ctx = volumeHome();
    const work = tempHome('kmsvol-durable-');
    const made = dirSyncs(ctx.home, work, 'volumes', ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', ctx.key]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.syncs, 'fsyncs of volumes/ by create-volume').toBeGreaterThanOrEqual(1);

    // An unencrypted volume holding one known 512 KiB block: its block file's name (SHA-256 of the bytes) is known here,
    // and so is the directory blocks/<first two hex digits>/ the snapshot must fsync once the file is renamed into it.
    const plain = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted', '--wait']).json.VolumeId as string;
    const block = Buffer.alloc(512 * 1024, 7);
    const { Device } = attach(ctx.home, plain);
    const fd = fs.openSync(Device, 'r+');
    fs.writeSync(fd, block, 0, block.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, plain);
    const hash = crypto.createHash('sha256').update(block).digest('hex');
    const snap = dirSyncs(ctx.home, work, `blocks/${hash.slice(0, 2)}`, ['ec2', 'create-snapshot', '--volume-id', plain]);
    expect(snap.code, snap.stderr).toBe(0);
    expect(fs.existsSync(path.join(ctx.home, 'blocks', hash.slice(0, 2), hash)), 'the block file').toBe(true);
    expect(snap.syncs, `fsyncs of blocks/${hash.slice(0, 2)}/ by create-snapshot`).toBeGreaterThanOrEqual(1);
  });
});
