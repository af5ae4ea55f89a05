import type { GuardedKey } from '../native/index.js';
import { recryptSectors, SECTOR_SIZE as SECTOR, seekExtent } from '../native/index.js';

/**
 * Stream a volume payload from one image to another, re-encrypting it: only
 * the data extents of the source (SEEK_DATA/SEEK_HOLE) are read, and
 * never-written sectors stay holes, so time and space are proportional to the
 * data written, not to the volume size. Work runs on the thread pool, a few
 * 1 MiB chunks in flight.
 */
export interface PayloadCopy {
  srcFd: number;
  srcPayload: number;
  dstFd: number;
  dstPayload: number;
  sizeBytes: number;
  oldKey: GuardedKey | null;
  newKey: GuardedKey | null;
  /** Called with the fraction done (0..1) as chunks complete. */
  onProgress?: (fraction: number) => void;
}

const CHUNK = 1 << 20;
const IN_FLIGHT = 4;

/** The data extents of [start, end) of a file, aligned out to whole sectors relative to `start`. */
export function dataExtents(fd: number, start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let pos = start;
  while (pos < end) {
    const data = seekExtent(fd, pos, 'data');
    if (data < 0 || data >= end) break;
    const hole = Math.min(seekExtent(fd, data, 'hole'), end);
    const a = start + Math.floor((data - start) / SECTOR) * SECTOR;
    const b = start + Math.ceil((hole - start) / SECTOR) * SECTOR;
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, Math.min(b, end)]);
    pos = hole;
  }
  return out;
}

/** Returns the bytes of data written to the destination. */
export async function copyPayload(c: PayloadCopy): Promise<number> {
  const extents = dataExtents(c.srcFd, c.srcPayload, c.srcPayload + c.sizeBytes);
  const chunks: [number, number][] = [];
  for (const [a, b] of extents) for (let o = a; o < b; o += CHUNK) chunks.push([o, Math.min(CHUNK, b - o)]);
  const total = chunks.reduce((n, [, len]) => n + len, 0);
  let done = 0;
  let written = 0;
  let next = 0;
  const worker = async () => {
    const scratch = Buffer.alloc(CHUNK);
    while (next < chunks.length) {
      const [off, len] = chunks[next++]!;
      const rel = off - c.srcPayload;
      // (not `written += await …`: that reads `written` before the await and loses other workers' counts)
      const n = await recryptSectors(c.oldKey, c.newKey, c.srcFd, off, c.dstFd, c.dstPayload + rel, rel / SECTOR, scratch.subarray(0, len));
      written += n;
      done += len;
      c.onProgress?.(total ? done / total : 1);
    }
    scratch.fill(0);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, Math.max(1, chunks.length)) }, worker));
  c.onProgress?.(1);
  return written;
}
