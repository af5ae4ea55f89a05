import { createRequire } from 'node:module';

/**
 * The fuse-native adapter: the only file that imports fuse-native. It serves
 * one regular file in a directory and turns errors into errno (answering every
 * operation, so the kernel never waits for the FUSE timeout). No crypto, no policy.
 */
export interface SingleFile {
  name: string;
  size: number;
  read(buf: Buffer, length: number, offset: number): Promise<number>;
  write(buf: Buffer, length: number, offset: number): Promise<number>;
  sync(): Promise<void>;
  /** Called with every error turned into EIO, for the card's log. */
  onError(op: string, e: unknown): void;
}

export interface Mounted {
  unmount(): Promise<void>;
}

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-var-requires
const Fuse = require('fuse-native') as any;

/** Largest request the kernel sends with big_writes (FUSE 2's cap is 128 KiB). */
export const MAX_IO = 128 * 1024;

/** fuse-native has no big_writes/max_write options; add them to the mount options it builds. */
const BigIoFuse: any = class extends Fuse {
  _fuseOptions(): string {
    const base: string = super._fuseOptions();
    const extra = `big_writes,max_write=${MAX_IO},max_read=${MAX_IO}`;
    return base ? `${base},${extra}` : `-o${extra}`;
  }
};

export function mountSingleFile(dir: string, file: SingleFile): Promise<Mounted> {
  const filePath = `/${file.name}`;
  const now = new Date();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const dirStat = { mtime: now, atime: now, ctime: now, nlink: 2, size: 4096, mode: 0o40700, uid, gid };
  const fileStat = () => ({ mtime: now, atime: now, ctime: now, nlink: 1, size: file.size, mode: 0o100600, uid, gid, blksize: 4096, blocks: Math.ceil(file.size / 512) });
  // A full or read-only backing file system keeps its own errno (ENOSPC, EDQUOT, EROFS), so the
  // filesystem on top reports "No space left on device"; anything else is EIO.
  const PASS_THROUGH = new Set([28, 122, 30]);
  const fail = (op: string, cb: (code: number) => void) => (e: unknown) => {
    file.onError(op, e);
    const errno = Math.abs((e as { errno?: number }).errno ?? 0);
    cb(PASS_THROUGH.has(errno) ? -errno : Fuse.EIO);
  };

  const ops = {
    getattr(p: string, cb: (err: number, st?: object) => void) {
      if (p === '/') return cb(0, dirStat);
      if (p === filePath) return cb(0, fileStat());
      cb(Fuse.ENOENT);
    },
    readdir(p: string, cb: (err: number, names?: string[]) => void) {
      if (p === '/') return cb(0, [file.name]);
      cb(Fuse.ENOENT);
    },
    open(p: string, _flags: number, cb: (err: number, fd?: number) => void) {
      if (p === filePath) return cb(0, 42);
      cb(Fuse.ENOENT);
    },
    release(_p: string, _fd: number, cb: (err: number) => void) {
      cb(0);
    },
    read(_p: string, _fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) {
      file.read(buf, len, pos).then(cb, fail('read', cb));
    },
    write(_p: string, _fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) {
      file.write(buf, len, pos).then(cb, fail('write', cb));
    },
    fsync(_p: string, _fd: number, _datasync: boolean, cb: (err: number) => void) {
      file.sync().then(() => cb(0), fail('fsync', cb));
    },
    flush(_p: string, _fd: number, cb: (err: number) => void) {
      file.sync().then(() => cb(0), fail('flush', cb));
    },
    truncate(p: string, size: number, cb: (err: number) => void) {
      // A volume has a fixed size; truncating to it (as O_TRUNC-less tools do) is a no-op.
      cb(p === filePath && size === file.size ? 0 : Fuse.EPERM);
    },
    ftruncate(_p: string, _fd: number, size: number, cb: (err: number) => void) {
      cb(size === file.size ? 0 : Fuse.EPERM);
    },
    statfs(_p: string, cb: (err: number, st?: object) => void) {
      const blocks = Math.ceil(file.size / 4096);
      cb(0, { bsize: 4096, frsize: 4096, blocks, bfree: 0, bavail: 0, files: 1, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255 });
    },
  };

  const fuse = new BigIoFuse(dir, ops, { force: true, mkdir: true, maxRead: MAX_IO, fsname: 'kmsvol', subtype: 'kmsvol' });
  return new Promise((resolve, reject) => {
    fuse.mount((err: Error | null) => {
      if (err) return reject(err);
      resolve({
        unmount: () => new Promise<void>((res, rej) => fuse.unmount((e: Error | null) => (e ? rej(e) : res()))),
      });
    });
  });
}

/** Lazily unmount a stale FUSE mount left by a card that died. */
export function unmountStale(dir: string): Promise<void> {
  return new Promise((resolve) => Fuse.unmount(dir, () => resolve()));
}
