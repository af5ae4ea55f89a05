import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';
import { cardPid } from '../helpers/procs.js';
import { createVolume, releaseLoopsUnder, volumeHome } from '../helpers/volumes.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The card reads a range of 256 KiB or more with O_DIRECT only when the
 * image's page cache holds none of it (read_image, native/src/fuse_server.c),
 * asked of cachestat(2) on the image's descriptor. What the home's file
 * system is decides whether cachestat sees that cache: an overlayfs file (the
 * root of a container) keeps no page cache of its own (its reads and writes
 * go to the file below), so cachestat on it always says 0. Checked from
 * outside by what the card itself reads from the disk (/proc/PID/io
 * read_bytes, counted as its bios are submitted): a 1 MiB read of a range it
 * has just written (a lone write stays buffered: dirty in the page cache)
 * must cost no disk read.
 */
const root = process.getuid?.() === 0;

/** A home on an overlayfs mount (upper and work directories under the temp directory), removed with its volumes afterwards. */
function overlayHome(): { home: string; key: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-ovl-'));
  for (const d of ['lower', 'upper', 'work', 'home']) fs.mkdirSync(path.join(dir, d), { mode: 0o700 });
  const home = path.join(dir, 'home');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`, home]);
  onCleanup(() => {
    const vols = kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? [];
    for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
    spawnSync('umount', [home]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fs.chmodSync(home, 0o700);
  const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
  return { home, key };
}

/** Bytes the process has had read from storage for it (its bios), all threads. */
const readBytes = (pid: number) => Number(/^read_bytes: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);

function readsWhatItWrote(home: string, key: string): number {
  const vol = createVolume(home, key);
  const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol]);
  expect(r.code, r.stderr).toBe(0);
  const fd = fs.openSync(r.json.Device, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  onCleanup(() => fs.closeSync(fd));
  const data = crypto.randomBytes(MiB);
  expect(fs.writeSync(fd, data, 0, MiB, 8 * MiB)).toBe(MiB);
  const pid = cardPid(vol);
  const before = readBytes(pid);
  const got = Buffer.alloc(MiB);
  expect(fs.readSync(fd, got, 0, MiB, 8 * MiB)).toBe(MiB);
  expect(got.equals(data)).toBe(true);
  return readBytes(pid) - before;
}

describe.skipIf(!root)("the card's direct reads and the home's file system", () => {
  it('on ext4 (the temp directory), a 1 MiB read of what was just written is answered from the page cache: the card reads nothing from the disk', () => {
    const { home, key } = volumeHome();
    expect(readsWhatItWrote(home, key)).toBeLessThan(256 * KiB);
  });

  it('on overlayfs (a container), a 1 MiB read of what was just written is answered from the page cache: the card reads nothing from the disk', () => {
    const { home, key } = overlayHome();
    expect(readsWhatItWrote(home, key)).toBeLessThan(256 * KiB);
  });
});

/**
 * A home on ext4 over a loop device whose backing file lives on a small tmpfs:
 * once the tmpfs is full, the loop device fails writes to blocks it has not
 * stored yet (ENOSPC), as thin-provisioned or failing storage does, while
 * every block already written still reads back.
 */
function homeOnFillableDisk(): { home: string; key: string; fill: () => void; unstore: (image: string, off: number, len: number) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-wberr-'));
  const t = path.join(dir, 't');
  const home = path.join(dir, 'home');
  fs.mkdirSync(t, { mode: 0o700 });
  fs.mkdirSync(home, { mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m,mode=0700', 'tmpfs', t]);
  let mounted = false;
  onCleanup(() => {
    fs.rmSync(path.join(t, 'fill'), { force: true }); // room again for what detach writes
    if (mounted) {
      const vols = kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? [];
      for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
      spawnSync('umount', [home]);
    }
    releaseLoopsUnder(t);
    spawnSync('umount', [t]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const disk = path.join(t, 'disk');
  fs.closeSync(fs.openSync(disk, 'w', 0o600));
  fs.truncateSync(disk, 2 ** 30);
  const loop = execFileSync('losetup', ['-f', '--show', disk], { encoding: 'utf8' }).trim();
  // Every block of the file system's own (inode tables, journal) written now, so only file data can meet the full tmpfs.
  execFileSync('mkfs.ext4', ['-q', '-E', 'lazy_itable_init=0,lazy_journal_init=0', '-N', '256', '-J', 'size=4', loop]);
  execFileSync('mount', [loop, home]);
  mounted = true;
  fs.chmodSync(home, 0o700);
  const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
  const fill = () => {
    // Everything written so far reaches its place on the disk first (a freeze checkpoints the journal): only what is written next meets the full tmpfs.
    execFileSync('fsfreeze', ['-f', home]);
    execFileSync('fsfreeze', ['-u', home]);
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(t, 'fill')}`, 'bs=1M', 'status=none']);
    expect(fs.statfsSync(t).bavail).toBe(0);
  };
  /** Give back to the tmpfs the pages under image bytes [off, off + len) (written and checkpointed), so a write there meets the full tmpfs again. */
  const unstore = (image: string, off: number, len: number) => {
    const out = execFileSync('filefrag', ['-e', image], { encoding: 'utf8' });
    const bs = Number(/blocks of (\d+) bytes/.exec(out)![1]);
    let punched = 0;
    for (const m of out.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*\d+:/gm)) {
      const [lo, hi, phys] = [Number(m[1]) * bs, (Number(m[2]) + 1) * bs, Number(m[3]) * bs];
      const from = Math.max(lo, off);
      const to = Math.min(hi, off + len);
      if (from >= to) continue;
      execFileSync('fallocate', ['--punch-hole', '--keep-size', '--offset', String(phys + from - lo), '--length', String(to - from), disk]);
      punched += to - from;
    }
    expect(punched).toBe(len);
  };
  return { home, key, fill, unstore };
}

describe.skipIf(!root)("the card's direct reads after the image failed a write-back", () => {
  it('a 1 MiB read of data on the disk answers its bytes although another range of the image could not be written back (ENOSPC below the home)', () => {
    const { home, key, fill, unstore } = homeOnFillableDisk();
    const vol = createVolume(home, key);
    const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(r.code, r.stderr).toBe(0);
    const image = path.join(home, 'volumes', `${vol}.img`);
    const payload = 16 * MiB; // the LUKS2 header kmsvol writes
    const fd = fs.openSync(r.json.Device, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    onCleanup(() => fs.closeSync(fd));
    // A and B: 1 MiB each, written and synced (on the disk), then the image's cache dropped.
    const a = crypto.randomBytes(MiB);
    expect(fs.writeSync(fd, a, 0, MiB, 8 * MiB)).toBe(MiB);
    expect(fs.writeSync(fd, crypto.randomBytes(MiB), 0, MiB, 10 * MiB)).toBe(MiB);
    fs.fsyncSync(fd);
    // B's blocks given back below the home, which then fills: B's next write-back fails (ENOSPC), and changes nothing of the file system's own.
    unstore(image, payload + 10 * MiB, MiB);
    fill();
    execFileSync('dd', [`if=${image}`, 'iflag=nocache', 'count=0', 'status=none']);
    // In one process that starts no other (a child's exec closes its copy of the volume file's descriptor: FUSE_FLUSH, so the card's
    // fdatasync, which takes the failure in first): B written again (acknowledged, buffered), the home's syncfs writes it back and
    // fails, then A read. A is on the disk and readable: reading it must not fail because B could not be written.
    const py = `
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
f = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
img = os.open(sys.argv[2], os.O_RDONLY)
buf = mmap.mmap(-1, 1 << 20)
buf.write(os.urandom(1 << 20))
assert os.pwritev(f, [buf], 10 << 20) == 1 << 20
print('syncfs', libc.syncfs(img), os.strerror(ctypes.get_errno()))
try:
    n = os.preadv(f, [buf], 8 << 20)
    print('read', n, buf[:] == open(sys.argv[3], 'rb').read())
except OSError as e:
    print('read', e.strerror)
`;
    const want = path.join(path.dirname(home), 'a');
    fs.writeFileSync(want, a);
    const out = execFileSync('python3', ['-c', py, r.json.Device, image, want], { encoding: 'utf8' });
    expect(out).toMatch(/^syncfs -1 No space left on device$/m);
    expect(out).toMatch(/^read 1048576 True$/m);
  });
});
