import fs from 'node:fs';
import { BLOCK_SIZE, blockHash, dataBlocks, isZero, readHeaderArea, readImageBlock, writeBlock } from './blocks.js';
import { readImageHeader } from './luks2.js';
import { GiB } from './offsets.js';

/**
 * A whole image as a snapshot of the block store: its header area and the
 * blocks of its data area that hold anything, each stored (once) in the
 * store. Used where an image exists and a snapshot of it is wanted in one
 * go and synchronously: the registry's migration of whole-image snapshots
 * (version 2 -> 3), whose transaction holds the registry's write lock while
 * the blocks are written. Returns null when the image file is missing.
 */
export interface ConvertedImage {
  header: Buffer | null;
  payloadOffset: number;
  blocks: { block_index: number; hash: string }[];
}

export function convertImage(root: string, file: string, encrypted: boolean, volumeSizeGiB: number): ConvertedImage | null {
  if (!fs.existsSync(file)) return null;
  const payloadOffset = encrypted ? readImageHeader(file).payloadOffset : 0;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const header = encrypted ? readHeaderArea(fd, payloadOffset) : null;
    const buf = Buffer.alloc(BLOCK_SIZE);
    const blocks: ConvertedImage['blocks'] = [];
    const size = volumeSizeGiB * GiB;
    for (const i of dataBlocks(fd, payloadOffset, size)) {
      readImageBlock(fd, payloadOffset, i, buf);
      if (isZero(buf)) continue;
      const hash = blockHash(buf);
      writeBlock(root, hash, buf);
      blocks.push({ block_index: i, hash });
    }
    return { header, payloadOffset, blocks };
  } finally {
    fs.closeSync(fd);
  }
}
