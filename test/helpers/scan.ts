import fs from 'node:fs';

/** Stream a (possibly very large) file looking for `needle`, without loading it whole. */
export function fileContains(file: string, needle: Buffer): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(8 << 20);
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return false;
      const hay = Buffer.concat([carry, chunk.subarray(0, n)]);
      if (hay.includes(needle)) return true;
      carry = hay.subarray(Math.max(0, hay.length - needle.length + 1));
    }
  } finally {
    fs.closeSync(fd);
  }
}
