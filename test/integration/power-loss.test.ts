import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImageHeader } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { buildShim, crashImage, lostRecords, readIoLog, rng, WRITER } from '../helpers/crash.js';
import { tempHome } from '../helpers/home.js';
import { attach, createVolume, detach, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

const POINTS = Number(process.env.KMSVOL_POWER_POINTS ?? 10);
const SEED = Number(process.env.KMSVOL_POWER_SEED ?? Date.now() % 1_000_000);

describe('power loss below the card (log-writes, as CrashMonkey and xfstests do)', () => {
  // The card sends queued writes of 256 KiB or more to its image with O_DIRECT, and this writer's are smaller: the second run sends every queued write of 4 KiB or more direct.
  for (const [how, env] of [
    ['', {}],
    [', queued writes of 4 KiB or more direct', { KMSVOL_DIRECT_WRITE_KB: '4' }],
  ] as const)
    it(`the image rebuilt at ${POINTS} flush points and points between them: fsck clean, every record an fsync acknowledged before that point intact${how}`, async () => {
      const ctx = volumeHome();
      const work = tempHome('kmsvol-powerloss-');
      const vol = createVolume(ctx.home, ctx.key);
      const img = path.join(ctx.home, 'volumes', `${vol}.img`);
      // The base: a fresh ext4, durable (detach fdatasyncs the image).
      let a = attach(ctx.home, vol, ['--loop']);
      execFileSync('mkfs.ext4', ['-q', a.LoopDevice!]);
      detach(ctx.home, vol);
      const base = path.join(work, 'base.img');
      execFileSync('cp', ['--sparse=always', img, base]);

      // Record: every pwrite and flush the card makes on its image while a writer fsyncs records.
      const iolog = path.join(work, 'io.log');
      const ack = path.join(work, 'ack');
      fs.writeFileSync(ack, '');
      const shim = buildShim(work, { iolog, match: `/${vol}.img` });
      const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--loop'], { LD_PRELOAD: shim, ...env });
      expect(r.code, r.stderr).toBe(0);
      let mnt = mountLoop(ctx, r.json.LoopDevice);
      const writer = spawn(process.execPath, [WRITER, path.join(mnt, 'records'), ack, '0', 'fsync', iolog], { stdio: 'ignore' });
      const exited = new Promise((res) => writer.once('exit', res));
      await expect.poll(() => fs.readFileSync(ack, 'utf8').split('\n').length > 150, { timeout: 60_000 }).toBe(true);
      writer.kill('SIGKILL');
      await exited;
      unmount(ctx, mnt);
      detach(ctx.home, vol);

      const log = readIoLog(iolog);
      const acks = fs
        .readFileSync(ack, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split(' ')[2]));
      const firstAck = acks[0]!;
      const lastAck = acks.at(-1)!;
      // Crash points while the writer ran: half at flush ends, half between (after a write).
      const inRun = log.map((e, i) => ({ e, i })).filter(({ e }) => e.end >= firstAck && e.end <= lastAck);
      const flushEnds = inRun.filter(({ e }) => e.op === 'E').map(({ i }) => i);
      const writes = inRun.filter(({ e }) => e.op === 'W').map(({ i }) => i);
      const random = rng(SEED);
      const pick = (xs: number[], n: number) =>
        Array.from({ length: Math.min(n, xs.length) }, (_, k) => xs[Math.floor(((k + random()) * xs.length) / Math.min(n, xs.length))]!);
      const atFlush = pick(flushEnds, Math.ceil(POINTS / 2));
      const points = [...atFlush, ...pick(writes, POINTS - atFlush.length)].sort((x, y) => x - y);

      let checked = 0;
      for (const at of points) {
        const state = crashImage(base, log, at, random, img);
        a = attach(ctx.home, vol, ['--loop']);
        // Mount replays the journal, as the next boot would; then fsck must find it clean.
        mnt = mountLoop(ctx, a.LoopDevice!);
        unmount(ctx, mnt);
        const fsck = spawnFsck(a.LoopDevice!);
        expect(fsck.status, `point ${at} (${log[at]!.op}, seed ${SEED}): ${fsck.out}`).toBe(0);
        mnt = mountLoop(ctx, a.LoopDevice!);
        const lost = lostRecords(path.join(mnt, 'records'), ack, 0, log[at]!.end);
        unmount(ctx, mnt);
        detach(ctx.home, vol);
        expect(lost, `point ${at} (${log[at]!.op}, seed ${SEED}, ${state.durable} durable writes + ${state.extra} of the rest)`).toEqual([]);
        checked += acks.filter((p) => p <= log[at]!.end).length;
      }
      expect(checked).toBeGreaterThan(0);
      expect(flushEnds.length, 'flushes the card made while the writer fsynced').toBeGreaterThan(POINTS);
      console.log(`power loss: ${points.length} crash states, seed ${SEED}, ${log.length} logged operations, ${checked} acknowledged records checked, 0 lost`);
    }, 600_000);
});

function spawnFsck(dev: string): { status: number | null; out: string } {
  try {
    return { status: 0, out: execFileSync('fsck.ext4', ['-fn', dev], { encoding: 'utf8', stdio: 'pipe' }) };
  } catch (e) {
    const err = e as { status: number | null; stdout?: string };
    return { status: err.status, out: err.stdout ?? '' };
  }
}

describe('I/O errors from the backing file (EIO injected below the card)', () => {
  it('a write that gets EIO fails whole to the writer, is logged with its sector, never lands or is acknowledged; the card keeps serving', () => {
    const ctx = volumeHome();
    const work = tempHome('kmsvol-eio-');
    const vol = createVolume(ctx.home, ctx.key);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    const payload = readImageHeader(img).payloadOffset;
    const old = Buffer.alloc(3 * 4096, 'old ');
    const fresh = Buffer.alloc(4096, 'new ');
    let a = attach(ctx.home, vol);
    let fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, old, 0, old.length, 99 * 4096);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, vol);

    // The backing file fails any write that touches volume sector 100.
    const shim = buildShim(work, { match: `/${vol}.img`, eioAt: payload + 100 * 4096 + 10 });
    const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol], { LD_PRELOAD: shim });
    expect(r.code, r.stderr).toBe(0);
    fd = fs.openSync(r.json.Device, 'r+');
    fs.writeSync(fd, fresh, 0, 4096, 99 * 4096);
    expect(() => fs.writeSync(fd, fresh, 0, 4096, 100 * 4096)).toThrow(/EIO/);
    fs.writeSync(fd, fresh, 0, 4096, 101 * 4096);
    // Reads go on; the failed sector still holds what it had.
    const back = Buffer.alloc(3 * 4096);
    fs.readSync(fd, back, 0, back.length, 99 * 4096);
    expect(back.subarray(4096, 8192).equals(old.subarray(4096, 8192))).toBe(true);
    expect(back.subarray(8192).equals(fresh)).toBe(true);
    // Nothing after the lost write is acknowledged.
    expect(() => fs.fsyncSync(fd)).toThrow(/EIO/);
    expect(() => fs.closeSync(fd)).toThrow(/EIO/); // close flushes: the same answer
    const log = fs.readFileSync(path.join(ctx.home, 'run', `${vol}.log`), 'utf8');
    expect(log).toMatch(/"msg":"write failed; the request gets an error","sector":100,"sectors":1,"errno":5/);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('in-use');
    detach(ctx.home, vol);

    a = attach(ctx.home, vol);
    fd = fs.openSync(a.Device, 'r');
    fs.readSync(fd, back, 0, back.length, 99 * 4096);
    fs.closeSync(fd);
    expect(back.subarray(0, 4096).equals(fresh)).toBe(true);
    expect(back.subarray(4096, 8192).equals(old.subarray(4096, 8192))).toBe(true);
    expect(back.subarray(8192).equals(fresh)).toBe(true);
    detach(ctx.home, vol);
  });
});
