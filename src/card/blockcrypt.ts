import type { KmsClient } from '../kms/client/index.js';
import { SECTOR_SIZE, xtsDecryptAsync, xtsEncryptAsync } from '../native/index.js';
import { decodeHeader } from '../volume/luks2.js';
import { unwrapVerifiedKey } from './keys.js';

/**
 * One 512 KiB block of an encrypted snapshot, through its data key, for the
 * EBS direct APIs: each call unwraps the snapshot's data key through the KMS
 * (so every block read or written is authorized by the KMS, and a disabled
 * key refuses it with the KMS's error), checks it against the header's
 * digest, runs AES-XTS in the native engine exactly as the card does (IV: the
 * sector's position in the image's data area), and zeroizes the key. As in
 * an image, a sector whose ciphertext is all zeros was never written and
 * reads as zeros, and a sector of zeros is stored as zeros.
 */
const ZERO_SECTOR = Buffer.alloc(SECTOR_SIZE);

/** Zero the sectors of `out` whose sector in `like` is all zeros. */
function keepZeroSectors(like: Uint8Array, out: Buffer): void {
  for (let o = 0; o < like.length; o += SECTOR_SIZE)
    if (Buffer.from(like.buffer, like.byteOffset + o, SECTOR_SIZE).equals(ZERO_SECTOR)) out.fill(0, o, o + SECTOR_SIZE);
}

async function withKey<T>(kms: KmsClient, header: Buffer, what: string, use: (key: Awaited<ReturnType<typeof unwrapVerifiedKey>>) => Promise<T>): Promise<T> {
  const h = decodeHeader(header, what);
  const key = await unwrapVerifiedKey(kms, h, what);
  try {
    return await use(key);
  } finally {
    key.zeroize();
  }
}

/** The ciphertext of block `index` of the snapshot whose header is `header`, from its plaintext. */
export function encryptBlock(kms: KmsClient, header: Buffer, what: string, index: number, plain: Uint8Array, blockSize: number): Promise<Buffer> {
  return withKey(kms, header, what, async (key) => {
    const out = Buffer.alloc(plain.length);
    await xtsEncryptAsync(key, plain, out, (index * blockSize) / SECTOR_SIZE, SECTOR_SIZE);
    keepZeroSectors(plain, out);
    return out;
  });
}

/** The plaintext of block `index` from its ciphertext. */
export function decryptBlock(kms: KmsClient, header: Buffer, what: string, index: number, cipher: Uint8Array, blockSize: number): Promise<Buffer> {
  return withKey(kms, header, what, async (key) => {
    const out = Buffer.alloc(cipher.length);
    await xtsDecryptAsync(key, cipher, out, (index * blockSize) / SECTOR_SIZE, SECTOR_SIZE);
    keepZeroSectors(cipher, out);
    return out;
  });
}

/** A snapshot's data key held (in guarded memory) for many blocks: unwrapped once through the KMS, zeroized by close(). */
export interface BlockKey {
  encrypt(index: number, plain: Uint8Array): Promise<Buffer>;
  decrypt(index: number, cipher: Uint8Array): Promise<Buffer>;
  close(): void;
}

/**
 * Open the data key of the snapshot whose header is `header` through `kms`
 * (authorized once, for a whole transfer: a snapshot moving between homes is
 * one use of its key, as CopySnapshot is). Refused with the KMS's error.
 */
export async function openBlockKey(kms: KmsClient, header: Buffer, what: string, blockSize: number): Promise<BlockKey> {
  const h = decodeHeader(header, what);
  const key = await unwrapVerifiedKey(kms, h, what);
  const run = async (index: number, data: Uint8Array, enc: boolean) => {
    const out = Buffer.alloc(data.length);
    await (enc ? xtsEncryptAsync : xtsDecryptAsync)(key, data, out, (index * blockSize) / SECTOR_SIZE, SECTOR_SIZE);
    keepZeroSectors(data, out);
    return out;
  };
  return { encrypt: (i, d) => run(i, d, true), decrypt: (i, d) => run(i, d, false), close: () => key.zeroize() };
}
