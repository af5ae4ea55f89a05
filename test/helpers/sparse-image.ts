import fs from 'node:fs';

/**
 * A committed image in a compact form: its size and the 4 KiB blocks that are
 * not all zero. Materializing it writes a sparse file identical to the original.
 */
export interface SparseImage {
  size: number;
  blocks: [offset: number, base64: string][];
}

const BLOCK = 4096;

export function packImage(file: string): SparseImage {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const blocks: SparseImage['blocks'] = [];
  const buf = Buffer.alloc(1 << 20);
  for (let pos = 0; pos < size; pos += buf.length) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    for (let o = 0; o < n; o += BLOCK) {
      const b = buf.subarray(o, Math.min(o + BLOCK, n));
      if (b.some((x) => x !== 0)) blocks.push([pos + o, b.toString('base64')]);
    }
  }
  fs.closeSync(fd);
  return { size, blocks };
}

export function unpackImage(img: SparseImage, file: string): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    for (const [off, b64] of img.blocks) {
      const b = Buffer.from(b64, 'base64');
      fs.writeSync(fd, b, 0, b.length, off);
    }
    fs.ftruncateSync(fd, img.size);
  } finally {
    fs.closeSync(fd);
  }
}
