import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PAYLOAD_OFFSET } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
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
  it("an image longer than the home's file system allows (ext4 stops at 16 TiB): create-volume and modify-volume to 16384 GiB are InsufficientVolumeCapacity (exit 254), nothing is left half-made", () => {
    // The home on a small ext4 of its own (4 KiB blocks: files up to 16 TiB), loop-mounted.
    const dir = tempHome('kmsvol-ext4-');
    const disk = path.join(tempHome('kmsvol-ext4-img-'), 'disk');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 64 << 20);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', disk]);
    execFileSync('mount', ['-o', 'loop', disk, dir]);
    onCleanup(() => spawnSync('umount', ['-l', dir]));
    const home = path.join(dir, 'home');
    const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const big = kmsvol(home, ['ec2', 'create-volume', '--size', '16384', '--encrypted', '--kms-key-id', key]);
    expect(big.code, big.stderr).toBe(254);
    expect(big.stderr).toContain('(InsufficientVolumeCapacity) when calling the CreateVolume operation');
    expect(fs.readdirSync(path.join(home, 'volumes'))).toEqual([]);
    expect(kmsvol(home, ['ec2', 'describe-volumes']).json.Volumes).toEqual([]);
    const vol = createVolume(home, key);
    const grow = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', vol, '--size', '16384']);
    expect(grow.code, grow.stderr).toBe(254);
    expect(grow.stderr).toContain('(InsufficientVolumeCapacity)');
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0]).toMatchObject({ Size: 1, State: 'available' });
    expect(fs.statSync(path.join(home, 'volumes', `${vol}.img`)).size).toBe(PAYLOAD_OFFSET + GiB);
  });
});
