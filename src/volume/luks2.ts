import crypto from 'node:crypto';
import fs from 'node:fs';
import { ServiceError } from '../errors.js';
import { openPrivate } from '../home.js';
import { SECTOR_SIZE } from './offsets.js';

/**
 * The LUKS2 on-disk header (docs/format.md), written so that `cryptsetup
 * luksDump` accepts it and `cryptsetup luksAddKey --volume-key-file` can add a
 * recovery passphrase with the data key. Two header copies, each a 4096-byte
 * binary header and a 12 KiB JSON area with a SHA-256 checksum; zero keyslots;
 * a pbkdf2 digest of the volume key; one aes-xts-plain64 segment with
 * 4096-byte sectors; a `kmsvol` token carrying the wrapped key.
 */
export const HDR_SIZE = 16384;
export const BIN_HDR_SIZE = 4096;
export const JSON_SIZE = HDR_SIZE - BIN_HDR_SIZE;
/** Keyslot area, kept free for `cryptsetup luksAddKey`; the payload starts at 16 MiB as cryptsetup's default. */
export const KEYSLOTS_SIZE = 16 * 1024 * 1024 - 2 * HDR_SIZE;
export const PAYLOAD_OFFSET = 2 * HDR_SIZE + KEYSLOTS_SIZE;
export const DIGEST_ITERATIONS = 1000;
export const CIPHER = 'aes-xts-plain64';

const MAGIC_PRIMARY = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]); // "LUKS\xba\xbe"
const MAGIC_SECONDARY = Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]); // "SKUL\xba\xbe"
const OFF = { version: 6, hdrSize: 8, seqid: 16, label: 24, csumAlg: 72, salt: 104, uuid: 168, subsystem: 208, hdrOffset: 256, csum: 448 } as const;

/** The kmsvol token: everything needed to get the volume key back from the KMS. */
export interface KmsvolToken {
  volumeId: string;
  keyArn: string;
  /** The wrapped data key (the KMS ciphertext blob), base64. */
  ciphertextBlob: string;
  encryptionContext: Record<string, string>;
}

export interface KeyDigest {
  salt: Buffer;
  digest: Buffer;
  iterations: number;
}

export interface Luks2Header {
  uuid: string;
  label: string;
  seqid: number;
  token: KmsvolToken;
  digest: KeyDigest;
  payloadOffset: number;
  sectorSize: number;
  cipher: string;
}

export class CorruptImageError extends ServiceError {
  constructor(message: string) {
    super('InvalidVolume.Corrupt', message);
  }
}

function metadata(h: Omit<Luks2Header, 'seqid'>): Buffer {
  const json = {
    keyslots: {},
    tokens: {
      '0': {
        type: 'kmsvol',
        keyslots: [],
        volume_id: h.token.volumeId,
        key_arn: h.token.keyArn,
        ciphertext_blob: h.token.ciphertextBlob,
        encryption_context: h.token.encryptionContext,
      },
    },
    segments: {
      '0': { type: 'crypt', offset: String(h.payloadOffset), size: 'dynamic', iv_tweak: '0', encryption: h.cipher, sector_size: h.sectorSize },
    },
    digests: {
      '0': {
        type: 'pbkdf2',
        keyslots: [],
        segments: ['0'],
        hash: 'sha256',
        iterations: h.digest.iterations,
        salt: h.digest.salt.toString('base64'),
        digest: h.digest.digest.toString('base64'),
      },
    },
    config: { json_size: String(JSON_SIZE), keyslots_size: String(KEYSLOTS_SIZE) },
  };
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  if (text.length >= JSON_SIZE) throw new Error(`LUKS2 metadata is ${text.length} bytes; the JSON area holds ${JSON_SIZE - 1}`);
  return text;
}

function binaryHeader(magic: Buffer, seqid: number, h: Pick<Luks2Header, 'label' | 'uuid'>, hdrOffset: number): Buffer {
  const b = Buffer.alloc(BIN_HDR_SIZE);
  magic.copy(b, 0);
  b.writeUInt16BE(2, OFF.version);
  b.writeBigUInt64BE(BigInt(HDR_SIZE), OFF.hdrSize);
  b.writeBigUInt64BE(BigInt(seqid), OFF.seqid);
  b.write(h.label.slice(0, 47), OFF.label, 'ascii');
  b.write('sha256', OFF.csumAlg, 'ascii');
  crypto.randomFillSync(b, OFF.salt, 64);
  b.write(h.uuid, OFF.uuid, 'ascii');
  b.write('kmsvol', OFF.subsystem, 'ascii');
  b.writeBigUInt64BE(BigInt(hdrOffset), OFF.hdrOffset);
  return b;
}

/** Both header copies (2 x 16 KiB), ready to write at offset 0 of the image. */
export function encodeHeader(h: Omit<Luks2Header, 'seqid'>, seqid = 1): Buffer {
  const json = metadata(h);
  const out = Buffer.alloc(2 * HDR_SIZE);
  for (const [i, magic] of [MAGIC_PRIMARY, MAGIC_SECONDARY].entries()) {
    const area = out.subarray(i * HDR_SIZE, (i + 1) * HDR_SIZE);
    binaryHeader(magic, seqid, h, i * HDR_SIZE).copy(area, 0);
    json.copy(area, BIN_HDR_SIZE);
    crypto.createHash('sha256').update(area).digest().copy(area, OFF.csum);
  }
  return out;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return s.toString('ascii', 0, nul < 0 ? len : nul);
}

type Json = Record<string, unknown>;

/** A JSON object (not an array, not null). */
function isObject(v: unknown): v is Json {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function isSafeInteger(v: unknown): v is number {
  return Number.isSafeInteger(v);
}

function checkCopy(area: Buffer, magic: Buffer, where: string): string | Luks2Header {
  if (area.length < HDR_SIZE) return `${where}: truncated (${area.length} of ${HDR_SIZE} bytes)`;
  if (!area.subarray(0, 6).equals(magic)) return `${where}: no LUKS2 magic`;
  if (area.readUInt16BE(OFF.version) !== 2) return `${where}: version ${area.readUInt16BE(OFF.version)} is not LUKS2`;
  if (area.readBigUInt64BE(OFF.hdrSize) !== BigInt(HDR_SIZE)) return `${where}: header size ${area.readBigUInt64BE(OFF.hdrSize)} is not ${HDR_SIZE}`;
  const stored = Buffer.from(area.subarray(OFF.csum, OFF.csum + 32));
  const zeroed = Buffer.from(area);
  zeroed.fill(0, OFF.csum, OFF.csum + 64);
  if (!crypto.createHash('sha256').update(zeroed).digest().equals(stored)) return `${where}: checksum mismatch`;
  const jsonText = cstr(area, BIN_HDR_SIZE, JSON_SIZE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(jsonText);
  } catch {
    return `${where}: metadata is not JSON`;
  }
  if (!parsed || typeof parsed !== 'object') return `${where}: metadata is not a JSON object`;
  const j = parsed as Json;
  // As before the types were written down: tokens, segments and digests may be any object, arrays too.
  const values = (o: unknown): unknown[] => (o && typeof o === 'object' ? Object.values(o) : []);
  const token = values(j.tokens).find((t): t is Json => isObject(t) && t.type === 'kmsvol');
  const seg = j.segments && typeof j.segments === 'object' ? (j.segments as Json)['0'] : undefined;
  const dig = values(j.digests).find((d): d is Json => isObject(d) && Array.isArray(d.segments) && d.segments.includes('0'));
  if (!token || !isObject(seg) || !dig) return `${where}: no kmsvol token, segment 0 or digest`;
  // Precondition: every field has its type (a header whose checksum was recomputed can hold anything).
  const str = (v: unknown): v is string => typeof v === 'string';
  const b64 = (v: unknown): v is string => str(v) && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
  const ctx = token.encryption_context;
  if (!str(token.volume_id) || !str(token.key_arn) || !b64(token.ciphertext_blob))
    return `${where}: the kmsvol token's volume_id, key_arn or ciphertext_blob is not a string`;
  if (!isObject(ctx) || !Object.values(ctx).every(str)) return `${where}: the kmsvol token's encryption_context is not a map of strings`;
  if (!str(seg.offset) || !/^\d{1,15}$/.test(seg.offset) || Number(seg.offset) < 2 * HDR_SIZE)
    return `${where}: segment 0's offset ${JSON.stringify(seg.offset)} is not a byte offset past the headers`;
  if (!str(seg.encryption) || !isSafeInteger(seg.sector_size)) return `${where}: segment 0's encryption or sector_size is not valid`;
  if (!b64(dig.salt) || !b64(dig.digest) || !isSafeInteger(dig.iterations) || dig.iterations < 1)
    return `${where}: digest 0's salt, digest or iterations is not valid`;
  return {
    uuid: cstr(area, OFF.uuid, 40),
    label: cstr(area, OFF.label, 48),
    seqid: Number(area.readBigUInt64BE(OFF.seqid)),
    token: { volumeId: token.volume_id, keyArn: token.key_arn, ciphertextBlob: token.ciphertext_blob, encryptionContext: ctx as Record<string, string> },
    digest: { salt: Buffer.from(dig.salt, 'base64'), digest: Buffer.from(dig.digest, 'base64'), iterations: dig.iterations },
    payloadOffset: Number(seg.offset),
    sectorSize: seg.sector_size,
    cipher: seg.encryption,
  };
}

/**
 * Parse the first 32 KiB of an image. The primary copy is used when valid, the
 * secondary otherwise (as cryptsetup does); both bad is CorruptImageError
 * naming what is wrong with each.
 */
export function decodeHeader(head: Buffer, image = 'the image'): Luks2Header {
  const a = checkCopy(head.subarray(0, HDR_SIZE), MAGIC_PRIMARY, 'primary header');
  const b = checkCopy(head.subarray(HDR_SIZE, 2 * HDR_SIZE), MAGIC_SECONDARY, 'secondary header');
  const ok = [a, b].filter((x): x is Luks2Header => typeof x !== 'string').sort((x, y) => y.seqid - x.seqid)[0];
  if (!ok) throw new CorruptImageError(`${image} has no valid LUKS2 header (${a}; ${b}). Restore it from a snapshot or a backup.`);
  if (ok.cipher !== CIPHER || ok.sectorSize !== SECTOR_SIZE) {
    throw new CorruptImageError(`${image} uses ${ok.cipher} with ${ok.sectorSize}-byte sectors; kmsvol reads ${CIPHER} with ${SECTOR_SIZE}-byte sectors.`);
  }
  return ok;
}

/** Open a volume or snapshot image; a missing one is InvalidVolume.Corrupt, saying what to do. */
export function openImage(file: string, mode: 'r' | 'r+'): number {
  try {
    return openPrivate(file, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new CorruptImageError(`The image file ${file} is missing. Restore it from a backup, or delete the volume and create it again from a snapshot.`);
  }
}

/**
 * Precondition: an image holds its header and the whole payload. A shorter
 * one (truncated, or copied in part) would read back as zeros, so it is refused.
 */
export function checkImageLength(file: string, fd: number, payloadOffset: number, sizeBytes: number): void {
  const have = fs.fstatSync(fd).size;
  if (have < payloadOffset + sizeBytes) {
    throw new CorruptImageError(
      `The image file ${file} is ${have} bytes; it must be at least ${payloadOffset + sizeBytes} (header ${payloadOffset} + volume ${sizeBytes}). It was truncated or copied in part: restore it from a backup or a snapshot.`,
    );
  }
}

/** Read and decode the header of an image file. */
export function readImageHeader(file: string): Luks2Header {
  const head = Buffer.alloc(2 * HDR_SIZE);
  const fd = openImage(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  return decodeHeader(head.subarray(0, n), file);
}
