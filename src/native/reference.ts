import crypto from 'node:crypto';

/**
 * The reference twin of the native engine: node:crypto's aes-256-xts, one
 * sector at a time, with dm-crypt's plain64 IV (sector number in 512-byte
 * units, little-endian). Used by the differential tests and the benchmark.
 */
export function plain64Iv(sector: number, sectorSize: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(BigInt(sector) * BigInt(sectorSize / 512));
  return iv;
}

export function referenceXts(key: Buffer, src: Buffer, firstSector: number, sectorSize: number, encrypt: boolean): Buffer {
  const out = Buffer.alloc(src.length);
  for (let off = 0, s = firstSector; off < src.length; off += sectorSize, s++) {
    const iv = plain64Iv(s, sectorSize);
    const c = encrypt ? crypto.createCipheriv('aes-256-xts', key, iv) : crypto.createDecipheriv('aes-256-xts', key, iv);
    c.update(src.subarray(off, off + sectorSize)).copy(out, off);
    c.final();
  }
  return out;
}
