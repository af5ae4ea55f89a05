import { EngineError, addon as nativeAddon } from './index.js';

/**
 * The TypeScript face of native/src/loop.c: loop devices on descriptors.
 * It validates every argument (C trusts what it is handed) and turns a
 * failed ioctl into an IoError naming the call and the errno.
 *
 * A loop device is attached with LOOP_CONFIGURE on the backing file's
 * descriptor and LO_FLAGS_AUTOCLEAR, so the kernel frees it when the last
 * descriptor on it closes; a device found by number is checked through a
 * descriptor (loopStatus) before that same descriptor releases it (clearLoop).
 */
interface LoopAddon {
  loopAttach(fileFd: number, tag: string): { fd: number; number: number };
  loopOpen(n: number): number;
  loopStatus(fd: number): LoopStatus | null;
  loopClear(fd: number): boolean;
  loopSetCapacity(fd: number): void;
  loopOpeners(fd: number, exceptPid: number): number[];
  fsFreeze(fd: number, on: number): void;
  fsSync(fd: number): void;
}

const addon = nativeAddon as unknown as LoopAddon;

/** linux/loop.h: the flags LOOP_GET_STATUS64 reports. */
export const LO_FLAGS_AUTOCLEAR = 4;
export const LO_FLAGS_DIRECT_IO = 16;
/** linux/loop.h LO_NAME_SIZE: lo_file_name holds at most this many bytes, NUL included. */
const LO_NAME_SIZE = 64;

/** What LOOP_GET_STATUS64 says of a bound loop device. */
export interface LoopStatus {
  number: number;
  /** The backing file's st_dev and st_ino, as fs.stat gives them. */
  backingDev: number;
  backingIno: number;
  flags: number;
  /** lo_file_name: the tag it was attached with (util-linux puts the file's path there). */
  name: string;
}

function arg(cond: boolean, msg: string): void {
  if (!cond) throw new EngineError('InvalidArgument', msg);
}

function fdArg(fd: number): void {
  arg(Number.isInteger(fd) && fd >= 0 && fd <= 0x7fffffff, `fd must be an open file descriptor; got ${fd}`);
}

function io<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof EngineError) throw e;
    const err = e as Error & { errno?: number };
    throw new EngineError('IoError', `loop device: ${err.message}`, err.errno);
  }
}

/**
 * A free loop device over `fileFd` (open read-write), in direct-I/O mode and
 * with autoclear, its lo_file_name set to `tag` (1..63 printable ASCII bytes).
 * Resolves with the device's descriptor, which the caller holds for as long
 * as the device serves: closing the last descriptor frees it.
 */
export function attachLoop(fileFd: number, tag: string): { fd: number; number: number } {
  fdArg(fileFd);
  arg(
    typeof tag === 'string' && /^[\x21-\x7e]+$/.test(tag) && tag.length < LO_NAME_SIZE,
    `tag must be 1..${LO_NAME_SIZE - 1} printable ASCII bytes; got ${JSON.stringify(tag)}`,
  );
  return io(() => addon.loopAttach(fileFd, tag));
}

/** /dev/loop<n> opened read-only (enough for GET_STATUS64 and CLR_FD) and checked to be a loop device. */
export function openLoop(n: number): number {
  arg(Number.isInteger(n) && n >= 0 && n <= 0xfffff, `a loop device number is 0..1048575; got ${n}`);
  return io(() => addon.loopOpen(n));
}

/** LOOP_GET_STATUS64 on `fd`: whose file backs the device, or null when it is not bound. */
export function loopStatus(fd: number): LoopStatus | null {
  fdArg(fd);
  return io(() => addon.loopStatus(fd));
}

/** LOOP_CLR_FD on `fd` (the kernel frees the device at its last close): false when it was not bound. */
export function clearLoop(fd: number): boolean {
  fdArg(fd);
  return io(() => addon.loopClear(fd));
}

/** LOOP_SET_CAPACITY on `fd`: the device takes its backing file's new size. */
export function setLoopCapacity(fd: number): void {
  fdArg(fd);
  io(() => addon.loopSetCapacity(fd));
}

/** Pids (the first 16) of processes other than `exceptPid` with a descriptor on the block device `fd` is. */
export function loopOpeners(fd: number, exceptPid: number): number[] {
  fdArg(fd);
  arg(Number.isInteger(exceptPid) && exceptPid >= 0, `exceptPid must be a pid; got ${exceptPid}`);
  return io(() => addon.loopOpeners(fd, exceptPid));
}

/** FIFREEZE (true) or FITHAW (false) on `fd`, a descriptor of a file system's root: fsfreeze(8) without resolving its path again. */
export function freezeFileSystem(fd: number, on: boolean): void {
  fdArg(fd);
  io(() => addon.fsFreeze(fd, on ? 1 : 0));
}

/** syncfs(2) of the file system `fd` is on: sync -f without resolving its path again. */
export function syncFileSystem(fd: number): void {
  fdArg(fd);
  io(() => addon.fsSync(fd));
}
