import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { buildShim, readIoLog } from '../helpers/crash.js';
import { tempHome } from '../helpers/home.js';
import { createVolume, volumeHome } from '../helpers/volumes.js';

/**
 * A new image is made under a temporary name, fsynced, renamed into place,
 * and then its directory is fsynced: without that last fsync a power cut can
 * lose the rename, and with it an image the command said was made. The fsyncs
 * are seen below the command, by the LD_PRELOAD shim of the power-loss tests.
 */
describe('new images are durable: the directory that holds one is fsynced once it is renamed into place', () => {
  /** The fsyncs of the directory `dir` (its path ends with /`dir`) while `args` runs on `home`. */
  function dirSyncs(home: string, work: string, dir: string, args: string[]): { code: number; stderr: string; syncs: number } {
    const iolog = path.join(work, `${dir}.iolog`);
    const shim = buildShim(work, { iolog, match: `/${dir}` });
    const r = kmsvol(home, args, { LD_PRELOAD: shim });
    const syncs = fs.existsSync(iolog) ? readIoLog(iolog).filter((e) => e.op === 'E').length : 0;
    return { code: r.code, stderr: r.stderr, syncs };
  }

  it('create-volume (volumes/), create-snapshot and copy-snapshot (snapshots/) each fsync the directory of the image they made', () => {
    const ctx = volumeHome();
    const work = tempHome('kmsvol-durable-');
    const made = dirSyncs(ctx.home, work, 'volumes', ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', ctx.key]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.syncs, 'fsyncs of volumes/ by create-volume').toBeGreaterThanOrEqual(1);

    const vol = createVolume(ctx.home, ctx.key);
    const snap = dirSyncs(ctx.home, work, 'snapshots', ['ec2', 'create-snapshot', '--volume-id', vol]);
    expect(snap.code, snap.stderr).toBe(0);
    expect(snap.syncs, 'fsyncs of snapshots/ by create-snapshot').toBeGreaterThanOrEqual(1);

    // An unencrypted snapshot's copy is the sparse copy too.
    const plain = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId;
    const plainSnap = kmsvol(ctx.home, ['ec2', 'create-snapshot', '--volume-id', plain]).json.SnapshotId;
    const copy = dirSyncs(ctx.home, work, 'snapshots', ['ec2', 'copy-snapshot', '--source-snapshot-id', plainSnap]);
    expect(copy.code, copy.stderr).toBe(0);
    expect(copy.syncs, 'fsyncs of snapshots/ by copy-snapshot of an unencrypted snapshot').toBeGreaterThanOrEqual(1);
  });
});
