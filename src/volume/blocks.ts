import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { seekExtent } from '../native/index.js';

/**
 * The snapshot block store's files: content-addressed 512 KiB blocks of a
 * volume's data area (the image after its LUKS2 payload offset), stored once
 * under `<home>/blocks/<2 hex>/<sha256 hex>` with mode 0600. A block's bytes
 * are what the image holds: XTS ciphertext under the snapshot's data key for
 * an encrypted snapshot, plaintext otherwise, so blocks copy into a new image
 * as they are. An all-zero block (a hole) is never stored. Which snapshot
 * uses which block is the registry's (snapshot_blocks); this module only
 * knows files. Precondition of writeBlock and unlinkBlock: the caller holds
 * the registry's write lock, so a block is never unlinked while another
 * process is about to use it (registry.ts, "the block store").
 */
export const BLOCK_SIZE = 512 * 1024;

export function blocksDir(root: string): string {
  return path.join(root, 'blocks');
}

export function blockPath(root: string, hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`Not a block hash: ${hash}`);
  return path.join(blocksDir(root), hash.slice(0, 2), hash);
}

export function blockHash(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function isZero(data: Uint8Array): boolean {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // Compare against a shared zero block in one memcmp.
  return b.equals(ZERO.subarray(0, b.length));
}
const ZERO = Buffer.alloc(BLOCK_SIZE);

function mkdirPrivate(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function fsyncDir(dir: string): void {
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
  for (let done = 0; done < data.length; )
    done += fs.writeSync(fd, data, done, data.length - done, position === undefined ? null : position + done);
}

/** Postcondition: the block file of `hash` exists, whole and durable (tmp, fsync, rename, directory fsync); an existing one is kept. */
export function writeBlock(root: string, hash: string, data: Uint8Array): void {
  const file = blockPath(root, hash);
  if (fs.existsSync(file)) return;
  const dir = path.dirname(file);
  mkdirPrivate(dir);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  try {
    // A short file under a block's name would be trusted by every later snapshot that stores the same content.
    writeAll(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  fsyncDir(dir);
}

export function readBlock(root: string, hash: string): Buffer {
  const fd = fs.openSync(blockPath(root, hash), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(BLOCK_SIZE);
    const n = fs.readSync(fd, buf, 0, BLOCK_SIZE, 0);
    if (n !== BLOCK_SIZE) throw new Error(`Block ${hash} is short (${n} bytes): the block store is damaged.`);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

export function unlinkBlock(root: string, hash: string): void {
  fs.rmSync(blockPath(root, hash), { force: true });
}

/** Every block file in the store (for the sweep of orphans: files no map names). */
export function listBlockFiles(root: string): string[] {
  const out: string[] = [];
  const top = blocksDir(root);
  if (!fs.existsSync(top)) return out;
  for (const d of fs.readdirSync(top)) for (const f of fs.readdirSync(path.join(top, d))) if (/^[0-9a-f]{64}$/.test(f)) out.push(f);
  return out;
}

/** The indices of the blocks of [payloadOffset, payloadOffset + size) that hold any data (SEEK_DATA/SEEK_HOLE): holes are never read. */
export function dataBlocks(fd: number, payloadOffset: number, size: number): number[] {
  const out: number[] = [];
  const end = payloadOffset + size;
  let pos = payloadOffset;
  while (pos < end) {
    const data = seekExtent(fd, pos, 'data');
    if (data < 0 || data >= end) break;
    const hole = Math.min(seekExtent(fd, data, 'hole'), end);
    const first = Math.floor((data - payloadOffset) / BLOCK_SIZE);
    const last = Math.ceil((hole - payloadOffset) / BLOCK_SIZE);
    for (let i = Math.max(first, out.length ? out[out.length - 1]! + 1 : 0); i < last; i++) out.push(i);
    pos = hole;
  }
  return out;
}

/** Read block `index` of an image's data area (zeros past the end of the file). */
export function readImageBlock(fd: number, payloadOffset: number, index: number, buf: Buffer): Buffer {
  const n = fs.readSync(fd, buf, 0, BLOCK_SIZE, payloadOffset + index * BLOCK_SIZE);
  if (n < BLOCK_SIZE) buf.fill(0, n);
  return buf;
}

/** The image's header area (before the payload), with its trailing zeros cut (the keyslot area is mostly unused). */
export function readHeaderArea(fd: number, payloadOffset: number): Buffer {
  const buf = Buffer.alloc(payloadOffset);
  const n = fs.readSync(fd, buf, 0, payloadOffset, 0);
  let end = n;
  while (end > 0 && buf[end - 1] === 0) end--;
  return Buffer.from(buf.subarray(0, end));
}
