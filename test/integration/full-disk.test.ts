import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { callControl } from '../../src/card/control.js';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { cardPids } from '../helpers/procs.js';
import { attach, createVolume, detach, ext4Home, mountLoop, tmpfsHome, unmount } from '../helpers/volumes.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('a full disk under the image loses nothing an fsync acknowledged', () => {
  it('ext4 on --loop, dd conv=fsync until the disk is full: every acknowledged file reads back after grow, detach and reattach', () => {
    // Finding 1 of issue 13: the last acknowledged file came back partly zero.
    const t = tmpfsHome(120);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    let a = attach(t.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', a.LoopDevice!]);
    let mnt = mountLoop(t, a.LoopDevice!);
    const chunkFile = path.join(tempHome('kmsvol-chunk-'), 'chunk');
    const chunk = crypto.randomBytes(1 << 20);
    fs.writeFileSync(chunkFile, chunk);
    const acked: string[] = [];
    let failedAt = -1;
    for (let i = 0; i < 400; i++) {
      const r = spawnSync('dd', [`if=${chunkFile}`, `of=${mnt}/f${i}`, 'bs=1M', 'conv=fsync', 'status=none']);
      if (r.status !== 0) {
        failedAt = i;
        break;
      }
      acked.push(`f${i}`);
    }
    // The disk did fill (the image's tmpfs is 120 MiB under a 1 GiB volume), after real progress.
    expect(failedAt).toBeGreaterThan(20);
    spawnSync('umount', [mnt]); // may fail to write back: the fs has seen I/O errors
    t.mounts.splice(t.mounts.indexOf(mnt), 1);
    t.grow(2048);
    detach(t.home, vol);
    a = attach(t.home, vol, ['--loop']);
    mnt = mountLoop(t, a.LoopDevice!);
    const lost = acked.filter((f) => !fs.existsSync(`${mnt}/${f}`) || sha256(fs.readFileSync(`${mnt}/${f}`)) !== sha256(chunk));
    expect(lost, `acknowledged files lost of ${acked.length}`).toEqual([]);
    unmount(t, mnt);
    detach(t.home, vol);
  });
});

/** Fill the file system holding `dir` to the last block. */
function fill(dir: string, name: string): void {
  spawnSync('dd', ['if=/dev/zero', `of=${path.join(dir, name)}`, 'bs=4k', 'status=none']);
  expect(fs.statfsSync(dir).bavail).toBe(0);
}

describe('a full home disk (finding 6 of issue 13)', () => {
  it('the image fills the disk: detach still works, the card exits, and the data written before reads back', () => {
    const t = tmpfsHome(64);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    let a = attach(t.home, vol);
    const first = crypto.randomBytes(4 << 20);
    let fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, first, 0, first.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const dd = spawnSync('dd', ['if=/dev/urandom', `of=${a.Device}`, 'bs=1M', 'count=200', 'seek=8', 'conv=notrunc,fsync', 'status=none'], {
      encoding: 'utf8',
    });
    expect(dd.stderr).toMatch(/No space left on device/);
    fill(t.dir, 'filler');
    expect(cardPids(vol)).toHaveLength(1);
    detach(t.home, vol);
    expect(cardPids(vol)).toEqual([]);
    expect(kmsvol(t.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0]).toMatchObject({ State: 'available', Attachments: [] });
    fs.rmSync(path.join(t.dir, 'filler'));
    a = attach(t.home, vol);
    const back = Buffer.alloc(first.length);
    fd = fs.openSync(a.Device, 'r');
    fs.readSync(fd, back, 0, back.length, 0);
    fs.closeSync(fd);
    expect(back.equals(first)).toBe(true);
    detach(t.home, vol);
  });

  it('the registry cannot be written at detach: the card still zeroizes and exits, and the next command reconciles', async () => {
    const t = tmpfsHome(64);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    attach(t.home, vol);
    fs.rmSync(path.join(t.home, 'reserve'));
    fill(t.dir, 'filler');
    // Detach straight through the card's control socket, so that no command releases anything first.
    const reply = await callControl(path.join(t.home, 'run', `${vol}.sock`), { op: 'detach' });
    expect(reply.ok).toBe(true);
    await expect.poll(() => cardPids(vol), { timeout: 30_000 }).toEqual([]);
    const log = fs.readFileSync(path.join(t.home, 'run', `${vol}.log`), 'utf8');
    expect(log).toContain('detached; data key zeroized');
    expect(log).toContain('the registry could not be updated; the next command will');
    fs.rmSync(path.join(t.dir, 'filler'));
    expect(kmsvol(t.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0]).toMatchObject({ State: 'available', Attachments: [] });
    attach(t.home, vol);
    detach(t.home, vol);
  });
});

describe('a nearly full ext4 home', () => {
  it('with 2 MiB of room, a 1 MiB O_DIRECT write to a part of the volume never written is acknowledged and reads back after reattach (no 4 MiB reservation run near a full disk)', () => {
    // breaker11's finding: the card reserved the 4 MiB run around a large write even on a nearly full disk; ext4 keeps what a
    // fallocate that fails part-way allocated, so the run took the room the write itself needed, and the write failed ENOSPC.
    const t = ext4Home(320);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    let a = attach(t.home, vol);
    const src = path.join(tempHome('kmsvol-src-'), 'data');
    const data = crypto.randomBytes(1 << 20);
    fs.writeFileSync(src, data);
    const st = fs.statfsSync(t.dir);
    execFileSync('fallocate', ['-l', String(st.bavail * st.bsize - (2 << 20)), path.join(t.dir, 'filler')]);
    // The last MiB of a 4 MiB run: a run tried here would be allocated from its start and use up the room before this MiB.
    const dd = spawnSync('dd', [`if=${src}`, `of=${a.Device}`, 'bs=1M', 'count=1', 'seek=515', 'oflag=direct', 'conv=notrunc,fsync', 'status=none'], {
      encoding: 'utf8',
    });
    expect(dd.status, dd.stderr).toBe(0);
    fs.rmSync(path.join(t.dir, 'filler'));
    detach(t.home, vol);
    a = attach(t.home, vol);
    const back = Buffer.alloc(data.length);
    const fd = fs.openSync(a.Device, 'r');
    fs.readSync(fd, back, 0, back.length, 515 << 20);
    fs.closeSync(fd);
    expect(sha256(back)).toBe(sha256(data));
    detach(t.home, vol);
  });
});

describe('a full disk during snapshots and copies (issue 13)', () => {
  it('create-snapshot, copy-snapshot and create-volume --snapshot-id on a full disk: each fails whole, nothing half-made; with room again each works and the data reads back', () => {
    const t = tmpfsHome(160);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    const data = crypto.randomBytes(24 << 20);
    const a = attach(t.home, vol);
    const fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, data, 0, data.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(t.home, vol);
    const files = () =>
      ['volumes', 'snapshots'].flatMap((d) => (fs.existsSync(path.join(t.home, d)) ? fs.readdirSync(path.join(t.home, d)).map((f) => `${d}/${f}`) : [])).sort();
    const state = () => ({
      files: files(),
      volumes: kmsvol(t.home, ['ec2', 'describe-volumes']).json.Volumes.map((v: { VolumeId: string; State: string }) => `${v.VolumeId}:${v.State}`),
      snapshots: kmsvol(t.home, ['ec2', 'describe-snapshots']).json.Snapshots.map((s: { SnapshotId: string; State: string }) => `${s.SnapshotId}:${s.State}`),
    });
    /** Leave `room` bytes free, with a filler the test removes to make room. */
    const squeeze = (room: number) => {
      const free = fs.statfsSync(t.dir).bavail * fs.statfsSync(t.dir).bsize;
      fs.writeFileSync(path.join(t.dir, 'filler'), Buffer.alloc(Math.max(0, free - room)));
    };
    const readBack = (id: string) => {
      const b = attach(t.home, id);
      const back = Buffer.alloc(data.length);
      const rfd = fs.openSync(b.Device, 'r');
      fs.readSync(rfd, back, 0, back.length, 0);
      fs.closeSync(rfd);
      detach(t.home, id);
      expect(back.equals(data), `data of ${id}`).toBe(true);
    };

    // create-snapshot: 24 MiB to copy, 8 MiB of room.
    let before = state();
    squeeze(8 << 20);
    let r = kmsvol(t.home, ['ec2', 'create-snapshot', '--volume-id', vol]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/No space left on device|full/);
    fs.rmSync(path.join(t.dir, 'filler'));
    expect(state()).toEqual(before);
    readBack(vol);
    r = kmsvol(t.home, ['ec2', 'create-snapshot', '--volume-id', vol]);
    expect(r.code, r.stderr).toBe(0);
    const snap = r.json.SnapshotId;

    // copy-snapshot (re-encrypted under a new data key) and create-volume --snapshot-id, each with 8 MiB of room.
    for (const args of [
      ['ec2', 'copy-snapshot', '--source-snapshot-id', snap],
      ['ec2', 'create-volume', '--snapshot-id', snap],
    ]) {
      before = state();
      squeeze(8 << 20);
      r = kmsvol(t.home, args);
      expect(r.code, `${args[1]}: ${r.stdout}`).not.toBe(0);
      fs.rmSync(path.join(t.dir, 'filler'));
      expect(state(), args[1]).toEqual(before);
    }
    readBack(vol);
    r = kmsvol(t.home, ['ec2', 'copy-snapshot', '--source-snapshot-id', snap]);
    expect(r.code, r.stderr).toBe(0);
    r = kmsvol(t.home, ['ec2', 'create-volume', '--snapshot-id', r.json.SnapshotId]);
    expect(r.code, r.stderr).toBe(0);
    readBack(r.json.VolumeId);
  });
});

describe('a 7 MiB O_DIRECT write on a full disk is ENOSPC (finding 8 of issue 24)', () => {
  /**
   * Write `src` to `device` in 7 MiB O_DIRECT pwrites from a page-aligned
   * buffer until one fails; prints the bytes acknowledged and the errno name.
   * A short write counts its bytes and goes on with the rest, as dd does.
   */
  const WRITER = `
import errno, mmap, os, sys
src, dev = sys.argv[1], sys.argv[2]
rec = 7 << 20
buf = mmap.mmap(-1, rec)
fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
done = 0
with open(src, 'rb') as f:
    while True:
        chunk = f.read(rec)
        if not chunk:
            print(done, 'none'); break
        buf.seek(0); buf.write(chunk)
        view = memoryview(buf)[:len(chunk)]
        try:
            while len(view):
                n = os.pwrite(fd, view, done)
                done += n
                view = view[n:]
        except OSError as e:
            print(done, errno.errorcode[e.errno]); break
`;

  /** fio's errno for one 7 MiB O_DIRECT write at `offsetMiB`, as `err=N` (none: it succeeded). */
  function fioErr(device: string, engine: string, offsetMiB: number): string {
    const r = spawnSync(
      'fio',
      ['--name=w', `--filename=${device}`, `--ioengine=${engine}`, '--direct=1', '--rw=write', '--bs=7M', '--size=7M', `--offset=${offsetMiB}M`, '--iodepth=1'],
      { encoding: 'utf8' },
    );
    return /err=\s*(\d+)/.exec(r.stdout + r.stderr)?.[1] ?? 'none';
  }

  it('7 MiB O_DIRECT writes until the home disk is full fail with ENOSPC (not EIO), through sync writes and libaio (fio); every byte acknowledged reads back', () => {
    const t = tmpfsHome(64);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    let a = attach(t.home, vol);
    const src = path.join(tempHome('kmsvol-7m-'), 'src');
    const data = crypto.randomBytes(140 << 20);
    fs.writeFileSync(src, data);
    const w = spawnSync('python3', ['-c', WRITER, src, a.Device], { encoding: 'utf8' });
    expect(w.status, w.stderr).toBe(0);
    const [ackedText, err] = w.stdout.trim().split(' ');
    const acked = Number(ackedText);
    // The disk filled (64 MiB of tmpfs under a 1 GiB volume) after real progress, with the errno the writer should see.
    expect(err).toBe('ENOSPC');
    expect(acked).toBeGreaterThanOrEqual(5 * (7 << 20));
    // A whole 7 MiB write into the full disk, past what was written: ENOSPC (28) through sync and async I/O, never EIO (5).
    for (const engine of ['psync', 'libaio']) expect(fioErr(a.Device, engine, 280), engine).toBe('28');
    t.grow(2048);
    detach(t.home, vol);
    a = attach(t.home, vol);
    const back = Buffer.alloc(acked);
    const fd = fs.openSync(a.Device, 'r');
    fs.readSync(fd, back, 0, acked, 0);
    fs.closeSync(fd);
    expect(sha256(back)).toBe(sha256(data.subarray(0, acked)));
    detach(t.home, vol);
  });
});
