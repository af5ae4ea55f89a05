import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPid } from '../helpers/procs.js';
import { testUser } from '../helpers/users.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';

describe('another local user gets nothing of an attached volume', () => {
  it('not the decrypted file (even mounted in a directory everyone can enter), the loop device, the run directory, the control socket, or the card in /proc', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    // A mount directory every user can reach: only the FUSE mount itself keeps them out.
    const open = tempHome('kmsvol-open-');
    fs.chmodSync(open, 0o755);
    const a = attach(ctx.home, vol, ['--loop', '--device', path.join(open, 'd')]);
    const pid = cardPid(vol);
    const run = path.join(ctx.home, 'run');
    const u = testUser();
    const denied = (what: string, script: string) => {
      const r = u.sh(script);
      expect(r.code, `${what}: ${r.stdout}${r.stderr}`).not.toBe(0);
    };
    denied('the decrypted volume file', `head -c 4096 ${a.Device} > /dev/null`);
    denied('the decrypted volume file, by O_DIRECT', `dd if=${a.Device} of=/dev/null bs=4096 count=1 iflag=direct`);
    denied('writing the decrypted volume file', `printf x | dd of=${a.Device} conv=notrunc`);
    denied('the mount directory', `ls ${path.dirname(a.Device)}`);
    denied('the loop device', `head -c 4096 ${a.LoopDevice} > /dev/null`);
    denied('the loop device by its /dev/kmsvol name', `head -c 4096 /dev/kmsvol/${vol} > /dev/null`);
    denied('the run directory', `ls ${run}`);
    denied(
      'the control socket',
      `${process.execPath} -e "require('net').connect('${run}/${vol}.sock').on('connect', () => process.exit(0)).on('error', () => process.exit(3))"`,
    );
    for (const f of ['environ', 'maps', 'mem', 'auxv', 'stack']) denied(`/proc/<card>/${f}`, `head -c 64 /proc/${pid}/${f} > /dev/null`);
    denied('/proc/<card>/fd', `ls /proc/${pid}/fd`);
    // What the user may see: the card's argv, which holds only the volume id as a label.
    const argv = u.sh(`cat /proc/${pid}/cmdline`).stdout.split('\0').filter(Boolean);
    expect(argv.slice(2)).toEqual([vol]);
    detach(ctx.home, vol);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
  });

  it('cannot steer where root mounts the decrypted volume: a --device through their link or their directory is refused, and nothing is mounted', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const u = testUser();
    // The user's own directory, and a link the user plants in /tmp (sticky, writable by all) to a directory root owns.
    const theirs = fs.mkdtempSync('/tmp/kmsvol-theirs-');
    onCleanup(() => fs.rmSync(theirs, { recursive: true, force: true }));
    fs.chownSync(theirs, u.uid, u.gid);
    const target = tempHome('kmsvol-target-');
    const link = `/tmp/kmsvol-link-${u.name}`;
    expect(u.sh(`ln -s ${target} ${link}`).code).toBe(0);
    onCleanup(() => fs.rmSync(link, { force: true }));
    const cases: [string, RegExp][] = [
      [path.join(theirs, 'mnt'), new RegExp(`${theirs} belongs to uid ${u.uid}`)],
      [path.join(link, 'mnt'), new RegExp(`${link} is a symbolic link`)],
      ['', /give the directory where the decrypted volume file should appear/],
    ];
    for (const [device, why] of cases) {
      const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--device', device]);
      expect(r.code, r.stderr).toBe(254);
      expect(r.stderr).toMatch(/\(InvalidParameterValue\) when calling the AttachVolume operation: Value \(.*\) for parameter device is invalid: /);
      expect(r.stderr).toMatch(why);
    }
    expect(fs.readdirSync(target)).toEqual([]);
    expect(fs.readdirSync(theirs)).toEqual([]);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
  });

  it('a mount directory the user names keeps its mode (the mount covers it; kmsvol does not chmod it)', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const dir = tempHome('kmsvol-mnt-');
    fs.chmodSync(dir, 0o755);
    const a = attach(ctx.home, vol, ['--device', dir]);
    expect(a.Device).toBe(path.join(dir, vol));
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700); // the FUSE mount's root, while attached
    detach(ctx.home, vol);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o755);
  });
});
