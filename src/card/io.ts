import fs from 'node:fs';
import type { GuardedKey } from '../native/index.js';
import { readSectors, readSectorsSync, writeSectors, writeSectorsSync } from '../native/index.js';
import { clip, imageOffset, isAligned, SECTOR_SIZE, span } from '../volume/offsets.js';

/**
 * Serializes overlapping sector ranges. FUSE delivers requests concurrently; a
 * partial-sector write is a read-modify-write and must not interleave with
 * another write to the same sector.
 */
export class RangeLock {
  private active: { first: number; end: number; done: Promise<void> }[] = [];

  async acquire(first: number, count: number): Promise<() => void> {
    const end = first + count;
    for (;;) {
      const blocker = this.active.find((r) => r.first < end && first < r.end);
      if (!blocker) break;
      await blocker.done;
    }
    let release!: () => void;
    const entry = { first, end, done: new Promise<void>((r) => (release = r)) };
    this.active.push(entry);
    return () => {
      this.active.splice(this.active.indexOf(entry), 1);
      release();
    };
  }
}

/**
 * The sector I/O path of a card: byte-addressed reads and writes of the
 * decrypted volume, mapped onto whole encrypted sectors of the image payload.
 * With no key (an unencrypted volume) it passes bytes through.
 */
/**
 * Requests up to this size run on the JavaScript thread: from the page cache
 * they take a few microseconds, less than a thread-pool round trip. Larger ones
 * go to the pool so big transfers overlap.
 */
const SYNC_MAX = 64 * 1024;

export class SectorIO {
  private readonly locks = new RangeLock();
  private inflight = 0;
  private drained: (() => void)[] = [];
  private readonly scratch: Buffer[] = [];

  constructor(
    readonly fd: number,
    readonly key: GuardedKey | null,
    readonly payloadOffset: number,
    readonly sizeBytes: number,
  ) {}

  private async track<T>(p: () => Promise<T>): Promise<T> {
    this.inflight++;
    try {
      return await p();
    } finally {
      if (--this.inflight === 0) this.drained.splice(0).forEach((r) => r());
    }
  }

  /** Resolves when no request is in flight. */
  drain(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => this.drained.push(r));
  }

  private takeScratch(len: number): Buffer {
    const i = this.scratch.findIndex((b) => b.length >= len);
    const b = i >= 0 ? this.scratch.splice(i, 1)[0]! : Buffer.allocUnsafe(Math.max(len, 128 * 1024));
    return b.subarray(0, len);
  }

  private giveScratch(b: Buffer): void {
    if (this.scratch.length < 16) this.scratch.push(Buffer.from(b.buffer, b.byteOffset, b.buffer.byteLength - b.byteOffset));
  }

  /** Read and decrypt whole sectors [first, first + count) into dst. */
  private async readWhole(dst: Buffer, first: number, count: number): Promise<void> {
    const off = imageOffset(this.payloadOffset, first);
    const len = count * SECTOR_SIZE;
    if (this.key) {
      if (len <= SYNC_MAX) return readSectorsSync(this.key, this.fd, off, dst.subarray(0, len), first, SECTOR_SIZE);
      return readSectors(this.key, this.fd, off, dst.subarray(0, len), first, SECTOR_SIZE);
    }
    await readFully(this.fd, dst.subarray(0, len), off);
  }

  /** Encrypt and write whole sectors from src. */
  private async writeWhole(src: Buffer, first: number, count: number): Promise<void> {
    const off = imageOffset(this.payloadOffset, first);
    const len = count * SECTOR_SIZE;
    if (!this.key) return writeFully(this.fd, src.subarray(0, len), off);
    const scratch = this.takeScratch(len);
    try {
      if (len <= SYNC_MAX) writeSectorsSync(this.key, this.fd, off, src.subarray(0, len), scratch, first, SECTOR_SIZE);
      else await writeSectors(this.key, this.fd, off, src.subarray(0, len), scratch, first, SECTOR_SIZE);
    } finally {
      this.giveScratch(scratch);
    }
  }

  /** Read `length` bytes at `offset` into buf; returns bytes read (0 at the end of the volume). */
  read(buf: Buffer, length: number, offset: number): Promise<number> {
    return this.track(async () => {
      const n = clip(offset, length, this.sizeBytes);
      if (n === 0) return 0;
      if (isAligned(offset, n)) {
        await this.readWhole(buf, offset / SECTOR_SIZE, n / SECTOR_SIZE);
        return n;
      }
      const s = span(offset, n);
      const tmp = this.takeScratch(s.count * SECTOR_SIZE);
      try {
        await this.readWhole(tmp, s.firstSector, s.count);
        tmp.copy(buf, 0, s.headSkip, s.headSkip + n);
      } finally {
        this.giveScratch(tmp);
      }
      return n;
    });
  }

  /** Write `length` bytes from buf at `offset`; partial sectors are read-modify-write under a sector lock. */
  write(buf: Buffer, length: number, offset: number): Promise<number> {
    return this.track(async () => {
      const n = clip(offset, length, this.sizeBytes);
      if (n === 0) return 0;
      const s = span(offset, n);
      const release = await this.locks.acquire(s.firstSector, s.count);
      try {
        if (isAligned(offset, n)) {
          await this.writeWhole(buf, s.firstSector, s.count);
        } else {
          const tmp = this.takeScratch(s.count * SECTOR_SIZE);
          try {
            // Only the first and last sectors can be partial; read them, patch, write all.
            await this.readWhole(tmp, s.firstSector, 1);
            if (s.count > 1) await this.readWhole(tmp.subarray((s.count - 1) * SECTOR_SIZE), s.firstSector + s.count - 1, 1);
            buf.copy(tmp, s.headSkip, 0, n);
            await this.writeWhole(tmp, s.firstSector, s.count);
          } finally {
            this.giveScratch(tmp);
          }
        }
      } finally {
        release();
      }
      return n;
    });
  }

  /** fsync the backing file (fsync and flush both reach it). */
  async sync(): Promise<void> {
    await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (e) => (e ? reject(e) : resolve())));
  }
}

function readFully(fd: number, buf: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) =>
      fs.read(fd, buf, done, buf.length - done, pos + done, (e, n) => {
        if (e) return reject(e);
        if (n === 0) {
          buf.fill(0, done);
          return resolve();
        }
        if (done + n < buf.length) step(done + n);
        else resolve();
      });
    step(0);
  });
}

function writeFully(fd: number, buf: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) =>
      fs.write(fd, buf, done, buf.length - done, pos + done, (e, n) => {
        if (e) return reject(e);
        if (done + n < buf.length) step(done + n);
        else resolve();
      });
    step(0);
  });
}
