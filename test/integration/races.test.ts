import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { createVolume, detach, volumeHome } from '../helpers/volumes.js';

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
