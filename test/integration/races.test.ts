import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';

/** What a home leaves behind on the machine: FUSE mounts under it, loop devices on its files, card processes, sockets. */
function leftovers(home: string): { mounts: string[]; loops: string[]; sockets: string[] } {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]!)
    .filter((m) => m?.startsWith(`${home}/`));
  const loops = fs
    .readdirSync('/sys/block')
    .filter((d) => d.startsWith('loop'))
    .filter((d) => {
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
    const writer = () =>
      spawn('sh', ['-c', `exec 3<>${a.Device}; while :; do dd if=/dev/urandom bs=64k count=16 conv=notrunc,fsync status=none >&3 || exit 7; done`]);
    let w = writer();
    const exited = (c: ReturnType<typeof spawn>) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on('exit', (code) => r(code))));
    try {
      await expect
        .poll(() => kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol]).stderr, { timeout: 10_000 })
        .toMatch(
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

describe('races (issue 13)', () => {
  it('attach against delete, 10 rounds: one of them wins, the other is refused cleanly, and nothing is left behind', async () => {
    const ctx = volumeHome();
    const outcomes: string[] = [];
    for (let round = 0; round < 10; round++) {
      const vol = createVolume(ctx.home, ctx.key);
      // The delete starts 0-225 ms after the attach: some rounds land while the card is starting (the race), some after.
      const attaching = kmsvolAsync(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]);
      const deleting = new Promise<Awaited<typeof attaching>>((r) =>
        setTimeout(() => void kmsvolAsync(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]).then(r), round * 25),
      );
      const [at, del] = await Promise.all([attaching, deleting]);
      const v = kmsvol(ctx.home, ['ec2', 'describe-volumes']).json.Volumes.find((x: { VolumeId: string }) => x.VolumeId === vol);
      if (at.code === 0) {
        // The attach won: the delete was refused, and the volume is attached and usable.
        expect(del.code, del.stderr).toBe(254);
        expect(del.stderr).toMatch(/\((VolumeInUse|IncorrectState)\)/);
        expect(v).toMatchObject({ State: 'in-use' });
        const fd = fs.openSync(at.json.Device, 'r+');
        fs.writeSync(fd, Buffer.from('still here'), 0, 10, 0);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        detach(ctx.home, vol);
        expect(kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]).code).toBe(0);
        outcomes.push('attach');
      } else {
        // The delete won: the attach was refused with the EC2 error (IncorrectState when it read the volume
        // while the delete was removing it), the volume and its image are gone.
        expect(at.code, at.stderr).toBe(254);
        expect(at.stderr).toMatch(/\((InvalidVolume\.NotFound|InvalidVolume\.Corrupt|VolumeInUse)\)|\(IncorrectState\) .* is 'deleting'/);
        expect(del.code, del.stderr).toBe(0);
        expect(v).toBeUndefined();
        outcomes.push('delete');
      }
      expect(fs.existsSync(path.join(ctx.home, 'volumes', `${vol}.img`))).toBe(false);
      expect(leftovers(ctx.home)).toEqual({ mounts: [], loops: [], sockets: [] });
    }
    expect(kmsvol(ctx.home, ['kms', 'list-grants', '--key-id', ctx.key]).json.Grants).toEqual([]);
    console.log(`attach against delete: ${outcomes.join(', ')}`);
  }, 300_000);

  it('8 CLI workers on 8 volumes for a bounded time (attach, write, fsync, snapshot, detach): every volume intact, nothing leaked', async () => {
    const ctx = volumeHome();
    const vols = Array.from({ length: 8 }, () => createVolume(ctx.home, ctx.key));
    const last = new Map<string, Buffer>();
    const until = Date.now() + Number(process.env.KMSVOL_RACE_SECONDS ?? 40) * 1000;
    const worker = async (vol: string, i: number) => {
      let cycles = 0;
      while (Date.now() < until || cycles === 0) {
        const at = await kmsvolAsync(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, ...(i % 2 ? ['--loop'] : [])]);
        expect(at.code, at.stderr).toBe(0);
        const data = crypto.randomBytes(65536);
        const fd = fs.openSync(at.json.Device, 'r+');
        fs.writeSync(fd, data, 0, data.length, 1 << 20);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        last.set(vol, data);
        const snap = await kmsvolAsync(ctx.home, ['ec2', 'create-snapshot', '--volume-id', vol]);
        expect(snap.code, snap.stderr).toBe(0);
        const de = await kmsvolAsync(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol]);
        expect(de.code, de.stderr).toBe(0);
        const gone = await kmsvolAsync(ctx.home, ['ec2', 'delete-snapshot', '--snapshot-id', snap.json.SnapshotId]);
        expect(gone.code, gone.stderr).toBe(0);
        cycles++;
      }
      return cycles;
    };
    const cycles = await Promise.all(vols.map(worker));
    for (const vol of vols) {
      const a = attach(ctx.home, vol);
      const back = Buffer.alloc(65536);
      const fd = fs.openSync(a.Device, 'r');
      fs.readSync(fd, back, 0, back.length, 1 << 20);
      fs.closeSync(fd);
      detach(ctx.home, vol);
      expect(back.equals(last.get(vol)!), vol).toBe(true);
    }
    expect(leftovers(ctx.home)).toEqual({ mounts: [], loops: [], sockets: [] });
    expect(kmsvol(ctx.home, ['kms', 'list-grants', '--key-id', ctx.key]).json.Grants).toEqual([]);
    expect(kmsvol(ctx.home, ['ec2', 'describe-snapshots']).json.Snapshots).toEqual([]);
    console.log(`8 workers: ${cycles.join('+')} cycles`);
  }, 600_000);
});
