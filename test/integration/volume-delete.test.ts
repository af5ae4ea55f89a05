import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { cardPid, cardPids } from '../helpers/procs.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';

/** Every path under `home` whose name holds the volume id (the registry and the logs hold its history by content, as EC2 and CloudTrail do). */
function namedFor(home: string, vol: string): string[] {
  return fs
    .readdirSync(home, { recursive: true })
    .map(String)
    .filter((p) => p.includes(vol))
    .sort();
}

describe('delete-volume leaves nothing of the volume in the home (finding 8 of issue 24)', () => {
  it('after attach, detach and a failed attach: the image, its change file, the card log, lock, socket and mount directory are all gone', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    attach(ctx.home, vol);
    expect(namedFor(ctx.home, vol)).toEqual([
      `run/${vol}`,
      `run/${vol}.lock`,
      `run/${vol}.log`,
      `run/${vol}.sock`,
      `run/${vol}/${vol}`,
      `volumes/${vol}.changes`,
      `volumes/${vol}.img`,
    ]);
    detach(ctx.home, vol);
    // A refused attach leaves its own run files too (the card's log, the lock).
    expect(kmsvol(ctx.home, ['kms', 'disable-key', '--key-id', ctx.key]).code).toBe(0);
    expect(kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]).code).toBe(254);
    expect(kmsvol(ctx.home, ['kms', 'enable-key', '--key-id', ctx.key]).code).toBe(0);
    expect(namedFor(ctx.home, vol).length).toBeGreaterThan(1);
    const del = kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stderr).toBe('');
    expect(namedFor(ctx.home, vol)).toEqual([]);
    // Another volume's files are not touched.
    const other = createVolume(ctx.home, ctx.key);
    attach(ctx.home, other);
    detach(ctx.home, other);
    const before = namedFor(ctx.home, other);
    const v3 = createVolume(ctx.home, ctx.key);
    expect(kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', v3]).code).toBe(0);
    expect(namedFor(ctx.home, other)).toEqual(before);
  });

  it('after kill -9 of the card: delete cleans up the dead card, then nothing of the volume is left', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    attach(ctx.home, vol);
    process.kill(cardPid(vol), 'SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
    const del = kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]);
    expect(del.code, del.stderr).toBe(0);
    expect(namedFor(ctx.home, vol)).toEqual([]);
  });

  it('Postcondition: run files that are links are removed as links; what they point to is untouched', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    attach(ctx.home, vol);
    detach(ctx.home, vol);
    const outside = tempHome('kmsvol-outside-');
    const target = path.join(outside, 'target');
    fs.writeFileSync(target, 'keep me');
    const run = path.join(ctx.home, 'run');
    fs.rmSync(path.join(run, `${vol}.log`));
    fs.symlinkSync(target, path.join(run, `${vol}.log`));
    fs.rmdirSync(path.join(run, vol));
    fs.symlinkSync(outside, path.join(run, vol));
    expect(kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]).code).toBe(0);
    expect(namedFor(ctx.home, vol)).toEqual([]);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
    expect(fs.readdirSync(outside)).toEqual(['target']);
  });
});
