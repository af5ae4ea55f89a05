import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PAYLOAD_OFFSET } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { serverMode } from '../helpers/kms-server.js';
import { cardPid, cardPids } from '../helpers/procs.js';
import { attach, createVolume, dataKeyOf, detach, head, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';

function imageOf(home: string, vol: string): string {
  return path.join(home, 'volumes', `${vol}.img`);
}

/** The data key, as a user recovers it: kms decrypt of the token's blob with the volume's context. */
function dataKey(home: string, vol: string): Buffer {
  return dataKeyOf(home, imageOf(home, vol));
}

describe('volumes through real FUSE, loop devices and ext4', () => {
  it('a loop device released by hand before detach (losetup -d): the card still holds it; detach unmounts, zeroizes the key, records a clean detach and frees it', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    execFileSync('losetup', ['-d', a.LoopDevice!]);
    // The card holds the device open (autoclear): losetup -d only marks it for release at its last close.
    const backing = `/sys/block/${path.basename(a.LoopDevice!)}/loop/backing_file`;
    expect(fs.readFileSync(backing, 'utf8').trim()).toBe(a.Device);
    const r = kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol]);
    expect(r.code, r.stderr).toBe(0);
    // The kernel freed it when the card let go (unless the number went to someone else at once).
    expect(fs.existsSync(backing) ? fs.readFileSync(backing, 'utf8').trim() : '').not.toBe(a.Device);
    // Before any other command could clean up after a card that died: the card itself unmounted.
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.dirname(a.Device));
    const log = fs.readFileSync(path.join(ctx.home, 'run', `${vol}.log`), 'utf8');
    expect(log).toContain('detached; data key zeroized');
    const events = kmsvol(ctx.home, ['events']).stdout;
    expect(events).not.toContain('card process exited');
  });

  it('round trip: create, attach --loop, mkfs.ext4, write, detach, reattach: files intact, fsck clean', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const desc = kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0];
    expect(desc).toMatchObject({
      VolumeId: vol,
      Size: 1,
      State: 'available',
      Encrypted: true,
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${ctx.key}`,
      VolumeType: 'gp2', // CreateVolume's default, as EC2's
      Attachments: [],
    });

    const a = attach(ctx.home, vol, ['--loop']);
    expect(a.LoopDevice).toMatch(/^\/dev\/loop\d+$/);
    expect(fs.readdirSync(path.dirname(a.Device))).toEqual([vol]);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0]).toMatchObject({
      State: 'in-use',
      Attachments: [{ State: 'attached', Device: a.Device, LoopDevice: a.LoopDevice }],
    });
    execFileSync('mkfs.ext4', ['-q', '-F', a.LoopDevice!]);
    let mnt = mountLoop(ctx, a.LoopDevice!);
    const data = crypto.randomBytes(8 << 20);
    fs.writeFileSync(path.join(mnt, 'data.bin'), data);
    fs.writeFileSync(path.join(mnt, 'note.txt'), 'PLAINTEXT-MARKER-'.repeat(300));
    unmount(ctx, mnt);
    detach(ctx.home, vol);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    expect(fs.readFileSync(imageOf(ctx.home, vol)).includes('PLAINTEXT-MARKER-')).toBe(false);

    const b = attach(ctx.home, vol, ['--loop']);
    expect(spawnSync('fsck.ext4', ['-fn', b.LoopDevice!]).status).toBe(0);
    mnt = mountLoop(ctx, b.LoopDevice!);
    expect(fs.readFileSync(path.join(mnt, 'data.bin')).equals(data)).toBe(true);
    expect(fs.readFileSync(path.join(mnt, 'note.txt'), 'utf8')).toBe('PLAINTEXT-MARKER-'.repeat(300));
    unmount(ctx, mnt);
    detach(ctx.home, vol);
    if (serverMode) {
      // The matrix's server leg: the card's Decrypt really went through `kmsvol kms serve`, signed as the card's own role session.
      const decrypts = kmsvol(ctx.home, ['audit', '--event-name', 'Decrypt']).json.Events;
      expect(decrypts.at(-1).userIdentity.arn).toBe(`arn:aws:sts::000000000000:assumed-role/kmsvol-card/${vol}`);
    }
  });

  it('the payload is aes-256-xts of the plaintext with IV 8n; a fresh volume reads as zeros; unaligned writes read back', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol);
    const fd = fs.openSync(a.Device, 'r+');
    const fresh = Buffer.alloc(1 << 20, 1);
    fs.readSync(fd, fresh, 0, fresh.length, 512 << 20);
    expect(fresh.every((x) => x === 0)).toBe(true);
    const pattern = Buffer.alloc(4096, 'kmsvol-pattern-');
    for (const s of [0, 5, 100_000]) fs.writeSync(fd, pattern, 0, 4096, s * 4096);
    // Unaligned: spans a sector boundary, partial at both ends.
    const odd = crypto.randomBytes(5000);
    fs.writeSync(fd, odd, 0, odd.length, 7 * 4096 + 3000);
    fs.fsyncSync(fd);
    const back = Buffer.alloc(odd.length);
    fs.readSync(fd, back, 0, back.length, 7 * 4096 + 3000);
    expect(back.equals(odd)).toBe(true);
    fs.closeSync(fd);
    detach(ctx.home, vol);

    const image = fs.readFileSync(imageOf(ctx.home, vol));
    expect(image.includes('kmsvol-pattern-')).toBe(false);
    const key = dataKey(ctx.home, vol);
    for (const s of [0, 5, 100_000]) {
      const iv = Buffer.alloc(16);
      iv.writeBigUInt64LE(BigInt(s) * 8n);
      const c = crypto.createCipheriv('aes-256-xts', key, iv);
      const expected = Buffer.concat([c.update(pattern), c.final()]);
      expect(image.subarray(PAYLOAD_OFFSET + s * 4096, PAYLOAD_OFFSET + (s + 1) * 4096).equals(expected), `sector ${s}`).toBe(true);
    }
    // Never-written sectors stay all-zero (sparse) in the image.
    expect(image.subarray(PAYLOAD_OFFSET + 200 * 4096, PAYLOAD_OFFSET + 300 * 4096).every((x) => x === 0)).toBe(true);
    key.fill(0);
  });

  it('cryptsetup: luksDump shows the kmsvol token; luksAddKey works with the data key and fails with any other', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const img = imageOf(ctx.home, vol);
    const dump = spawnSync('cryptsetup', ['luksDump', img], { encoding: 'utf8' });
    expect(dump.status).toBe(0);
    expect(dump.stdout).toMatch(/Tokens:\s+0: kmsvol/);
    expect(dump.stdout).toContain('cipher: aes-xts-plain64');
    expect(dump.stdout).toContain('sector: 4096 [bytes]');
    const keyFile = path.join(ctx.home, 'vk.bin');
    const wrongFile = path.join(ctx.home, 'wrong.bin');
    const pass = path.join(ctx.home, 'pass');
    fs.writeFileSync(keyFile, dataKey(ctx.home, vol), { mode: 0o600 });
    fs.writeFileSync(wrongFile, crypto.randomBytes(64), { mode: 0o600 });
    fs.writeFileSync(pass, 'recovery passphrase', { mode: 0o600 });
    const add = (k: string) =>
      spawnSync(
        'cryptsetup',
        ['luksAddKey', '--batch-mode', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--volume-key-file', k, '--key-size', '512', img, pass],
        { encoding: 'utf8' },
      );
    const wrong = add(wrongFile);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain('Volume key does not match the volume');
    expect(add(keyFile).status).toBe(0);
    expect(spawnSync('cryptsetup', ['luksDump', img], { encoding: 'utf8' }).stdout).toMatch(/Keyslots:\s+0: luks2/);
    // The volume still attaches after the user added a keyslot.
    attach(ctx.home, vol);
    detach(ctx.home, vol);
  });
});

describe('attach failures, refusals and a killed card', () => {
  function expectAttachFails(home: string, vol: string, name: string, env: Record<string, string> = {}) {
    const r = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol], env);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(`An error occurred (${name}) when calling the AttachVolume operation:`);
    const last = kmsvol(home, ['events', '--volume-id', vol]).json.Events.at(-1);
    expect(last['detail-type']).toBe('EBS Volume Notification');
    expect(last.detail).toMatchObject({ event: 'attachVolume', result: 'failed' });
    expect(last.detail.cause).toContain(name);
  }

  it('disabled key, pending deletion, deleted key; after the fix the data is intact', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    let a = attach(ctx.home, vol);
    fs.writeFileSync(a.Device, Buffer.alloc(4096, 'x'), { flag: 'r+' });
    // An attached volume keeps working when its key is disabled or scheduled for deletion.
    kmsvol(ctx.home, ['kms', 'disable-key', '--key-id', ctx.key]);
    fs.writeFileSync(a.Device, Buffer.alloc(4096, 'y'), { flag: 'r+' });
    detach(ctx.home, vol);
    expectAttachFails(ctx.home, vol, 'DisabledException');
    kmsvol(ctx.home, ['kms', 'enable-key', '--key-id', ctx.key]);
    a = attach(ctx.home, vol);
    expect(head(a.Device, 4096).equals(Buffer.alloc(4096, 'y'))).toBe(true);
    kmsvol(ctx.home, ['kms', 'schedule-key-deletion', '--key-id', ctx.key, '--pending-window-in-days', '7']);
    fs.writeFileSync(a.Device, Buffer.alloc(4096, 'z'), { flag: 'r+' });
    detach(ctx.home, vol);
    expectAttachFails(ctx.home, vol, 'KMSInvalidStateException');
    kmsvol(ctx.home, ['kms', 'cancel-key-deletion', '--key-id', ctx.key]);
    kmsvol(ctx.home, ['kms', 'enable-key', '--key-id', ctx.key]);
    a = attach(ctx.home, vol);
    expect(head(a.Device, 4096).equals(Buffer.alloc(4096, 'z'))).toBe(true);
    detach(ctx.home, vol);
    kmsvol(ctx.home, ['kms', 'schedule-key-deletion', '--key-id', ctx.key, '--pending-window-in-days', '7']);
    expectAttachFails(ctx.home, vol, 'NotFoundException', { KMSVOL_NOW: new Date(Date.now() + 8 * 86_400_000).toISOString() });
  });

  it('a KMS that cannot be reached: EndpointConnectionError and an event; reachable again, attach works', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    let a = attach(ctx.home, vol);
    fs.writeFileSync(a.Device, Buffer.alloc(4096, 'r'), { flag: 'r+' });
    detach(ctx.home, vol);
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    expectAttachFails(ctx.home, vol, 'EndpointConnectionError', {
      AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI',
    });
    a = attach(ctx.home, vol);
    expect(head(a.Device, 4096).equals(Buffer.alloc(4096, 'r'))).toBe(true);
    detach(ctx.home, vol);
  });

  it('a second attach and deleting an attached volume are VolumeInUse', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    attach(ctx.home, vol);
    const again = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(again.code).toBe(254);
    expect(again.stderr).toContain('(VolumeInUse)');
    const del = kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]);
    expect(del.code).toBe(254);
    expect(del.stderr).toContain('(VolumeInUse)');
    detach(ctx.home, vol);
    expect(kmsvol(ctx.home, ['ec2', 'delete-volume', '--volume-id', vol]).code).toBe(0);
    const gone = kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]);
    expect(gone.code).toBe(254);
    expect(gone.stderr).toContain('(InvalidVolume.NotFound)');
    expect(fs.existsSync(imageOf(ctx.home, vol))).toBe(false);
  });

  // What fsync adds (the image's own fdatasync) is proved below the card, by the power-loss test in crash.test.ts.
  it('kill -9 of the card: describe-volumes recovers, the stale mount goes, reattach works, what the card wrote survives', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const a = attach(ctx.home, vol, ['--loop']);
    const fd = fs.openSync(a.Device, 'r+');
    const data = crypto.randomBytes(1 << 20);
    fs.writeSync(fd, data, 0, data.length, 4096 * 10);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const pid = cardPid(vol);
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
    const v = kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0];
    expect(v).toMatchObject({ State: 'available', Attachments: [] });
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.dirname(a.Device));
    expect(spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout).not.toContain(a.Device);
    const b = attach(ctx.home, vol);
    const back = Buffer.alloc(data.length);
    const fd2 = fs.openSync(b.Device, 'r');
    fs.readSync(fd2, back, 0, back.length, 4096 * 10);
    fs.closeSync(fd2);
    expect(back.equals(data)).toBe(true);
    detach(ctx.home, vol);
  });
});
