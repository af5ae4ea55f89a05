import { KmsErrors } from './errors.js';

/**
 * The ciphertext blob, versioned and self-describing (docs/format.md):
 *
 *   off  len  field
 *   0    2    magic "kv" (0x6b 0x76)
 *   2    1    version (1)
 *   3    16   store id (which KMS store produced it)
 *   19   1    key id length L (1..64)
 *   20   L    key id (ASCII)
 *   20+L 32   key material id
 *   52+L 12   AES-GCM nonce
 *   64+L n    ciphertext
 *   end  16   GCM tag
 *
 * The whole header (bytes 0 .. 64+L) is AAD, followed by the encoded encryption
 * context, so Decrypt needs no KeyId and no header byte can be changed unnoticed.
 */
export const BLOB_MAGIC = 0x6b76;
export const BLOB_VERSION = 1;
export const STORE_ID_BYTES = 16;
export const MATERIAL_ID_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const FIXED_HEADER = 2 + 1 + STORE_ID_BYTES + 1;

export interface BlobHeader {
  storeId: Buffer;
  keyId: string;
  materialId: Buffer;
  nonce: Buffer;
}

export interface ParsedBlob extends BlobHeader {
  /** The header bytes, used as AAD. */
  header: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function encodeHeader(h: BlobHeader): Buffer {
  const id = Buffer.from(h.keyId, 'ascii');
  const out = Buffer.alloc(FIXED_HEADER + id.length + MATERIAL_ID_BYTES + NONCE_BYTES);
  let o = out.writeUInt16BE(BLOB_MAGIC, 0);
  o = out.writeUInt8(BLOB_VERSION, o);
  o += h.storeId.copy(out, o);
  o = out.writeUInt8(id.length, o);
  o += id.copy(out, o);
  o += h.materialId.copy(out, o);
  h.nonce.copy(out, o);
  return out;
}

/** Parse a blob; any structural problem is InvalidCiphertextException. */
export function parseBlob(blob: Uint8Array): ParsedBlob {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = KmsErrors.invalidCiphertext;
  if (b.length < FIXED_HEADER || b.readUInt16BE(0) !== BLOB_MAGIC || b[2] !== BLOB_VERSION) throw bad();
  const idLen = b[FIXED_HEADER - 1]!;
  const headerLen = FIXED_HEADER + idLen + MATERIAL_ID_BYTES + NONCE_BYTES;
  if (idLen === 0 || idLen > 64 || b.length < headerLen + TAG_BYTES + 1) throw bad();
  let o = 3;
  const storeId = b.subarray(o, (o += STORE_ID_BYTES));
  o += 1;
  const keyId = b.toString('ascii', o, (o += idLen));
  if (!/^(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$/.test(keyId)) throw bad();
  const materialId = b.subarray(o, (o += MATERIAL_ID_BYTES));
  const nonce = b.subarray(o, (o += NONCE_BYTES));
  return {
    storeId,
    keyId,
    materialId,
    nonce,
    header: b.subarray(0, headerLen),
    ciphertext: b.subarray(headerLen, b.length - TAG_BYTES),
    tag: b.subarray(b.length - TAG_BYTES),
  };
}

export type EncryptionContext = Record<string, string>;

/** With the u flag a surrogate pair is one code point, so this matches only a surrogate that has no partner (in linear time). */
export const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Unambiguous encoding of an encryption context: a u32 pair count, then for each
 * pair sorted by key bytes, u32 length + UTF-8 key, u32 length + UTF-8 value.
 * So {"ab":"c"} and {"a":"bc"} encode differently and cannot decrypt each other's blobs.
 */
export function encodeContext(ctx: EncryptionContext | undefined): Buffer {
  // Precondition: only well-formed text is encoded; UTF-8 would turn every lone surrogate into the same U+FFFD, and then two contexts into one.
  for (const [k, v] of Object.entries(ctx ?? {}))
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v))
      throw KmsErrors.validation('An encryption context key or value holds an unpaired UTF-16 surrogate; it must be valid Unicode text.');
  const pairs = Object.entries(ctx ?? {}).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u32(pairs.length)];
  for (const [k, v] of pairs) parts.push(u32(k.length), k, u32(v.length), v);
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
