import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { attach, createVolume, detach, volumeHome } from '../helpers/volumes.js';

const GiB = 2 ** 30;

function attachFails(home: string, vol: string): { stderr: string; cause: string } {
  const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol]);
  expect(r.code, r.stderr).toBe(254);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  const last = kmsvol(home, ['events', '--volume-id', vol]).json.Events.at(-1);
  expect(last.detail).toMatchObject({ event: 'attachVolume', result: 'failed' });
  return { stderr: r.stderr, cause: last.detail.cause };
}

describe('attach refuses an image that cannot hold the volume (finding 5 of issue 13)', () => {
  it.each([
    ['to 20,000 bytes (inside the header area)', () => 20_000],
    ['to the payload start + 4 KiB', (payload: number) => payload + 4096],
    ['by one sector at the end', (payload: number) => payload + GiB - 4096],
  ])('an encrypted image truncated %s: InvalidVolume.Corrupt with an event; restored, it attaches', (_what, length) => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    const full = fs.statSync(img).size;
    const payload = full - GiB;
    fs.truncateSync(img, length(payload));
    const f = attachFails(ctx.home, vol);
    expect(f.stderr).toContain('An error occurred (InvalidVolume.Corrupt) when calling the AttachVolume operation:');
    expect(f.stderr).toContain(`must be at least ${full} (header ${payload} + volume ${GiB})`);
    expect(f.cause).toMatch(/^InvalidVolume\.Corrupt: /);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    fs.truncateSync(img, full);
    attach(ctx.home, vol);
    detach(ctx.home, vol);
  });

  it('an unencrypted image cut short is refused the same way', () => {
    const ctx = volumeHome();
    const vol = kmsvol(ctx.home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId;
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    fs.truncateSync(img, GiB / 2);
    expect(attachFails(ctx.home, vol).stderr).toContain(`is ${GiB / 2} bytes; it must be at least ${GiB}`);
  });

  it('a missing image is InvalidVolume.Corrupt (exit 254, one line) that says what to do', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    fs.rmSync(path.join(ctx.home, 'volumes', `${vol}.img`));
    const f = attachFails(ctx.home, vol);
    expect(f.stderr).toMatch(
      /\(InvalidVolume\.Corrupt\) when calling the AttachVolume operation: The image file \S+\.img is missing\. Restore it from a backup/,
    );
  });
});
