import fs from 'node:fs';
import path from 'node:path';
import { loopTag } from '../../src/card/loop.js';
import { attachLoop, loopStatus, openLoop } from '../../src/native/loop.js';
import { onCleanup } from './home.js';

/**
 * Loop devices for unit tests, backed by plain files in a test's temporary
 * directory. Every device is set up with autoclear and held only by the
 * test's descriptors, which cleanup closes: the kernel then frees it, whatever
 * the test did, and nothing is released by number.
 */

/** A 4 MiB backing file filled with `name`'s first byte, opened read-write (closed by cleanup). */
export function backingFile(dir: string, name: string): { file: string; fd: number; st: fs.Stats } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.alloc(4 << 20, name.charCodeAt(0)));
  const fd = fs.openSync(file, 'r+');
  onCleanup(() => fs.closeSync(fd));
  return { file, fd, st: fs.fstatSync(fd) };
}

/** A loop device over `fd`, tagged for `volumeId`; close() (or cleanup) closes its descriptor. */
export function heldLoop(fd: number, volumeId: string): { fd: number; number: number; close(): void } {
  const l = attachLoop(fd, loopTag(volumeId));
  let open = true;
  const close = () => {
    if (open) fs.closeSync(l.fd);
    open = false;
  };
  onCleanup(close);
  return { fd: l.fd, number: l.number, close };
}

/** Whether /dev/loop<n> is bound to `st`'s file now (checked on a fresh descriptor). */
export function boundTo(n: number, st: fs.Stats): boolean {
  const fd = openLoop(n);
  try {
    const s = loopStatus(fd);
    return !!s && s.backingDev === st.dev && s.backingIno === st.ino;
  } finally {
    fs.closeSync(fd);
  }
}
