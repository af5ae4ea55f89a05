import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPid, cardPids } from '../helpers/procs.js';
import { attach, createVolume, volumeHome } from '../helpers/volumes.js';

/*
 * Issue 24, second adversarial pass: unstick() (src/card/attach.ts) aborts the
 * FUSE connection whose device number the registry holds for a volume, when
 * the attachment's pid is alive with SIGKILL pending. That number is stale
 * once the card is dead and its mount released, and the pid may be anyone's.
 * This test FAILED on breaker2 as handed over (/work/notes/breaker2/).
 */

const STALL = path.resolve(import.meta.dirname, '../helpers/stuck-at-pid.py');

describe('unstick aborts only the connection of a card that is still stuck on it', () => {
  it("A's card dead, its mount released by hand, B's FUSE mount on A's old device number, A's pid reused by a process alive with SIGKILL pending: describe-volumes leaves B served", async () => {
    const ctx = volumeHome();
    const a = createVolume(ctx.home, ctx.key);
    const b = createVolume(ctx.home, ctx.key);
    attach(ctx.home, a);
    const runA = path.join(ctx.home, 'run', a);
    const deadDev = fs.statSync(runA).dev;
    const pid = cardPid(a);
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => cardPids(a), { timeout: 10_000 }).toEqual([]);
    // What root does with a FUSE mount whose server has gone (and what kmsvol's ENOTCONN message tells them to do).
    execFileSync('umount', ['-l', runA]);
    attach(ctx.home, b);
    const fileB = path.join(ctx.home, 'run', b, b);
    expect(fs.statSync(fileB).dev, 'the kernel did not reuse the number this time; rerun').toBe(deadDev);
    // A process at A's old pid, alive with SIGKILL pending (a FUSE request of its own that its server never answers).
    // Root here because this host's /dev/fuse is 0600; with the usual 0666 a local user does the same under unshare -Urm.
    // Its argv names volume A too, as anyone can (ps shows the card's): what identifies the card is its recorded mount.
    const stall = spawn('unshare', ['-m', '--propagation', 'private', 'python3', STALL, String(pid), tempHome('kmsvol-stall-'), a], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onCleanup(() => process.kill(-stall.pid!, 'SIGKILL'));
    let out = '';
    stall.stdout!.on('data', (d) => (out += d));
    await expect.poll(() => out, { timeout: 60_000 }).toMatch(new RegExp(`^pid ${pid} `, 'm'));
    expect(out).toContain('SigPnd:\\t0000000000000100');

    kmsvol(ctx.home, ['ec2', 'describe-volumes']);

    // B is still served: its connection was not A's to abort.
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', b]).json.Volumes[0].State).toBe('in-use');
    const readFirst = () => {
      const fd = fs.openSync(fileB, 'r');
      try {
        return fs.readSync(fd, Buffer.alloc(4096), 0, 4096, 0);
      } finally {
        fs.closeSync(fd);
      }
    };
    expect(readFirst).not.toThrow();
  });
});
