import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HDR_SIZE, PAYLOAD_OFFSET } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPids } from '../helpers/procs.js';
import { attach, createVolume, dataKeyOf, detach, volumeHome } from '../helpers/volumes.js';

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

/** Both header copies of `img` with their JSON changed by `edit` and their checksums recomputed, as someone who can write the image would. */
function rewriteHeader(img: string, edit: (j: any) => void): Buffer {
  const fd = fs.openSync(img, 'r+');
  try {
    const head = Buffer.alloc(2 * HDR_SIZE);
    fs.readSync(fd, head, 0, head.length, 0);
    const before = Buffer.from(head);
    for (const c of [0, 1]) {
      const area = head.subarray(c * HDR_SIZE, (c + 1) * HDR_SIZE);
      const j = JSON.parse(area.toString('utf8', 4096).replace(/\0+$/, ''));
      edit(j);
      area.fill(0, 4096);
      Buffer.from(JSON.stringify(j)).copy(area, 4096);
      area.fill(0, 448, 448 + 64);
      crypto.createHash('sha256').update(area).digest().copy(area, 448);
    }
    fs.writeSync(fd, head, 0, head.length, 0);
    return before;
  } finally {
    fs.closeSync(fd);
  }
}

function writeHead(img: string, head: Buffer): void {
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
}

/** The volume's data key, as a user recovers it (kms decrypt of the token's blob), for cryptsetup as the oracle. */
function dataKeyFile(home: string, img: string): string {
  const file = path.join(home, 'vk.bin');
  fs.writeFileSync(file, dataKeyOf(home, img), { mode: 0o600 });
  return file;
}

describe('attach checks the LUKS2 key digest and every offset (finding 7 of issue 24)', () => {
  it('a forged digest (both copies rewritten, checksums recomputed, accepted by cryptsetup luksDump) is refused at attach with an event; the volume stays available; restored, the data is intact', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    const data = crypto.randomBytes(8192);
    const a = attach(ctx.home, vol);
    const fd = fs.openSync(a.Device, 'r+');
    fs.writeSync(fd, data, 0, data.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    detach(ctx.home, vol);
    const keyFile = dataKeyFile(ctx.home, img);
    // The forger's digest: PBKDF2 of another key, with a fresh salt, in both copies.
    const salt = crypto.randomBytes(32);
    const forged = crypto.pbkdf2Sync(crypto.randomBytes(64), salt, 1000, 32, 'sha256');
    const good = rewriteHeader(img, (j) => Object.assign(j.digests['0'], { salt: salt.toString('base64'), digest: forged.toString('base64') }));
    const dump = spawnSync('cryptsetup', ['luksDump', img], { encoding: 'utf8' });
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('pbkdf2');
    // cryptsetup, the oracle, agrees: the real data key does not match this header.
    const pass = path.join(ctx.home, 'pass');
    fs.writeFileSync(pass, 'recovery passphrase', { mode: 0o600 });
    const add = spawnSync(
      'cryptsetup',
      ['luksAddKey', '--batch-mode', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--volume-key-file', keyFile, '--key-size', '512', img, pass],
      { encoding: 'utf8' },
    );
    expect(add.status).not.toBe(0);
    expect(add.stderr).toContain('Volume key does not match the volume');
    const forgedHead = Buffer.alloc(2 * HDR_SIZE);
    const rfd = fs.openSync(img, 'r');
    fs.readSync(rfd, forgedHead, 0, forgedHead.length, 0);
    fs.closeSync(rfd);

    const f = attachFails(ctx.home, vol);
    expect(f.stderr).toContain(
      `An error occurred (InvalidVolume.Corrupt) when calling the AttachVolume operation: The data key KMS returned for ${vol} does not match the key digest of segment 0 in the LUKS2 header of ${img}`,
    );
    expect(f.cause).toMatch(/^InvalidVolume\.Corrupt: The data key KMS returned for vol-\w+ does not match the key digest/);
    const v = kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0];
    expect(v).toMatchObject({ State: 'available', Attachments: [] });
    expect(cardPids(vol)).toEqual([]);
    expect(fs.existsSync(path.join(ctx.home, 'run', vol, vol))).toBe(false);
    // Nothing was written through the wrong key: the image's header is still the forged one, the payload as it was.
    const after = Buffer.alloc(2 * HDR_SIZE);
    const cfd = fs.openSync(img, 'r');
    fs.readSync(cfd, after, 0, after.length, 0);
    fs.closeSync(cfd);
    expect(after.equals(forgedHead)).toBe(true);

    writeHead(img, good);
    const b = attach(ctx.home, vol);
    const back = Buffer.alloc(data.length);
    const bfd = fs.openSync(b.Device, 'r');
    fs.readSync(bfd, back, 0, back.length, 0);
    fs.closeSync(bfd);
    detach(ctx.home, vol);
    expect(back.equals(data)).toBe(true);
  });

  it.each([
    ['segment offset below the header', (j: any) => (j.segments['0'].offset = '16384'), /segment 0's offset "16384" is not/],
    ['segment offset inside the keyslot area', (j: any) => (j.segments['0'].offset = '1048576'), /segment 0's offset "1048576" is not/],
    ['segment size not a multiple of the sector', (j: any) => (j.segments['0'].size = '1073741825'), /segment 0's size "1073741825" is not/],
    ['segment size other than the volume', (j: any) => (j.segments['0'].size = '536870912'), /maps 536870912 bytes in segment 0; the volume is 1073741824/],
    ['json_size wrong', (j: any) => (j.config.json_size = '4096'), /config\.json_size "4096" is not/],
    [
      'keyslot area overlapping the segment',
      (j: any) => (j.keyslots['0'] = { type: 'luks2', key_size: 64, area: { type: 'raw', offset: '16773120', size: '258048' } }),
      /keyslot 0's area/,
    ],
    ['digest iterations beyond the bound', (j: any) => (j.digests['0'].iterations = 2 ** 31), /asks for 2147483648 iterations/],
  ])('%s, both copies resealed: attach is InvalidVolume.Corrupt with an event, the volume stays available', (_what, edit, message) => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const img = path.join(ctx.home, 'volumes', `${vol}.img`);
    const good = rewriteHeader(img, edit);
    const f = attachFails(ctx.home, vol);
    expect(f.stderr).toContain('(InvalidVolume.Corrupt) when calling the AttachVolume operation:');
    expect(f.stderr).toMatch(message);
    expect(f.cause).toMatch(message);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    writeHead(img, good);
    attach(ctx.home, vol);
    detach(ctx.home, vol);
  });
});
