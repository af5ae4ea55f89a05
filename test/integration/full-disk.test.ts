import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { attach, createVolume, detach, mountLoop, tmpfsHome, unmount } from '../helpers/volumes.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('a full disk under the image loses nothing an fsync acknowledged', () => {
  it('ext4 on --loop, dd conv=fsync until the disk is full: every acknowledged file reads back after grow, detach and reattach', () => {
    // Finding 1 of issue 13: the last acknowledged file came back partly zero.
    const t = tmpfsHome(120);
    const key = kmsvol(t.home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = createVolume(t.home, key);
    let a = attach(t.home, vol, ['--loop']);
    execFileSync('mkfs.ext4', ['-q', a.LoopDevice!]);
    let mnt = mountLoop(t, a.LoopDevice!);
    const chunkFile = path.join(tempHome('kmsvol-chunk-'), 'chunk');
    const chunk = crypto.randomBytes(1 << 20);
    fs.writeFileSync(chunkFile, chunk);
    const acked: string[] = [];
    let failedAt = -1;
    for (let i = 0; i < 400; i++) {
      const r = spawnSync('dd', [`if=${chunkFile}`, `of=${mnt}/f${i}`, 'bs=1M', 'conv=fsync', 'status=none']);
      if (r.status !== 0) {
        failedAt = i;
        break;
      }
      acked.push(`f${i}`);
    }
    // The disk did fill (the image's tmpfs is 120 MiB under a 1 GiB volume), after real progress.
    expect(failedAt).toBeGreaterThan(20);
    spawnSync('umount', [mnt]); // may fail to write back: the fs has seen I/O errors
    t.mounts.splice(t.mounts.indexOf(mnt), 1);
    t.grow(2048);
    detach(t.home, vol);
    a = attach(t.home, vol, ['--loop']);
    mnt = mountLoop(t, a.LoopDevice!);
    const lost = acked.filter((f) => !fs.existsSync(`${mnt}/${f}`) || sha256(fs.readFileSync(`${mnt}/${f}`)) !== sha256(chunk));
    expect(lost, `acknowledged files lost of ${acked.length}`).toEqual([]);
    unmount(t, mnt);
    detach(t.home, vol);
  });
});
