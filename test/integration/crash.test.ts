import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { lostRecords, rng, WRITER } from '../helpers/crash.js';
import { tempHome } from '../helpers/home.js';
import { cardPid, cardPids } from '../helpers/procs.js';
import { attach, createVolume, detach, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

/** Cycles: 10 in the suite; `npm run soak -- crash --cycles N` sets KMSVOL_CRASH_CYCLES. */
const CYCLES = Number(process.env.KMSVOL_CRASH_CYCLES ?? 10);
const SEED = Number(process.env.KMSVOL_CRASH_SEED ?? Date.now() % 1_000_000);

describe('crash consistency: kill -9 of the card under load', () => {
  it(
    `${CYCLES} cycles of fsync and O_DSYNC writers on ext4, the card killed mid-write at random times: every acknowledged record intact, fsck clean`,
    async () => {
      const ctx = volumeHome();
      const outside = tempHome('kmsvol-acks-');
      const vol = createVolume(ctx.home, ctx.key);
      let a = attach(ctx.home, vol, ['--loop']);
      execFileSync('mkfs.ext4', ['-q', a.LoopDevice!]);
      const random = rng(SEED);
      const cycles: { file: string; ack: string; first: number }[] = [];
      let acked = 0;
      for (let c = 0; c < CYCLES; c++) {
        const mnt = mountLoop(ctx, a.LoopDevice!);
        const cycle = { file: `c${c}`, ack: path.join(outside, `c${c}.ack`), first: c * 1_000_000 };
        fs.writeFileSync(cycle.ack, '');
        cycles.push(cycle);
        const writer = spawn(process.execPath, [WRITER, path.join(mnt, cycle.file), cycle.ack, String(cycle.first), c % 2 ? 'dsync' : 'fsync'], {
          stdio: 'ignore',
        });
        const exited = new Promise((r) => writer.once('exit', r));
        // Kill once the writer is going: after its first acknowledged record, plus a random 0-800 ms.
        await expect.poll(() => fs.statSync(cycle.ack).size > 0, { timeout: 30_000 }).toBe(true);
        await new Promise((r) => setTimeout(r, Math.floor(random() * 800)));
        const pid = cardPid(vol);
        process.kill(pid, 'SIGKILL');
        await exited; // the writer fails once its device is gone (or was killed below)
        await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
        spawnSync('umount', ['-l', mnt]);
        ctx.mounts.splice(ctx.mounts.indexOf(mnt), 1);
        // The next command finds the card dead and cleans up its mount and loop device.
        expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
        a = attach(ctx.home, vol, ['--loop']);
        // Replay the journal by mounting, then check the file system and every record acknowledged so far.
        const check = mountLoop(ctx, a.LoopDevice!);
        unmount(ctx, check);
        const fsck = spawnSync('fsck.ext4', ['-fn', a.LoopDevice!], { encoding: 'utf8' });
        expect(fsck.status, `cycle ${c} (seed ${SEED}): ${fsck.stdout}`).toBe(0);
        const verify = mountLoop(ctx, a.LoopDevice!);
        const lost = cycles.flatMap((x) => lostRecords(path.join(verify, x.file), x.ack, x.first));
        unmount(ctx, verify);
        expect(lost, `cycle ${c} (seed ${SEED})`).toEqual([]);
        acked = cycles.reduce((n, x) => n + fs.readFileSync(x.ack, 'utf8').split('\n').filter(Boolean).length, 0);
      }
      expect(acked).toBeGreaterThan(CYCLES);
      console.log(`crash: ${CYCLES} cycles, seed ${SEED}, ${acked} acknowledged records, 0 lost`);
      detach(ctx.home, vol);
    },
    120_000 + CYCLES * 30_000,
  );
});
