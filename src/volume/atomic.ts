import fs from 'node:fs';
import path from 'node:path';

/**
 * The one way a file of the kmsvol home comes to be whole or not at all: what
 * `fill` writes goes to a temporary name beside it (`<file>.tmp-<pid>`,
 * 0600, never through a symbolic link), is fsynced, and is renamed into
 * place; with `durable`, the directory is fsynced too, so the rename itself
 * survives a power cut. On any failure the temporary file is removed and
 * `file` is as it was.
 */
export function writeFileAtomically(file: string, fill: (fd: number) => void, opts: { durable: boolean }): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fill(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  if (opts.durable) fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write all of `data` at `position` (or the file offset): a write may be short
 * (a disk filling up), so loop until every byte is written or a write throws
 * (ENOSPC). Never leaves a short write unnoticed.
 */
export function writeAll(fd: number, data: Uint8Array, position?: number): void {
  for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done, data.length - done, position === undefined ? null : position + done);
}
