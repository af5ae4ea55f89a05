import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { callControl } from '../../src/card/control.js';
import { listBlockFiles, readBlock } from '../../src/volume/blocks.js';
import { readImageHeader } from '../../src/volume/luks2.js';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { attach, createVolume, detach, head, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

function withRegistry<T>(home: string, f: (r: Registry) => T): T {
  const r = new Registry(path.join(home, 'ec2.db'));
  try {
    return f(r);
  } finally {
    r.close();
  }
}

/** The LUKS2 header a snapshot keeps (in the registry, with its block map), decoded. */
function snapshotHeader(home: string, id: string) {
  const file = path.join(home, `${id}.header`);
  fs.writeFileSync(
    file,
    withRegistry(home, (r) => r.getSnapshot(id)!.header!),
    { mode: 0o600 },
  );
  try {
    return readImageHeader(file);
  } finally {
    fs.rmSync(file);
  }
}

function newKey(home: string): string {
  return kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
}

describe('seed 003: the EBS session replays with aws replaced by kmsvol', () => {
  it('volume under key A, snapshot, volume from it under key B, disable A, clean up', () => {
    const ctx = volumeHome();
    const keyA = ctx.key;
    const keyB = newKey(ctx.home);
    // The seed's volume is gp3 (its describe-volumes shows 3000 IOPS, 125 MiB/s); CreateVolume's default is gp2.
    const vol = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', keyA, '--volume-type', 'gp3']).json.VolumeId as string;
    const a = attach(ctx.home, vol);
    const data = crypto.randomBytes(3 << 20);
    const fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, data, 0, data.length, 0);
    fs.closeSync(fd);
    detach(ctx.home, vol);

    const d = kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-id', vol]).json.Volumes[0];
    expect(d).toMatchObject({
      Attachments: [],
      Encrypted: true,
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyA}`,
      Size: 1,
      SnapshotId: '',
      State: 'available',
      VolumeId: vol,
      Iops: 3000,
      VolumeType: 'gp3',
      MultiAttachEnabled: false,
      Throughput: 125,
    });

    const snap = kmsvol(ctx.home, ['ec2', 'create-snapshot', '--volume-id', vol]).json;
    // Answered as EC2 answers (pending, Progress ""); the command returns once it is completed.
    expect(snap).toMatchObject({
      Description: '',
      Encrypted: true,
      OwnerId: '000000000000',
      VolumeId: vol,
      VolumeSize: 1,
      State: 'pending',
      Progress: '',
      Tags: [],
    });
    expect(kmsvol(ctx.home, ['ec2', 'describe-snapshots', '--snapshot-ids', snap.SnapshotId]).json.Snapshots[0]).toMatchObject({
      State: 'completed',
      Progress: '100%',
    });
    expect(snap.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
    // The snapshot keeps the volume's wrapped key and context.
    expect(snapshotHeader(ctx.home, snap.SnapshotId).token.encryptionContext).toEqual({ 'aws:ebs:id': vol });
    const stored = listBlockFiles(ctx.home).length;
    expect(stored).toBeGreaterThan(0);

    const nv = kmsvol(ctx.home, [
      'ec2',
      'create-volume',
      '--availability-zone',
      'us-east-1a',
      '--encrypted',
      '--kms-key-id',
      keyB,
      '--snapshot-id',
      snap.SnapshotId,
      '--volume-type',
      'gp3',
    ]).json;
    expect(nv).toMatchObject({
      AvailabilityZone: 'us-east-1a',
      Encrypted: true,
      KmsKeyId: keyB,
      Size: 1,
      SnapshotId: snap.SnapshotId,
      VolumeType: 'gp3',
      State: 'creating',
    });
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', nv.VolumeId]).json.Volumes[0]).toMatchObject({
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyB}`,
      State: 'available',
    });
    const nvHeader = readImageHeader(path.join(ctx.home, 'volumes', `${nv.VolumeId}.img`));
    expect(nvHeader.token.encryptionContext).toEqual({ 'aws:ebs:id': nv.VolumeId });

    kmsvol(ctx.home, ['kms', 'disable-key', '--key-id', keyA]);
    const b = attach(ctx.home, nv.VolumeId);
    expect(head(b.Device, data.length).equals(data)).toBe(true);
    detach(ctx.home, nv.VolumeId);
    const old = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(old.code).toBe(254);
    expect(old.stderr).toContain('(DisabledException)');

    expect(kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]).code).toBe(0);
    expect(kmsvol(ctx.home, ['ec2', 'delete-snapshot', '--snapshot-id', snap.SnapshotId]).code).toBe(0);
    expect(listBlockFiles(ctx.home)).toEqual([]); // its blocks are freed with it
    expect(stored).toBeGreaterThan(0);
    const gone = kmsvol(ctx.home, ['ec2', 'describe-snapshots', '--snapshot-ids', snap.SnapshotId]);
    expect(gone.code).toBe(254);
    expect(gone.stderr).toContain('(InvalidSnapshot.NotFound)');
  });
});

describe('copies and re-keying', () => {
  it('an unencrypted volume migrates to an encrypted one by copy-snapshot, data intact', () => {
    const ctx = volumeHome();
    const plain = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId;
    const a = attach(ctx.home, plain);
    const data = crypto.randomBytes(2 << 20);
    fs.writeFileSync(a.Device, data, { flag: 'r+' });
    detach(ctx.home, plain);
    const snap = kmsvol(ctx.home, ['ec2', 'create-snapshot', '--volume-id', plain, '--description', 'plain']).json;
    expect(snap.Encrypted).toBe(false);
    const copy = kmsvol(ctx.home, ['ec2', 'copy-snapshot', '--source-snapshot-id', snap.SnapshotId, '--encrypted', '--kms-key-id', ctx.key]).json;
    expect(Object.keys(copy)).toEqual(['SnapshotId']); // as EC2 answers CopySnapshot
    expect(copy.SnapshotId).toMatch(/^snap-/);
    const desc = kmsvol(ctx.home, ['ec2', 'describe-snapshots', '--snapshot-ids', copy.SnapshotId]).json.Snapshots[0];
    expect(desc).toMatchObject({ Encrypted: true, KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${ctx.key}`, State: 'completed', Progress: '100%' });
    expect(snapshotHeader(ctx.home, copy.SnapshotId).token.encryptionContext).toEqual({ 'aws:ebs:id': copy.SnapshotId });
    const encVol = kmsvol(ctx.home, ['ec2', 'create-volume', '--snapshot-id', copy.SnapshotId]).json;
    expect(encVol.Encrypted).toBe(true);
    const b = attach(ctx.home, encVol.VolumeId);
    expect(head(b.Device, data.length).equals(data)).toBe(true);
    detach(ctx.home, encVol.VolumeId);
    // The encrypted image never holds the plaintext; the copy stays sparse.
    const img = path.join(ctx.home, 'volumes', `${encVol.VolumeId}.img`);
    expect(fs.statSync(img).blocks * 512).toBeLessThan(8 << 20);
    const copyBlocks = withRegistry(ctx.home, (r) => r.blockMap(copy.SnapshotId));
    expect(copyBlocks.length).toBe(4); // 2 MiB written: four 512 KiB blocks
    for (const blk of copyBlocks) expect(readBlock(ctx.home, blk.hash).includes(data.subarray(0, 64))).toBe(false);
  });

  it('an encrypted snapshot cannot be copied to an unencrypted one; a failing KMS leaves nothing half-made', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const snap = kmsvol(ctx.home, ['ec2', 'create-snapshot', '--volume-id', vol]).json.SnapshotId;
    const blocks = listBlockFiles(ctx.home);
    const r = kmsvol(ctx.home, ['ec2', 'copy-snapshot', '--source-snapshot-id', snap, '--no-encrypted']);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('(InvalidParameterCombination)');
    // Destination key pending deletion: the copy fails and no snapshot is left behind.
    const doomed = newKey(ctx.home);
    kmsvol(ctx.home, ['kms', 'schedule-key-deletion', '--key-id', doomed, '--pending-window-in-days', '7']);
    const f = kmsvol(ctx.home, ['ec2', 'copy-snapshot', '--source-snapshot-id', snap, '--kms-key-id', doomed]);
    expect(f.code).toBe(254);
    expect(f.stderr).toContain('(KMSInvalidStateException)');
    // Source key disabled: same.
    kmsvol(ctx.home, ['kms', 'disable-key', '--key-id', ctx.key]);
    const g = kmsvol(ctx.home, ['ec2', 'create-volume', '--snapshot-id', snap, '--kms-key-id', newKey(ctx.home)]);
    expect(g.code).toBe(254);
    expect(g.stderr).toContain('(DisabledException)');
    expect(kmsvol(ctx.home, ['ec2', 'describe-snapshots']).json.Snapshots.map((s: { SnapshotId: string }) => s.SnapshotId)).toEqual([snap]);
    expect(listBlockFiles(ctx.home)).toEqual(blocks);
    const scratch = path.join(ctx.home, 'snapshots');
    expect(fs.existsSync(scratch) ? fs.readdirSync(scratch) : []).toEqual([]); // no scratch image left
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes']).json.Volumes).toHaveLength(1);
    const events = kmsvol(ctx.home, ['events']).json.Events.filter((e: { detail: { result: string } }) => e.detail.result === 'failed');
    expect(events.map((e: { detail: { event: string } }) => e.detail.event)).toEqual(['copySnapshot', 'createVolume']);
  });

  it('a snapshot taken while fio writes to ext4 on the attached volume gives a volume that fsck finds clean', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', '-F', a.LoopDevice!]);
    const mnt = mountLoop(ctx, a.LoopDevice!);
    const fio = spawn(
      'fio',
      [
        '--name=w',
        `--directory=${mnt}`,
        '--rw=randwrite',
        '--bs=4k',
        '--size=64M',
        '--time_based',
        '--runtime=20',
        '--ioengine=psync',
        '--fsync=16',
        '--thread',
      ],
      { stdio: 'ignore' },
    );
    // Listen from the start: fio may finish before the finally block, and 'exit' fires only once.
    const exited = new Promise((r) => fio.once('exit', r));
    try {
      // Snapshot once fio is really writing: its file exists and has been laid out.
      await expect.poll(() => fs.readdirSync(mnt).some((f) => f.startsWith('w.') && fs.statSync(path.join(mnt, f)).size > 0), { timeout: 30_000 }).toBe(true);
      const snap = kmsvol(ctx.home, ['ec2', 'create-snapshot', '--volume-id', vol]);
      expect(snap.code, snap.stderr).toBe(0);
      expect(fio.exitCode).toBeNull(); // fio kept running through the snapshot
      const copyVol = kmsvol(ctx.home, ['ec2', 'create-volume', '--snapshot-id', snap.json.SnapshotId]).json.VolumeId;
      const b = attach(ctx.home, copyVol, ['--loop']);
      const fsck = spawnSync('fsck.ext4', ['-fn', b.LoopDevice!], { encoding: 'utf8' });
      expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
      detach(ctx.home, copyVol);
    } finally {
      fio.kill('SIGKILL');
      await exited;
    }
    unmount(ctx, mnt);
    detach(ctx.home, vol);
  });
  it('three create-snapshot calls at once on an attached volume with ext4 mounted all complete, each a clean copy of the same file', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', '-F', a.LoopDevice!]);
    const mnt = mountLoop(ctx, a.LoopDevice!);
    const data = crypto.randomBytes(1 << 20);
    fs.writeFileSync(path.join(mnt, 'f'), data);
    execFileSync('sync', ['-f', path.join(mnt, 'f')]);
    // EC2 takes concurrent snapshots of one volume; here they share the card's freeze instead of failing on it.
    const snaps = await Promise.all([0, 1, 2].map(() => kmsvolAsync(ctx.home, ['ec2', 'create-snapshot', '--volume-id', vol])));
    for (const s of snaps) expect(s.code, s.stderr).toBe(0);
    // Every freeze was thawed: the mounted filesystem takes writes again.
    fs.writeFileSync(path.join(mnt, 'after'), 'x');
    execFileSync('sync', ['-f', path.join(mnt, 'after')]);
    unmount(ctx, mnt);
    detach(ctx.home, vol);
    for (const s of snaps) {
      const copy = kmsvol(ctx.home, ['ec2', 'create-volume', '--snapshot-id', s.json.SnapshotId]).json.VolumeId;
      const b = attach(ctx.home, copy, ['--loop']);
      const fsck = spawnSync('fsck.ext4', ['-fn', b.LoopDevice!], { encoding: 'utf8' });
      expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
      const m = mountLoop(ctx, b.LoopDevice!);
      expect(fs.readFileSync(path.join(m, 'f')).equals(data)).toBe(true);
      unmount(ctx, m);
      detach(ctx.home, copy);
    }
  });
  it('the freeze reaches the file system on the loop device through a descriptor, never through its mount point name: covered by another file system, the freeze is refused and the cover is never frozen', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', '-F', a.LoopDevice!]);
    const mnt = mountLoop(ctx, a.LoopDevice!);
    const sock = path.join(ctx.home, 'run', `${vol}.sock`);
    // The volume's ext4 is frozen: a second freeze of it is EBUSY.
    const f = await callControl(sock, { op: 'freeze' });
    expect(f.ok).toBe(true);
    expect(spawnSync('fsfreeze', ['--freeze', mnt], { encoding: 'utf8' }).status).not.toBe(0);
    expect((await callControl(sock, { op: 'thaw', freezeId: f.freezeId as number })).ok).toBe(true);
    // Another ext4 mounted over the mount point: the name now leads to it, not to the volume's file system.
    const cover = path.join(ctx.home, 'cover.img');
    fs.writeFileSync(cover, Buffer.alloc(0));
    fs.truncateSync(cover, 8 << 20);
    execFileSync('mkfs.ext4', ['-q', '-F', cover]);
    execFileSync('mount', ['-o', 'loop', cover, mnt]);
    ctx.mounts.push(mnt);
    try {
      const covered = await callControl(sock, { op: 'freeze' });
      expect(covered).toMatchObject({ ok: false, error: { name: 'IoError' } });
      expect((covered as { error: { message: string } }).error.message).toContain('no longer leads to the file system');
      // The cover was not frozen: freezing it now succeeds.
      expect(spawnSync('fsfreeze', ['--freeze', mnt], { encoding: 'utf8' }).status).toBe(0);
      execFileSync('fsfreeze', ['--unfreeze', mnt]);
    } finally {
      spawnSync('fsfreeze', ['--unfreeze', mnt]);
      unmount(ctx, mnt);
    }
    unmount(ctx, mnt);
    detach(ctx.home, vol);
  });
  it("a snapshot's freeze is a lease: unrenewed it ends (a held-back write lands) and its late thaw is refused, so the copy fails instead of being torn; renewed it holds", async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const sock = path.join(ctx.home, 'run', `${vol}.sock`);
    const f = await callControl(sock, { op: 'freeze', leaseMs: 500 });
    expect(f.ok).toBe(true);
    // The write waits in the card while frozen and lands once the lease has run out.
    const data = crypto.randomBytes(4096);
    const fh = await fs.promises.open(a.Device, 'r+');
    await fh.write(data, 0, data.length, 8192);
    await fh.close();
    const late = await callControl(sock, { op: 'thaw', freezeId: f.freezeId as number });
    expect(late).toMatchObject({ ok: false, error: { name: 'IncorrectState' } });
    expect(
      head(a.Device, 8192 + 4096)
        .subarray(8192)
        .equals(data),
    ).toBe(true);
    const g = await callControl(sock, { op: 'freeze', leaseMs: 60_000 });
    expect(g.ok).toBe(true);
    expect(await callControl(sock, { op: 'renew', freezeId: g.freezeId as number })).toEqual({ ok: true });
    expect(await callControl(sock, { op: 'thaw', freezeId: g.freezeId as number })).toEqual({ ok: true });
    detach(ctx.home, vol);
  });
});
