import os from 'node:os';
import { addon, EngineError } from './index.js';

/**
 * The TypeScript face of native/src/paths.c: one step of a walk by
 * descriptor each (the walk, its rules and its messages are card/paths.ts),
 * and the release of a mount through a descriptor held on its root. Every
 * descriptor is O_PATH: it names a directory for *at() calls, fstat and the
 * mount API, and gives no access to its content.
 *
 * Failures are errors with the errno's `code` (ENOENT, ENOTDIR, ELOOP,
 * EEXIST...), as node:fs throws them, for the walk to decide on.
 */

const NAME_BYTES = 255;

function errnoError(call: string, name: string, errno: number): NodeJS.ErrnoException {
  const code = Object.entries(os.constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
  return Object.assign(new Error(`${call} ${name}: ${code}`), { code, errno: -errno, syscall: call });
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new EngineError('InvalidArgument', `fd must be an open file descriptor; got ${fd}`);
}

/** One component: not empty, no slash, not . or .., at most 255 bytes. */
function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || Buffer.byteLength(name) > NAME_BYTES) {
    throw new EngineError('InvalidArgument', `a path component is 1..${NAME_BYTES} bytes, without / or NUL, and not . or ..; got ${JSON.stringify(name)}`);
  }
}

/** An O_PATH descriptor of "/". */
export function openRoot(): number {
  const r = addon.openRoot();
  if (r < 0) throw errnoError('open', '/', -r);
  return r;
}

/**
 * An O_PATH descriptor of `name` in `dirFd`, never through a symbolic link:
 * with `directory`, a link (or any non-directory) is ENOTDIR; without, a link
 * is opened itself, so that fstat can say what it is.
 */
export function openAt(dirFd: number, name: string, directory: boolean): number {
  checkFd(dirFd);
  checkName(name);
  const r = addon.openAt(dirFd, name, directory);
  if (r < 0) throw errnoError('openat', name, -r);
  return r;
}

/** mkdirat(dirFd, name, mode): EEXIST (thrown) when anything is there already, a link included. */
export function mkdirAt(dirFd: number, name: string, mode: number): void {
  checkFd(dirFd);
  checkName(name);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new EngineError('InvalidArgument', `mode must be 0..07777; got ${mode}`);
  const e = addon.mkdirAt(dirFd, name, mode);
  if (e) throw errnoError('mkdirat', name, e);
}

/**
 * Detach (MNT_DETACH) the mount whose root `fd` holds, through
 * /proc/self/fd/N: exactly that mount, whatever its path leads to now. EINVAL
 * (thrown) when `fd` holds no mount's root.
 */
export function umountFd(fd: number): void {
  checkFd(fd);
  const e = addon.umountFd(fd);
  if (e) throw errnoError('umount2', `/proc/self/fd/${fd}`, e);
}

/**
 * The unique id of the mount `fd` is on (statx STATX_MNT_ID_UNIQUE, Linux
 * 6.8): never given to another mount until reboot, unlike mountinfo's ids and
 * FUSE's device numbers. Answered without asking the file system's server.
 */
export function mountIdOf(fd: number): number {
  checkFd(fd);
  const r = addon.mountIdOf(fd);
  if (r < 0) throw errnoError('statx', `STATX_MNT_ID_UNIQUE of fd ${fd}`, -r);
  return r;
}
