import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeHeader } from '../../src/volume/luks2.js';
import { kmsvol } from './cli.js';
import { onCleanup, tempHome } from './home.js';
import { serveHome, serverMode } from './kms-server.js';

/**
 * A home with a key, for volume tests. Cleanup always runs, even when the test
 * fails: unmount what the test mounted, force-detach every volume, release any
 * loop device backed by a file in the home, and remove the home.
 */
export function volumeHome(): { home: string; key: string; mounts: string[] } {
  const home = tempHome('kmsvol-vol-');
  const mounts: string[] = [];
  onCleanup(() => {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    const vols = kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? [];
    for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
    releaseLoopsUnder(home);
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(home)) spawnSync('umount', ['-l', mp]);
    }
  });
  if (serverMode) onCleanup(serveHome(home));
  const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
  return { home, key, mounts };
}

export function createVolume(home: string, key: string, sizeGiB = 1): string {
  const r = kmsvol(home, ['ec2', 'create-volume', '--size', String(sizeGiB), '--encrypted', '--kms-key-id', key]);
  if (r.code !== 0) throw new Error(`create-volume failed: ${r.stderr}`);
  return r.json.VolumeId;
}

export function attach(home: string, vol: string, extra: string[] = []): { Device: string; LoopDevice?: string } {
  const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol, ...extra]);
  if (r.code !== 0) throw new Error(`attach-volume failed (${r.code}): ${r.stderr}`);
  return r.json;
}

export function detach(home: string, vol: string): void {
  const r = kmsvol(home, ['ec2', 'detach-volume', '--volume-id', vol]);
  if (r.code !== 0) throw new Error(`detach-volume failed (${r.code}): ${r.stderr}`);
}

/**
 * Release every loop device still backed by a file under `dir` (a card's
 * device is set up with autoclear, so normally none is left). Never by number
 * alone: the device is held open while its backing file is read and released,
 * so its number cannot go to another test's volume in between (while held, a
 * bound device stays bound to the same file; losetup -d only marks it, and it
 * is freed when this descriptor closes).
 */
export function releaseLoopsUnder(dir: string): void {
  for (const name of fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n))) {
    let fd: number;
    try {
      fd = fs.openSync(`/dev/${name}`, 'r');
    } catch {
      continue;
    }
    try {
      const backing = fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8');
      if (backing.startsWith(`${dir}/`)) spawnSync('losetup', ['-d', `/dev/${name}`]);
    } catch {
      /* not bound */
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Mount a loop device on a fresh directory inside the home (unmounted by cleanup). */
export function mountLoop(ctx: { home: string; mounts: string[] }, dev: string): string {
  const dir = fs.mkdtempSync(path.join(ctx.home, 'mnt-'));
  execFileSync('mount', [dev, dir]);
  ctx.mounts.push(dir);
  return dir;
}

export function unmount(ctx: { mounts: string[] }, dir: string): void {
  execFileSync('umount', [dir]);
  ctx.mounts.splice(ctx.mounts.indexOf(dir), 1);
}

/** The first n bytes of a file (a volume device or an image), without reading the rest. */
export function head(file: string, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, n, 0);
  } finally {
    fs.closeSync(fd);
  }
  return b;
}

/**
 * A home on a tmpfs of `sizeMiB` that the test mounts (so it can fill it and
 * grow it). Cleanup always runs: force-detach every volume, release loop
 * devices backed by files in it, unmount everything under it, then the tmpfs.
 */
export function tmpfsHome(sizeMiB: number): { dir: string; home: string; mounts: string[]; grow(sizeMiB: number): void } {
  const dir = tempHome('kmsvol-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]);
  return { ...homeOn(dir, () => {}), grow: (mib) => execFileSync('mount', ['-o', `remount,size=${mib}m`, dir]) };
}

/**
 * A home on an ext4 of `sizeMiB` (no blocks reserved for root), mounted over
 * an image in another temporary directory: ext4 keeps what a fallocate that
 * failed part-way allocated, which tmpfs undoes. Cleanup as tmpfsHome's, then
 * the loop device under the file system.
 */
export function ext4Home(sizeMiB: number): { dir: string; home: string; mounts: string[] } {
  const img = path.join(tempHome('kmsvol-ext4img-'), 'fs.img');
  fs.writeFileSync(img, '', { mode: 0o600 });
  fs.truncateSync(img, sizeMiB << 20);
  execFileSync('mkfs.ext4', ['-q', '-m', '0', img]);
  const dir = tempHome('kmsvol-ext4-');
  execFileSync('mount', ['-o', 'loop', img, dir]); // the loop device is set up with autoclear: released at the unmount
  fs.chmodSync(dir, 0o700);
  return homeOn(dir, () => releaseLoopsUnder(path.dirname(img)));
}

/** The home in `dir`, a file system the test mounted, and its cleanup: volumes, loop devices and mounts under it, then `dir`, then `release`. */
function homeOn(dir: string, release: () => void): { dir: string; home: string; mounts: string[] } {
  const home = path.join(dir, 'home');
  const mounts: string[] = [];
  onCleanup(() => {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    const vols = kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? [];
    for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
    releaseLoopsUnder(dir);
    const under = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((mp) => mp?.startsWith(`${dir}/`));
    for (const mp of under.reverse()) spawnSync('umount', ['-l', mp!]);
    spawnSync('umount', ['-l', dir]);
    release();
  });
  return { dir, home, mounts };
}

/** A volume image's data key, as a user recovers it: kms decrypt of its token's blob with the volume's context. */
export function dataKeyOf(home: string, img: string): Buffer {
  const t = decodeHeader(head(img, 32768)).token;
  const r = kmsvol(home, [
    'kms',
    'decrypt',
    '--ciphertext-blob',
    t.ciphertextBlob,
    '--encryption-context',
    JSON.stringify(t.encryptionContext),
    '--query',
    'Plaintext',
    '--output',
    'text',
  ]);
  if (r.code !== 0) throw new Error(`kms decrypt of ${img}'s data key failed: ${r.stderr}`);
  return Buffer.from(r.stdout.trim(), 'base64');
}
