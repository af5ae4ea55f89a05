import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { seekExtent } from '../native/index.js';
import { writeAll, writeFileAtomically } from './atomic.js';

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
 * process is about to use it (registry.ts, "the block store"). A block is
 * checked against its name whenever it is read (readBlock) or found already
 * stored (writeBlock): a file's name is the SHA-256 of what it must hold, so
 * damage (bit rot, a stray write) is refused, never served or kept as good.
 * The check costs one SHA-256 of 512 KiB per read, about 0.35 ms (Node's
 * crypto, ~1.5 GiB/s here) beside 0.24 ms for the read itself from the page cache.
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

/** The bytes of block file `file` if they are whole and have SHA-256 `hash`; null if the file is missing, short, long or changed. */
function readIfSound(file: string, hash: string): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ELOOP') return null;
    throw e;
  }
  try {
    // One byte more than a block, so a file that grew is seen as damaged too.
    const buf = Buffer.alloc(BLOCK_SIZE + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = fs.readSync(fd, buf, n, buf.length - n, n);
    if (n !== BLOCK_SIZE) return null;
    const data = buf.subarray(0, BLOCK_SIZE);
    return blockHash(data) === hash ? data : null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Postcondition: the block file of `hash` exists, whole and durable (tmp, fsync, rename, directory fsync). An existing
 * one is kept only if it holds `hash`'s bytes; a damaged one is replaced (the caller holds the write lock, so no other
 * writer is at this name). Precondition: `data` has SHA-256 `hash`.
 */
export function writeBlock(root: string, hash: string, data: Uint8Array): void {
  const file = blockPath(root, hash);
  if (readIfSound(file, hash)) return;
  mkdirPrivate(path.dirname(file));
  // A short file under a block's name would be trusted by every later snapshot that stores the same content.
  writeFileAtomically(file, (fd) => writeAll(fd, data), { durable: true });
}

/**
 * A block file that does not hold what its name says: an internal fault, not the caller's. Each service answers it as
 * its own internal error (EBS InternalServerException, EC2 InternalError: 500, the message in the endpoint's log); the
 * CLI prints the message.
 */
export class DamagedBlockError extends Error {
  constructor(readonly file: string) {
    super(
      `The snapshot block store is damaged: ${file} is missing or does not hold the block its name (SHA-256) says, so it was not used. Restore the snapshots that use it from a bundle (kmsvol ebs import-snapshot) or another copy of the snapshot, or delete them.`,
    );
    this.name = 'DamagedBlockError';
  }
}

/** Block `hash`'s bytes; Postcondition: they have SHA-256 `hash` (else DamagedBlockError, naming the file). */
export function readBlock(root: string, hash: string): Buffer {
  const file = blockPath(root, hash);
  const data = readIfSound(file, hash);
  if (!data) throw new DamagedBlockError(file);
  return data;
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

/**
 * Remove the temporary block files (`<hash>.tmp-<pid>`) a writer left when it was killed before its rename; returns
 * their names. Precondition: the caller holds the registry's write lock, which every writer holds while it writes a
 * block (writeBlock's precondition), so no temporary file present is a live writer's.
 */
export function removeTempBlocks(root: string): string[] {
  const out: string[] = [];
  const top = blocksDir(root);
  if (!fs.existsSync(top)) return out;
  for (const d of fs.readdirSync(top))
    for (const f of fs.readdirSync(path.join(top, d)))
      if (/^[0-9a-f]{64}\.tmp-\d+$/.test(f)) {
        fs.rmSync(path.join(top, d, f), { force: true });
        out.push(f);
      }
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
