import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { fileContains } from '../helpers/scan.js';
import { unpackImage } from '../helpers/sparse-image.js';
import { attach, createVolume, dataKeyOf, detach, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

function cardPid(vol: string): number {
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('card/main.js') && cmd.includes(vol)) return Number(p);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no card process for ${vol}`);
}

/**
 * The card's locked memory (its guarded key pages: mlocked, so VmLck counts them) at the moment it exits:
 * gdb stops it at exit_group, after everything the card did on the way out. `trigger` makes it exit.
 */
async function lockedAtExit(pid: number, trigger: () => void): Promise<string> {
  const out = path.join(tempHome('kmsvol-gdb-'), 'status');
  const gdb = spawn(
    'gdb',
    [
      '-p',
      String(pid),
      '-batch',
      '-ex',
      'handle SIGTERM nostop noprint pass',
      '-ex',
      'catch syscall exit_group',
      '-ex',
      'continue',
      '-ex',
      `shell grep VmLck /proc/${pid}/status > ${out}`,
      '-ex',
      'detach',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => gdb.once('exit', r));
  onCleanup(() => gdb.kill('SIGKILL'));
  await expect.poll(() => /^TracerPid:\s+[1-9]/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')), { timeout: 30_000 }).toBe(true);
  trigger();
  await exited;
  return fs.readFileSync(out, 'utf8');
}

describe('format compatibility, large volumes and the running card', () => {
  it('attaches the frozen format-v1 fixture and reads its sectors', () => {
    const fixture = path.join(ROOT, 'test/fixtures/volume-v1');
    const meta = JSON.parse(fs.readFileSync(path.join(fixture, 'image.json'), 'utf8'));
    const home = tempHome('kmsvol-fixture-');
    for (const f of ['kms.db', 'root.key', 'ec2.db']) {
      fs.copyFileSync(path.join(fixture, f), path.join(home, f));
      fs.chmodSync(path.join(home, f), 0o600);
    }
    fs.mkdirSync(path.join(home, 'volumes'), { mode: 0o700 });
    unpackImage(meta.image, path.join(home, 'volumes', `${meta.volumeId}.img`));
    try {
      expect(spawnSync('cryptsetup', ['luksDump', path.join(home, 'volumes', `${meta.volumeId}.img`)]).status).toBe(0);
      // The fixture's home predates us-east-1 as the default region: its volume is in region "local".
      const a = attach(home, meta.volumeId, ['--region', 'local']);
      const fd = fs.openSync(a.Device, 'r');
      for (const s of meta.sectors as number[]) {
        const b = Buffer.alloc(4096);
        fs.readSync(fd, b, 0, 4096, s * 4096);
        expect(b.equals(Buffer.alloc(4096, `kmsvol fixture v1 sector ${s}\n`)), `sector ${s}`).toBe(true);
      }
      fs.closeSync(fd);
      const d = kmsvol(home, ['ec2', 'detach-volume', '--volume-id', meta.volumeId, '--region', 'local']);
      expect(d.code, d.stderr).toBe(0);
    } finally {
      kmsvol(home, ['ec2', 'detach-volume', '--volume-id', meta.volumeId, '--force', '--region', 'local']);
    }
  });

  it('a full backing disk is ENOSPC to the writer, and what was written before survives', () => {
    const dir = tempHome('kmsvol-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', dir]);
    const home = path.join(dir, 'home');
    try {
      const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
      const vol = createVolume(home, key);
      const a = attach(home, vol);
      // Room the user can free later, as they would on a real full disk.
      const filler = path.join(dir, 'filler');
      fs.writeFileSync(filler, Buffer.alloc(4 << 20, 1));
      const fd = fs.openSync(a.Device, 'r+');
      const first = crypto.randomBytes(1 << 20);
      fs.writeSync(fd, first, 0, first.length, 0);
      fs.fsyncSync(fd);
      let failure: NodeJS.ErrnoException | undefined;
      const chunk = crypto.randomBytes(1 << 20);
      for (let i = 1; i < 100 && !failure; i++) {
        try {
          fs.writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
          fs.fsyncSync(fd);
        } catch (e) {
          failure = e as NodeJS.ErrnoException;
        }
      }
      expect(failure?.code).toBe('ENOSPC');
      fs.rmSync(filler);
      // The volume lost a write: every later fsync fails, even with space freed and on close, so nothing after it is acknowledged.
      expect(() => fs.fsyncSync(fd)).toThrow(/ENOSPC/);
      expect(() => fs.closeSync(fd)).toThrow(/ENOSPC/);
      detach(home, vol);
      // What was acknowledged before comes back from the image, not from a page cache.
      const again = attach(home, vol);
      const back = Buffer.alloc(first.length);
      const rfd = fs.openSync(again.Device, 'r');
      fs.readSync(rfd, back, 0, back.length, 0);
      fs.closeSync(rfd);
      expect(back.equals(first)).toBe(true);
      detach(home, vol);
    } finally {
      for (const v of kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? []) {
        if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
      }
      spawnSync('umount', ['-l', dir]);
    }
  });

  it('works past 4 GiB on a sparse 8 GiB volume', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key, 8);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    expect(fs.statSync(img).size).toBe(8 * 2 ** 30 + 16 * 2 ** 20);
    expect(fs.statSync(img).blocks * 512).toBeLessThan(1 << 20);
    const at = [5 * 2 ** 30 + 12_345, 8 * 2 ** 30 - 4096, 2 ** 32 - 100];
    const data = at.map(() => crypto.randomBytes(8192));
    let a = attach(ctx.home, vol);
    expect(fs.statSync(a.Device).size).toBe(8 * 2 ** 30);
    let fd = fs.openSync(a.Device, 'r+');
    at.forEach((off, i) => {
      fs.writeSync(fd, data[i]!, 0, Math.min(8192, 8 * 2 ** 30 - off), off);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, vol);
    a = attach(ctx.home, vol);
    fd = fs.openSync(a.Device, 'r');
    at.forEach((off, i) => {
      const n = Math.min(8192, 8 * 2 ** 30 - off);
      const b = Buffer.alloc(n);
      expect(fs.readSync(fd, b, 0, n, off)).toBe(n);
      expect(b.equals(data[i]!.subarray(0, n)), `offset ${off}`).toBe(true);
    });
    // Reading at the very end returns nothing.
    expect(fs.readSync(fd, Buffer.alloc(10), 0, 10, 8 * 2 ** 30)).toBe(0);
    fs.closeSync(fd);
    detach(ctx.home, vol);
    expect(fs.statSync(img).blocks * 512).toBeLessThan(4 << 20);
  });

  it('the running card is non-dumpable, and a core image of it holds no byte of the data key', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    // Put the key to work so the cipher is keyed and sectors have gone through it.
    execFileSync('dd', ['if=/dev/urandom', `of=${a.LoopDevice}`, 'bs=1M', 'count=8', 'oflag=direct', 'status=none']);
    const pid = cardPid(vol);
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^VmLck:\s+[1-9]\d* kB/m);
    const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
    expect(limits).toMatch(/Max core file size\s+0\s+0/);
    const dir = tempHome('kmsvol-cardcore-');
    execFileSync('gcore', ['-o', path.join(dir, 'core'), String(pid)], { stdio: 'ignore', timeout: 300_000 });
    const core = path.join(dir, `core.${pid}`);
    expect(fileContains(core, Buffer.from(vol))).toBe(true); // positive control
    const key = dataKeyOf(ctx.home, path.join(ctx.home, 'volumes', `${vol}.img`));
    for (let i = 0; i < 64; i += 16) expect(fileContains(core, key.subarray(i, i + 16)), `key bytes ${i}..${i + 16} in the core`).toBe(false);
    fs.rmSync(core);
    detach(ctx.home, vol);
  });
  it('detach, and SIGTERM, zeroize and unmap the guarded key before the card exits (its locked pages are gone at exit_group)', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    for (const how of ['detach-volume', 'SIGTERM'] as const) {
      const a = attach(ctx.home, vol, ['--loop']);
      execFileSync('dd', ['if=/dev/urandom', `of=${a.LoopDevice}`, 'bs=1M', 'count=4', 'oflag=direct', 'status=none']);
      const pid = cardPid(vol);
      expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^VmLck:\s+[1-9]\d* kB/m); // positive control: the key is locked in memory
      const status = await lockedAtExit(pid, () => (how === 'SIGTERM' ? process.kill(pid, 'SIGTERM') : detach(ctx.home, vol)));
      expect(status, how).toMatch(/^VmLck:\s+0 kB/m);
      await expect.poll(() => kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State, { timeout: 10_000 }).toBe('available');
    }
  });

  it('SIGTERM (a shutdown) on a card with ext4 mounted on its loop device first flushes what ext4 acknowledged: an unsynced file is there after reattach', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', '-F', a.LoopDevice!]);
    const dir = mountLoop(ctx, a.LoopDevice!);
    const data = crypto.randomBytes(8 << 20);
    fs.writeFileSync(path.join(dir, 'unsynced.bin'), data); // no fsync: it sits in ext4's page cache
    process.kill(cardPid(vol), 'SIGTERM');
    await expect.poll(() => kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State, { timeout: 30_000 }).toBe('available');
    execFileSync('umount', ['-l', dir]); // ext4 on the old loop device has lost its disk
    const b = attach(ctx.home, vol, ['--loop']);
    const dir2 = mountLoop(ctx, b.LoopDevice!);
    expect(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(dir2, 'unsynced.bin')))
        .digest('hex'),
    ).toBe(crypto.createHash('sha256').update(data).digest('hex'));
    unmount(ctx, dir2);
    detach(ctx.home, vol);
  });
});
