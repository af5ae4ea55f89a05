import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { createVolume, detach, volumeHome } from '../helpers/volumes.js';

/**
 * Where the image's blocks land on disk (reserve, native/src/fuse_server.c): a
 * stream of large writes arriving at the card's four workers at once is
 * reserved 4 MiB at a time, so it lands in a few long extents; before, it was
 * reserved 64 KiB at a time in the order the workers got there, and 64 MiB
 * written this way took 84 extents (this test with runs turned off), each
 * later read of the image a disk read per piece. Checked from outside: fio writes, e2fsprogs' filefrag
 * counts.
 */
describe("the image's layout on disk", () => {
  it('64 MiB written as 1 MiB direct writes, 8 in flight, lands in at most 32 extents of the image', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const dev = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--loop']).json.LoopDevice as string;
    try {
      execFileSync('fio', [
        '--name=stream',
        `--filename=${dev}`,
        '--rw=write',
        '--bs=1M',
        '--size=64M',
        '--ioengine=libaio',
        '--iodepth=8',
        '--direct=1',
        '--output=/dev/null',
      ]);
    } finally {
      detach(ctx.home, vol);
    }
    const out = execFileSync('filefrag', [path.join(ctx.home, 'volumes', `${vol}.img`)], { encoding: 'utf8' });
    const extents = Number(/(\d+) extents? found/.exec(out)?.[1]);
    expect(extents).toBeGreaterThan(0);
    expect(extents).toBeLessThanOrEqual(32);
  });
});
