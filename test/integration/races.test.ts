import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';

/** What a home leaves behind on the machine: FUSE mounts under it, loop devices on its files, card processes, sockets. */
function leftovers(home: string): { mounts: string[]; loops: string[]; sockets: string[] } {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]!).filter((m) => m?.startsWith(`${home}/`));
  const loops = fs.readdirSync('/sys/block').filter((d) => d.startsWith('loop')).filter((d) => {
    try {
      return fs.readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').includes(home);
    } catch {
      return false;
    }
  });
  const run = path.join(home, 'run');
  const sockets = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.endsWith('.sock')) : [];
  return { mounts, loops, sockets };
}

describe('concurrent attaches (finding 4 of issue 13)', () => {
  it('8 parallel attach-volume on one volume: one wins, 7 get VolumeInUse, and the winner detaches normally', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all(Array.from({ length: 8 }, () => kmsvolAsync(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol])));
      const won = rs.filter((r) => r.code === 0);
      expect(won, `round ${round}: ${rs.map((r) => r.stderr.trim()).join(' | ')}`).toHaveLength(1);
      for (const r of rs.filter((x) => x.code !== 0)) {
        expect(r.code).toBe(254);
        expect(r.stderr).toMatch(/An error occurred \(VolumeInUse\) when calling the AttachVolume operation/);
      }
      expect(fs.existsSync(path.join(ctx.home, 'run', `${vol}.sock`)), `round ${round}: the winner's socket`).toBe(true);
      detach(ctx.home, vol);
      expect(leftovers(ctx.home)).toEqual({ mounts: [], loops: [], sockets: [] });
    }
    // One grant per attach was made; none is left.
    const grants = kmsvol(ctx.home, ['kms', 'list-grants', '--key-id', ctx.key]).json.Grants;
    expect(grants).toEqual([]);
  });
});

describe('detach against a writer (finding 7 of issue 13)', () => {
  it('detach refuses while another process has the decrypted file open, works once it closes; --force detaches under it', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const writer = () => spawn('sh', ['-c', `exec 3<>${a.Device}; while :; do dd if=/dev/urandom bs=64k count=16 conv=notrunc,fsync status=none >&3 || exit 7; done`]);
    let w = writer();
    const exited = (c: ReturnType<typeof spawn>) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on('exit', (code) => r(code))));
    try {
      await expect.poll(() => kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol]).stderr, { timeout: 10_000 }).toMatch(
        /An error occurred \(IncorrectState\) when calling the DetachVolume operation: Volume vol-\w+ is busy: the decrypted volume file is open 1 time\(s\)/,
      );
      expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('in-use');
      w.kill('SIGKILL');
      await exited(w);
      detach(ctx.home, vol);
      // --force: the writer's next write fails; nothing of the card is left.
      const b = attach(ctx.home, vol);
      expect(b.Device).toBe(a.Device);
      w = writer();
      expect(kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--force']).code).toBe(0);
      expect(await exited(w)).toBe(7);
      expect(leftovers(ctx.home)).toEqual({ mounts: [], loops: [], sockets: [] });
    } finally {
      w.kill('SIGKILL');
    }
  });
});
