import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loopTag } from '../../../src/card/loop.js';
import { attachLoop, clearLoop, LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO, loopOpeners, loopStatus, openLoop } from '../../../src/native/loop.js';
import { onCleanup, tempHome } from '../../helpers/home.js';
import { backingFile, boundTo, heldLoop } from '../../helpers/loops.js';

const VOL_A = 'vol-0aaaaaaaaaaaaaaaa';

describe('loop devices on descriptors (native/src/loop.c)', () => {
  it('LOOP_CONFIGURE on an fd: the device reports the backing file’s st_dev/st_ino as fs.stat gives them, the tag, direct I/O and autoclear', () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const l = heldLoop(a.fd, VOL_A);
    const s = loopStatus(l.fd)!;
    expect(s).toMatchObject({ number: l.number, backingDev: a.st.dev, backingIno: a.st.ino, name: loopTag(VOL_A) });
    expect(s.flags & LO_FLAGS_DIRECT_IO).toBe(LO_FLAGS_DIRECT_IO);
    expect(s.flags & LO_FLAGS_AUTOCLEAR).toBe(LO_FLAGS_AUTOCLEAR);
    expect(fs.readFileSync(`/sys/block/loop${l.number}/loop/dio`, 'utf8').trim()).toBe('1');
    // What is written through the device lands in this file.
    const w = fs.openSync(`/dev/loop${l.number}`, 'r+');
    fs.writeSync(w, Buffer.alloc(4096, 0x5a), 0, 4096, 0);
    fs.fsyncSync(w);
    fs.closeSync(w);
    expect(fs.readFileSync(a.file).subarray(0, 4096).equals(Buffer.alloc(4096, 0x5a))).toBe(true);
  });

  it('autoclear: closing the last descriptor frees the device (nobody releases it by number)', () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const l = heldLoop(a.fd, VOL_A);
    expect(boundTo(l.number, a.st)).toBe(true);
    l.close();
    expect(boundTo(l.number, a.st)).toBe(false);
  });

  it('LOOP_CLR_FD while another descriptor is open waits for it; on an unbound device clearLoop is false, not an error', () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const l = heldLoop(a.fd, VOL_A);
    const other = openLoop(l.number);
    expect(clearLoop(l.fd)).toBe(true);
    l.close();
    expect(boundTo(l.number, a.st)).toBe(true); // `other` still has it
    fs.closeSync(other);
    expect(boundTo(l.number, a.st)).toBe(false);
    const again = openLoop(l.number);
    try {
      // Unless the number has already gone to someone else, it is free now.
      if (!loopStatus(again)) expect(clearLoop(again)).toBe(false);
    } finally {
      fs.closeSync(again);
    }
  });

  it('loopOpeners names every other process with the device open, never the caller', async () => {
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const l = heldLoop(a.fd, VOL_A);
    expect(loopOpeners(l.fd, process.pid)).toEqual([]);
    const rfd = fs.openSync(`/dev/loop${l.number}`, 'r');
    const reader = spawn('sleep', ['60'], { stdio: [rfd, 'ignore', 'ignore'] });
    fs.closeSync(rfd);
    onCleanup(() => reader.kill('SIGKILL'));
    await new Promise((r) => reader.once('spawn', r));
    expect(loopOpeners(l.fd, process.pid)).toEqual([reader.pid]);
  });

  it('arguments are checked before C sees them', () => {
    expect(() => attachLoop(-1, loopTag(VOL_A))).toThrow(/fd must be an open file descriptor/);
    expect(() => attachLoop(0, 'x'.repeat(64))).toThrow(/tag must be 1..63 printable ASCII bytes/);
    expect(() => openLoop(-3)).toThrow(/a loop device number is 0..1048575/);
    // A file opened read-only cannot back a read-write device: EBADF, named.
    const a = backingFile(tempHome('kmsvol-loop-'), 'a.img');
    const ro = fs.openSync(a.file, 'r');
    onCleanup(() => fs.closeSync(ro));
    expect(() => attachLoop(ro, loopTag(VOL_A))).toThrow(/LOOP_CONFIGURE: Bad file descriptor/);
  });
});
