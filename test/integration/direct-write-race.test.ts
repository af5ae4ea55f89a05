import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImageHeader } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { createVolume, detach, volumeHome } from '../helpers/volumes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SECONDS = Number(process.env.KMSVOL_RACE_SECONDS ?? 20);

/**
 * The card's direct writes next to its buffered ones on one image (breaker12).
 * test/helpers/dio-racer.c races a 4 KiB write (buffered by the card) at
 * sector R, a reader that drops the region of the image from the page cache
 * and reads it back sequentially (readahead builds large folios over R and
 * its neighbours), and 256 KiB writes at R + 4 KiB (direct whenever the 4 KiB
 * write is in flight at the card: the card sends only queued writes direct), each read back
 * at once: a stale page of the image left in the cache would read back the
 * previous pattern.
 */
describe("the card's direct and buffered writes on one image", () => {
  it(`for ${SECONDS} s, every 256 KiB direct write reads back at once while a 4 KiB buffered write hits the sector before it and a reader refills the cache`, () => {
    const bin = path.join(tempHome('kmsvol-racer-'), 'dio-racer');
    execFileSync('cc', ['-O2', '-Wall', '-pthread', '-o', bin, path.join(ROOT, 'test/helpers/dio-racer.c')]);
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(r.code, r.stderr).toBe(0);
    const image = path.join(ctx.home, 'volumes', `${vol}.img`);
    const run = spawnSync(bin, [r.json.Device, image, String(readImageHeader(image).payloadOffset), String(SECONDS)], { encoding: 'utf8' });
    detach(ctx.home, vol);
    expect(run.stdout + run.stderr).toMatch(/^ok \d+/);
  }, 120_000);
});
