import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Home } from '../home.js';

/**
 * The change file of a volume (`volumes/<volume id>.changes`, 0600): which
 * CHANGE_BLOCK-sized blocks of its data were written since its base snapshot,
 * kept next to the image so that CreateSnapshot reads only those. The card
 * keeps the live bitmap in memory (native/src/fuse_server.c) and this file
 * says, between attachments, what it held. Pure encode and decode here, and
 * reads and writes on a descriptor the caller opened under the volume's lock.
 *
 * Layout (little-endian; docs/format.md):
 *
 *   0   8  magic "KVCHANGE"
 *   8   4  version (1)
 *  12   4  state: 1 clean (the bits are whole), 2 in use (a card serves the volume, or died serving it)
 *  16   4  flags: bit 0 ALL (every block counts as changed since the base, whatever the bits say)
 *  20   4  CRC-32 of the header (this field zero) and, when clean, of the bitmap
 *  24   8  blocks the bitmap covers
 *  32   8  the image's inode number  \
 *  40   8  the image's size           > when the bits were last made whole: a
 *  48   8  the image's ctime, in ns  /  change by anyone else shows here
 *  56  32  the base snapshot id (ASCII, NUL-padded; all NUL: none)
 *  88   8  zero
 *  96   …  the bitmap: block b is bit b % 8 of byte b / 8
 *
 * Precondition of trusting the bits (trustedChanges): the file decodes, its
 * CRC matches, it is clean, not ALL, has a base, and the image is the one it
 * describes (same inode, size and ctime: a write through `cryptsetup open`,
 * dd, a grow or a header upgrade changes the ctime). Anything else means
 * "every block changed", which is always safe.
 */
export const CHANGE_MAGIC = Buffer.from('KVCHANGE');
export const CHANGE_VERSION = 1;
export const CHANGE_HEADER = 96;
const BASE_AT = 56;
const BASE_LEN = 32;

export type ChangeState = 'clean' | 'in-use';

/** The image's identity the bits were made whole against (fstat with bigint). */
export interface ImageStamp {
  ino: bigint;
  size: bigint;
  ctimeNs: bigint;
}

export interface ChangeRecord {
  state: ChangeState;
  /** Every block counts as changed since `base` (a card died, tracking was off, or the bits were lost). */
  all: boolean;
  /** The snapshot the bits are relative to; null: none (the volume has none yet, or it is unknown). */
  base: string | null;
  blocks: number;
  image: ImageStamp;
  /** ceil(blocks / 8) bytes. */
  bits: Uint8Array;
}

/** A snapshot's take of an attached volume's changes, as its card answers it (card/tracking.ts). */
export interface TakenChanges {
  /** Unique across cards (a card's random prefix and a count): a late commit never reaches another card's take. */
  takeId: string;
  base: string | null;
  all: boolean;
  blocks: number;
  /** The bitmap, base64. */
  bits: string;
}

export function changesPath(home: Home, volumeId: string): string {
  return path.join(home.volumesDir, `${volumeId}.changes`);
}

/** Blocks of `blockSize` bytes that `bytes` of volume span. */
export function blocksOf(bytes: number, blockSize: number): number {
  return Math.ceil(bytes / blockSize);
}

export function stampOf(fd: number): ImageStamp {
  const st = fs.fstatSync(fd, { bigint: true });
  return { ino: st.ino, size: st.size, ctimeNs: st.ctimeNs };
}

export function sameStamp(a: ImageStamp, b: ImageStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.ctimeNs === b.ctimeNs;
}

function crcOf(head: Buffer, bits: Uint8Array | null): number {
  const h = Buffer.from(head);
  h.writeUInt32LE(0, 20);
  const c = zlib.crc32(h);
  return bits ? zlib.crc32(bits, c) : c;
}

/** The header of `r`; its CRC covers the bitmap only when clean. */
export function encodeHeader(r: ChangeRecord): Buffer {
  const h = Buffer.alloc(CHANGE_HEADER);
  CHANGE_MAGIC.copy(h, 0);
  h.writeUInt32LE(CHANGE_VERSION, 8);
  h.writeUInt32LE(r.state === 'clean' ? 1 : 2, 12);
  h.writeUInt32LE(r.all ? 1 : 0, 16);
  h.writeBigUInt64LE(BigInt(r.blocks), 24);
  h.writeBigUInt64LE(r.image.ino, 32);
  h.writeBigUInt64LE(r.image.size, 40);
  h.writeBigUInt64LE(r.image.ctimeNs, 48);
  if (r.base) h.write(r.base, BASE_AT, BASE_LEN, 'ascii');
  h.writeUInt32LE(crcOf(h, r.state === 'clean' ? r.bits : null), 20);
  return h;
}

/** The record in `buf` (a whole change file), or why it cannot be used. */
export function decodeChanges(buf: Buffer): ChangeRecord | { invalid: string } {
  if (buf.length < CHANGE_HEADER || !buf.subarray(0, 8).equals(CHANGE_MAGIC)) return { invalid: 'not a change file' };
  if (buf.readUInt32LE(8) !== CHANGE_VERSION) return { invalid: `version ${buf.readUInt32LE(8)}` };
  const stateCode = buf.readUInt32LE(12);
  if (stateCode !== 1 && stateCode !== 2) return { invalid: `state ${stateCode}` };
  const state: ChangeState = stateCode === 1 ? 'clean' : 'in-use';
  const blocks = Number(buf.readBigUInt64LE(24));
  const len = Math.ceil(blocks / 8);
  if (!Number.isSafeInteger(blocks) || (state === 'clean' && buf.length < CHANGE_HEADER + len)) return { invalid: 'shorter than its bitmap' };
  const head = buf.subarray(0, CHANGE_HEADER);
  const bits = state === 'clean' ? new Uint8Array(buf.subarray(CHANGE_HEADER, CHANGE_HEADER + len)) : new Uint8Array(len);
  if (crcOf(head, state === 'clean' ? bits : null) !== buf.readUInt32LE(20)) return { invalid: 'checksum mismatch' };
  const rawBase = buf
    .subarray(BASE_AT, BASE_AT + BASE_LEN)
    .toString('ascii')
    .replace(/\0+$/, '');
  if (rawBase !== '' && !/^snap-[0-9a-f]{17}$/.test(rawBase)) return { invalid: 'base is not a snapshot id' };
  return {
    state,
    all: (buf.readUInt32LE(16) & 1) === 1,
    base: rawBase || null,
    blocks,
    image: { ino: buf.readBigUInt64LE(32), size: buf.readBigUInt64LE(40), ctimeNs: buf.readBigUInt64LE(48) },
    bits,
  };
}

/** The record in the file open as `fd`, or why it cannot be used (an empty file: never written). */
export function readChanges(fd: number): ChangeRecord | { invalid: string } {
  const buf = fs.readFileSync(fd);
  if (buf.length === 0) return { invalid: 'empty' };
  return decodeChanges(buf);
}

/**
 * The blocks changed since `r.base` when the record can be trusted for an
 * image of `blocks` blocks stamped `image`; 'all' otherwise (see the
 * precondition above). A volume that grew since has its new blocks unchanged
 * (never written, so they read as zeros).
 */
export function trustedChanges(r: ChangeRecord | { invalid: string }, blocks: number, image: ImageStamp): Uint8Array | 'all' {
  if ('invalid' in r || r.state !== 'clean' || r.all || !r.base || r.blocks > blocks || !sameStamp(r.image, image)) return 'all';
  const bits = new Uint8Array(Math.ceil(blocks / 8));
  bits.set(r.bits);
  return bits;
}

/**
 * Write `r` whole through `fd`, durably: the bitmap, fdatasync, then the
 * header, fdatasync. Crash windows: before the header lands, the old header
 * stands, and either it says in use ('all') or its CRC no longer matches the
 * bitmap under it (clean, but corrupt: 'all'); a torn header fails its CRC
 * ('all'). A reader never takes half-written bits for whole ones.
 */
export function writeChanges(fd: number, r: ChangeRecord): void {
  if (r.state === 'clean') {
    fs.writeSync(fd, r.bits, 0, r.bits.length, CHANGE_HEADER);
    fs.fdatasyncSync(fd);
  }
  writeHeader(fd, r);
}

/** Only the header (an in-use record: its bitmap is not read), fdatasynced. */
export function writeHeader(fd: number, r: ChangeRecord): void {
  const h = encodeHeader(r);
  fs.writeSync(fd, h, 0, h.length, 0);
  fs.fdatasyncSync(fd);
}

/** Block numbers whose bit is set, ascending. */
export function blocksSet(bits: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if (b) for (let j = 0; j < 8; j++) if (b & (1 << j)) out.add(i * 8 + j);
  }
  return out;
}

/** OR `src` into `dst` (dst at least as long). */
export function orInto(dst: Uint8Array, src: Uint8Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = (dst[i] ?? 0) | (src[i] ?? 0);
}
