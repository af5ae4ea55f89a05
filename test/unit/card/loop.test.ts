import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeldLoop, releaseStaleLoop } from '../../../src/card/loop.js';
import { openLoop } from '../../../src/native/loop.js';
import { onCleanup, tempHome } from '../../helpers/home.js';
import { backingFile, boundTo, heldLoop } from '../../helpers/loops.js';

const VOL_A = 'vol-0aaaaaaaaaaaaaaaa';
const VOL_B = 'vol-0bbbbbbbbbbbbbbbb';

describe('releaseStaleLoop: a dead card’s loop device is released only when it is still the card’s', () => {
  it('Precondition: a device backed by another inode (the number given to another volume) is refused, and stays bound', () => {
    const dir = tempHome('kmsvol-loop-');
    const a = backingFile(dir, 'a.img');
    const b = backingFile(dir, 'b.img');
    // B's device has the number A's card recorded; A's row still names it.
    const lb = heldLoop(b.fd, VOL_B);
    const rowA = { volume_id: VOL_A, loop_device: `/dev/loop${lb.number}`, served_dev: a.st.dev, served_ino: a.st.ino };
    expect(releaseStaleLoop(rowA)).toBe('not ours');
    expect(boundTo(lb.number, b.st)).toBe(true);
    // A's tag but another inode (a device of another attach of A): refused.
    const c = backingFile(dir, 'c.img');
    const lc = heldLoop(c.fd, VOL_A);
    expect(releaseStaleLoop({ ...rowA, loop_device: `/dev/loop${lc.number}` })).toBe('not ours');
    expect(boundTo(lc.number, c.st)).toBe(true);
    // B's very inode but A's tag (an anonymous st_dev reused by a new FUSE mount): refused too.
    expect(releaseStaleLoop({ ...rowA, served_dev: b.st.dev, served_ino: b.st.ino })).toBe('not ours');
    expect(boundTo(lb.number, b.st)).toBe(true);
    // A row without the backing inode (from before it was recorded) cannot be verified: nothing is released.
    expect(releaseStaleLoop({ ...rowA, volume_id: VOL_B, served_dev: null, served_ino: null })).toBe('unverifiable');
    expect(boundTo(lb.number, b.st)).toBe(true);
  });

  it('the device still backed by the recorded inode, with the card’s tag, is released (freed once its last holder closes)', () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const la = heldLoop(a.fd, VOL_A);
    // Something still has it open after the card died (a reader): the release waits for it.
    const reader = openLoop(la.number);
    la.close();
    expect(releaseStaleLoop({ volume_id: VOL_A, loop_device: `/dev/loop${la.number}`, served_dev: a.st.dev, served_ino: a.st.ino })).toBe('released');
    expect(boundTo(la.number, a.st)).toBe(true);
    fs.closeSync(reader);
    expect(boundTo(la.number, a.st)).toBe(false);
  });
});

describe('HeldLoop: the card’s loop device, by descriptor', () => {
  it('busy() names a process holding the device open by pid and command; release() frees the device', async () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const loop = HeldLoop.attach(a.fd, VOL_A);
    onCleanup(() => loop.release());
    expect(loop.busy()).toBeUndefined();
    const rfd = fs.openSync(loop.path, 'r');
    const reader = spawn('sleep', ['60'], { stdio: [rfd, 'ignore', 'ignore'] });
    fs.closeSync(rfd);
    onCleanup(() => reader.kill('SIGKILL'));
    await new Promise((r) => reader.once('spawn', r));
    expect(loop.busy()).toBe(`${loop.path} is open by pid ${reader.pid} (sleep). Close it first`);
    reader.kill('SIGKILL');
    await new Promise((r) => reader.once('exit', r));
    expect(loop.busy()).toBeUndefined();
    loop.release();
    expect(boundTo(loop.number, a.st)).toBe(false);
  });

  it('mountPoint() finds a file system on the device by its major:minor (what freeze and the signal flush act on); busy() says it is mounted', () => {
    const dir = tempHome('kmsvol-loop-');
    const a = backingFile(dir, 'a.img');
    const loop = HeldLoop.attach(a.fd, VOL_A);
    onCleanup(() => loop.release());
    expect(loop.mountPoint()).toBeUndefined();
    execFileSync('mkfs.ext4', ['-q', '-F', loop.path]);
    const mnt = fs.mkdtempSync(path.join(dir, 'mnt-'));
    execFileSync('mount', [loop.path, mnt]);
    onCleanup(() => spawnSync('umount', [mnt]));
    expect(loop.mountPoint()).toBe(mnt);
    expect(loop.busy()).toBe(`${loop.path} is mounted on ${mnt}. Unmount it first`);
    execFileSync('umount', [mnt]);
    expect(loop.mountPoint()).toBeUndefined();
  });
});

describe('HeldLoop.releaseIfSole: a plain detach never cuts off who opened the device after busy() looked', () => {
  it('Postcondition: with another opener the device stays bound and readable, and the answer is false; alone, it is released and no one can open it', () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const loop = HeldLoop.attach(a.fd, VOL_A);
    onCleanup(() => loop.release());
    // The racer opens the device after busy() answered "nobody".
    expect(loop.busy()).toBeUndefined();
    const racer = fs.openSync(loop.path, 'r');
    let racerOpen = true;
    onCleanup(() => racerOpen && fs.closeSync(racer));
    expect(loop.releaseIfSole()).toBe(false);
    expect(boundTo(loop.number, a.st)).toBe(true);
    const buf = Buffer.alloc(4096);
    expect(fs.readSync(racer, buf, 0, buf.length, 0)).toBe(4096);
    fs.closeSync(racer);
    racerOpen = false;
    // Alone now: released at once, and the device takes no new opener.
    expect(loop.releaseIfSole()).toBe(true);
    expect(boundTo(loop.number, a.st)).toBe(false);
  });
});
