/**
 * Pure sector and offset arithmetic for the volume image: where the payload
 * starts, which sectors a byte range touches, and which of those are partial
 * (needing read-modify-write). No I/O, no crypto; tested exhaustively.
 */
export const SECTOR_SIZE = 4096;

export interface SectorSpan {
  /** First payload sector touched. */
  firstSector: number;
  /** Number of sectors touched. */
  count: number;
  /** Byte offset of the request within the first sector. */
  headSkip: number;
  /** Bytes of the last sector after the request's end (0 when it ends on a boundary). */
  tailSkip: number;
}

/** The sectors that bytes [offset, offset + length) of the payload touch. Precondition: length > 0. */
export function span(offset: number, length: number, sectorSize = SECTOR_SIZE): SectorSpan {
  const firstSector = Math.floor(offset / sectorSize);
  const end = offset + length;
  const lastSector = Math.floor((end - 1) / sectorSize);
  return {
    firstSector,
    count: lastSector - firstSector + 1,
    headSkip: offset - firstSector * sectorSize,
    tailSkip: (lastSector + 1) * sectorSize - end,
  };
}

/** True when the request covers whole sectors only (no read-modify-write needed). */
export function isAligned(offset: number, length: number, sectorSize = SECTOR_SIZE): boolean {
  return offset % sectorSize === 0 && length % sectorSize === 0;
}

/** Clip a request to the volume: bytes available from `offset` (0 at or past the end). */
export function clip(offset: number, length: number, volumeBytes: number): number {
  if (offset >= volumeBytes) return 0;
  return Math.min(length, volumeBytes - offset);
}

/** Byte offset in the image file of payload sector `sector`. */
export function imageOffset(payloadOffset: number, sector: number, sectorSize = SECTOR_SIZE): number {
  return payloadOffset + sector * sectorSize;
}

export const GiB = 1024 ** 3;
