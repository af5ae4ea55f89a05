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
/** The digest's salt: LUKS_SALTSIZE in cryptsetup's luks2_digest_pbkdf2.c. */
export const DIGEST_SALT_SIZE = 32;
/** The shortest digest LUKS2 stores (LUKS_DIGESTSIZE, SHA-1's length); any other length must be the hash's own. */
export const DIGEST_MIN_SIZE = 20;
/** The digest hashes attach can check (the native engine's PBKDF2), with their output length. kmsvol writes sha256, as cryptsetup does by default. */
export const DIGEST_HASHES: Readonly<Record<string, number>> = { sha256: 32 };
/**
 * The most PBKDF2 iterations a digest may ask for. cryptsetup calibrates a
 * digest to 125 ms (about 430,000 iterations of SHA-256 on a 2-core test
 * machine that does 3.5 million a second); 4 million is about 1.2 s there, so a
 * hostile header cannot make attach spin for minutes.
 */
export const DIGEST_MAX_ITERATIONS = 4_000_000;

const MAGIC_PRIMARY = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]); // "LUKS\xba\xbe"
const MAGIC_SECONDARY = Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]); // "SKUL\xba\xbe"
const OFF = { version: 6, hdrSize: 8, seqid: 16, label: 24, csumAlg: 72, salt: 104, uuid: 168, subsystem: 208, hdrOffset: 256, csum: 448 } as const;

/** The token version this kmsvol writes and reads (docs/format.md); a token without one is version 0 (no keyslot). */
export const TOKEN_VERSION = 1;

/** Where the plugin finds the KMS: the embedded KMS of a home, a `kmsvol kms serve` endpoint, or AWS KMS itself. */
export interface KmsLocator {
  home?: string;
  endpoint?: string;
  aws?: boolean;
}

/** The kmsvol token: everything needed to get the volume key back from the KMS. */
export interface KmsvolToken {
  volumeId: string;
  keyArn: string;
  /** The wrapped data key (the KMS ciphertext blob), base64. */
  ciphertextBlob: string;
  encryptionContext: Record<string, string>;
  /** 0 (absent: made before keyslots) or TOKEN_VERSION. */
  version?: number;
  /** Version 1: the wrapped 32-byte keyslot secret (KMS ciphertext blob, base64), under the same key and context. */
  secretBlob?: string;
  /** Version 1: the KMS's region (the key ARN's) and where the KMS is. */
  region?: string;
  kms?: KmsLocator;
  /** The LUKS2 keyslots the secret opens. */
  keyslots?: string[];
}

export interface KeyDigest {
  /** The PBKDF2 hash, one of DIGEST_HASHES. */
  hash: string;
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
  /** Segment 0's size in bytes, or null for "dynamic" (to the end of the image). */
  segmentSize: number | null;
  sectorSize: number;
  cipher: string;
  /** The metadata as read (keyslots and all), for a rewrite that keeps what stock tools added. */
  raw?: Record<string, unknown>;
}

export class CorruptImageError extends ServiceError {
  constructor(message: string) {
    super('InvalidVolume.Corrupt', message);
  }
}

/** The kmsvol token's JSON (docs/format.md): version 0 as the landed format wrote it, version 1 with the keyslot secret and the KMS's whereabouts. */
export function tokenJson(t: KmsvolToken): Record<string, unknown> {
  if (!t.version)
    return {
      type: 'kmsvol',
      keyslots: [],
      volume_id: t.volumeId,
      key_arn: t.keyArn,
      ciphertext_blob: t.ciphertextBlob,
      encryption_context: t.encryptionContext,
    };
  return {
    type: 'kmsvol',
    keyslots: t.keyslots ?? [],
    version: t.version,
    volume_id: t.volumeId,
    key_arn: t.keyArn,
    region: t.region,
    kms: t.kms,
    ciphertext_blob: t.ciphertextBlob,
    secret_blob: t.secretBlob,
    encryption_context: t.encryptionContext,
  };
}

/** The metadata of a new image with no keyslot (keyslot.ts adds one). */
export function newMetadata(h: Omit<Luks2Header, 'seqid'>): Record<string, unknown> {
  return {
    keyslots: {},
    tokens: { '0': tokenJson(h.token) },
    segments: {
      '0': {
        type: 'crypt',
        offset: String(h.payloadOffset),
        size: h.segmentSize === null ? 'dynamic' : String(h.segmentSize),
        iv_tweak: '0',
        encryption: h.cipher,
        sector_size: h.sectorSize,
      },
    },
    digests: {
      '0': {
        type: 'pbkdf2',
        keyslots: [],
        segments: ['0'],
        hash: h.digest.hash,
        iterations: h.digest.iterations,
        salt: h.digest.salt.toString('base64'),
        digest: h.digest.digest.toString('base64'),
      },
    },
    config: { json_size: String(JSON_SIZE), keyslots_size: String(KEYSLOTS_SIZE) },
  };
}

function metadataText(json: Record<string, unknown>): Buffer {
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
  return encodeMetadata(newMetadata(h), h, seqid);
}

/** Both header copies holding this metadata (as read, or as newMetadata made it). */
export function encodeMetadata(j: Record<string, unknown>, h: Pick<Luks2Header, 'label' | 'uuid'>, seqid: number): Buffer {
  const json = metadataText(j);
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

/** A decimal string as LUKS2 writes offsets and sizes ("numbered" in cryptsetup), within the safe integers. */
function decimal(v: unknown): number | undefined {
  return typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** Strict base64 (what cryptsetup's decoder takes): the decoded bytes, or undefined. */
function base64(v: unknown): Buffer | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return undefined;
  const b = Buffer.from(v, 'base64');
  return b.toString('base64') === v ? b : undefined;
}

/**
 * The area checks of LUKS2 (cryptsetup's hdr_validate_config and
 * hdr_validate_areas), for one copy's metadata: json_size is the JSON area's
 * size; keyslots_size is whole 4 KiB blocks between the headers and the
 * payload; every keyslot area lies in it, non-empty, and no two overlap.
 * Returns what is wrong, or the end of the keyslot area.
 */
function checkAreas(j: Json, where: string): string | number {
  const config = isObject(j.config) ? j.config : {};
  // Precondition: json_size is the JSON area's size (the header size less the binary header).
  if (config.json_size !== String(JSON_SIZE)) return `${where}: config.json_size ${JSON.stringify(config.json_size)} is not the JSON area's ${JSON_SIZE}`;
  const keyslotsSize = decimal(config.keyslots_size);
  // Precondition: keyslots_size is whole 4096-byte blocks.
  if (keyslotsSize === undefined || keyslotsSize % 4096 !== 0)
    return `${where}: config.keyslots_size ${JSON.stringify(config.keyslots_size)} is not a multiple of 4096 bytes`;
  const end = 2 * HDR_SIZE + keyslotsSize;
  if (!isObject(j.keyslots)) return `${where}: keyslots is not an object`;
  const areas: [string, number, number][] = [];
  for (const [id, slot] of Object.entries(j.keyslots)) {
    const area = isObject(slot) && isObject(slot.area) ? slot.area : {};
    const offset = decimal(area.offset);
    const size = decimal(area.size);
    // Precondition: a keyslot area lies between the headers and the end of the keyslot area, and is not empty.
    if (offset === undefined || size === undefined || size === 0 || offset < 2 * HDR_SIZE || offset + size > end)
      return `${where}: keyslot ${id}'s area (offset ${JSON.stringify(area.offset)}, size ${JSON.stringify(area.size)}) is not inside the keyslot area [${2 * HDR_SIZE}, ${end})`;
    areas.push([id, offset, offset + size]);
  }
  // Precondition: no two keyslot areas overlap.
  for (const [a, aFrom, aTo] of areas)
    for (const [b, bFrom, bTo] of areas) if (a !== b && aFrom < bTo && bFrom < aTo) return `${where}: keyslot areas ${a} and ${b} overlap`;
  return end;
}

/** Segment 0, as kmsvol serves it; returns what is wrong, or its offset and size (null: dynamic). */
function checkSegment(j: Json, keyslotsEnd: number, where: string): string | { offset: number; size: number | null; seg: Json } {
  const segs = isObject(j.segments) ? j.segments : {};
  const seg = segs['0'];
  if (!isObject(seg)) return `${where}: no segment 0`;
  // Precondition: one segment (kmsvol serves segment 0; a second would be mapped by cryptsetup and not by kmsvol).
  if (Object.keys(segs).length !== 1) return `${where}: ${Object.keys(segs).length} segments; a kmsvol image has one`;
  if (seg.type !== 'crypt' || isObject(seg.integrity)) return `${where}: segment 0 is not a plain crypt segment`;
  const offset = decimal(seg.offset);
  // Precondition: the segment starts at a sector boundary past the headers and the keyslot area.
  if (offset === undefined || offset < keyslotsEnd || offset % SECTOR_SIZE !== 0)
    return `${where}: segment 0's offset ${JSON.stringify(seg.offset)} is not a ${SECTOR_SIZE}-byte aligned offset past the headers and keyslot area (${keyslotsEnd})`;
  const size = seg.size === 'dynamic' ? null : decimal(seg.size);
  // Precondition: the segment's size is "dynamic" or a positive whole number of sectors.
  if (size === undefined || size === 0 || (size !== null && size % SECTOR_SIZE !== 0))
    return `${where}: segment 0's size ${JSON.stringify(seg.size)} is not "dynamic" or a positive multiple of ${SECTOR_SIZE} bytes`;
  // Precondition: the IV starts at sector 0 (iv_tweak "0"), as kmsvol computes it.
  if (seg.iv_tweak !== '0') return `${where}: segment 0's iv_tweak ${JSON.stringify(seg.iv_tweak)} is not "0"`;
  if (typeof seg.encryption !== 'string' || !isSafeInteger(seg.sector_size)) return `${where}: segment 0's encryption or sector_size is not valid`;
  return { offset, size, seg };
}

/** The pbkdf2 digest assigned to segment 0, with the bounds attach can check in (DIGEST_*); returns what is wrong, or the digest. */
function checkDigest(j: Json, where: string): string | KeyDigest {
  const all = isObject(j.digests) ? Object.values(j.digests) : [];
  const mine = all.filter((d): d is Json => isObject(d) && Array.isArray(d.segments) && d.segments.includes('0'));
  const d = mine[0];
  if (mine.length !== 1 || !d) return `${where}: ${mine.length} digests are assigned to segment 0; LUKS2 needs exactly one`;
  const hashLen = typeof d.hash === 'string' && Object.hasOwn(DIGEST_HASHES, d.hash) ? DIGEST_HASHES[d.hash] : undefined;
  // Precondition: the digest is pbkdf2 over a hash in the allow-list.
  if (d.type !== 'pbkdf2' || hashLen === undefined || typeof d.hash !== 'string')
    return `${where}: digest of segment 0 is ${JSON.stringify(d.type)} over ${JSON.stringify(d.hash)}; kmsvol checks pbkdf2 over ${Object.keys(DIGEST_HASHES).join(', ')}`;
  const salt = base64(d.salt);
  const digest = base64(d.digest);
  // Precondition: the salt is 32 bytes and the digest 20 bytes or the hash's length (cryptsetup's PBKDF2_digest_verify).
  if (!salt || salt.length !== DIGEST_SALT_SIZE || !digest || (digest.length !== DIGEST_MIN_SIZE && digest.length !== hashLen))
    return `${where}: digest of segment 0 needs a ${DIGEST_SALT_SIZE}-byte salt and a ${DIGEST_MIN_SIZE}- or ${hashLen}-byte digest, in base64`;
  // Precondition: iterations are 1..DIGEST_MAX_ITERATIONS, so a hostile header cannot make attach spin.
  if (!isSafeInteger(d.iterations) || d.iterations < 1 || d.iterations > DIGEST_MAX_ITERATIONS)
    return `${where}: digest of segment 0 asks for ${JSON.stringify(d.iterations)} iterations; kmsvol checks 1 to ${DIGEST_MAX_ITERATIONS}`;
  return { hash: d.hash, salt, digest, iterations: d.iterations };
}

function checkCopy(area: Buffer, magic: Buffer, where: string, hdrOffset: number): string | Luks2Header {
  if (area.length < HDR_SIZE) return `${where}: truncated (${area.length} of ${HDR_SIZE} bytes)`;
  if (!area.subarray(0, 6).equals(magic)) return `${where}: no LUKS2 magic`;
  if (area.readUInt16BE(OFF.version) !== 2) return `${where}: version ${area.readUInt16BE(OFF.version)} is not LUKS2`;
  if (area.readBigUInt64BE(OFF.hdrSize) !== BigInt(HDR_SIZE)) return `${where}: header size ${area.readBigUInt64BE(OFF.hdrSize)} is not ${HDR_SIZE}`;
  // Precondition: a copy says where it is (hdr_offset), and its checksum is SHA-256, as LUKS2 requires of the copy it reads.
  if (area.readBigUInt64BE(OFF.hdrOffset) !== BigInt(hdrOffset)) return `${where}: hdr_offset ${area.readBigUInt64BE(OFF.hdrOffset)} is not ${hdrOffset}`;
  if (cstr(area, OFF.csumAlg, 32) !== 'sha256') return `${where}: checksum algorithm ${JSON.stringify(cstr(area, OFF.csumAlg, 32))} is not sha256`;
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
  if (!isObject(parsed)) return `${where}: metadata is not a JSON object`;
  const j = parsed;
  // As before the types were written down: tokens may be any object, arrays too.
  const values = (o: unknown): unknown[] => (o && typeof o === 'object' ? Object.values(o) : []);
  const token = values(j.tokens).find((t): t is Json => isObject(t) && t.type === 'kmsvol');
  if (!token) return `${where}: no kmsvol token`;
  // Precondition: every field has its type (a header whose checksum was recomputed can hold anything).
  const str = (v: unknown): v is string => typeof v === 'string';
  const ctx = token.encryption_context;
  if (!str(token.volume_id) || !str(token.key_arn) || !base64(token.ciphertext_blob))
    return `${where}: the kmsvol token's volume_id, key_arn or ciphertext_blob is not a string`;
  if (!isObject(ctx) || !Object.values(ctx).every(str)) return `${where}: the kmsvol token's encryption_context is not a map of strings`;
  const version = token.version ?? 0;
  if (!isSafeInteger(version) || version < 0) return `${where}: the kmsvol token's version ${JSON.stringify(token.version)} is not a whole number`;
  const tokenSlots = Array.isArray(token.keyslots) && token.keyslots.every(str) ? (token.keyslots as string[]) : undefined;
  if (version >= 1 && (!base64(token.secret_blob) || !tokenSlots))
    return `${where}: the kmsvol token (version ${version}) has no secret_blob in base64 or no keyslots list`;
  const keyslotsEnd = checkAreas(j, where);
  if (typeof keyslotsEnd === 'string') return keyslotsEnd;
  const seg = checkSegment(j, keyslotsEnd, where);
  if (typeof seg === 'string') return seg;
  const digest = checkDigest(j, where);
  if (typeof digest === 'string') return digest;
  return {
    uuid: cstr(area, OFF.uuid, 40),
    label: cstr(area, OFF.label, 48),
    seqid: Number(area.readBigUInt64BE(OFF.seqid)),
    token: {
      volumeId: token.volume_id,
      keyArn: token.key_arn,
      ciphertextBlob: token.ciphertext_blob as string,
      encryptionContext: ctx as Record<string, string>,
      version,
      ...(version >= 1
        ? {
            secretBlob: token.secret_blob as string,
            keyslots: tokenSlots,
            ...(str(token.region) ? { region: token.region } : {}),
            ...(isObject(token.kms) ? { kms: token.kms as KmsLocator } : {}),
          }
        : {}),
    },
    digest,
    payloadOffset: seg.offset,
    segmentSize: seg.size,
    sectorSize: seg.seg.sector_size as number,
    cipher: seg.seg.encryption as string,
    raw: j,
  };
}

/**
 * Parse the first 32 KiB of an image. The primary copy is used when valid, the
 * secondary otherwise (as cryptsetup does); both bad is CorruptImageError
 * naming what is wrong with each.
 */
export function decodeHeader(head: Buffer, image = 'the image'): Luks2Header {
  const a = checkCopy(head.subarray(0, HDR_SIZE), MAGIC_PRIMARY, 'primary header', 0);
  const b = checkCopy(head.subarray(HDR_SIZE, 2 * HDR_SIZE), MAGIC_SECONDARY, 'secondary header', HDR_SIZE);
  const ok = [a, b].filter((x): x is Luks2Header => typeof x !== 'string').sort((x, y) => y.seqid - x.seqid)[0];
  if (!ok) throw new CorruptImageError(`${image} has no valid LUKS2 header (${a}; ${b}). Restore it from a snapshot or a backup.`);
  // Precondition: kmsvol knows the token's version; a newer one may mean what this kmsvol cannot honour.
  if ((ok.token.version ?? 0) > TOKEN_VERSION) {
    throw new ServiceError(
      'UnsupportedOperation',
      `The kmsvol token in the LUKS2 header of ${image} is version ${ok.token.version}; this kmsvol reads versions 0 to ${TOKEN_VERSION}. Upgrade kmsvol to attach this volume.`,
    );
  }
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

/**
 * Precondition: segment 0 of an encrypted image covers the volume: a fixed
 * segment size (cryptsetup maps exactly that many bytes) is the volume's size,
 * and the file holds the header and the whole payload (checkImageLength).
 */
export function checkPayload(file: string, fd: number, h: Luks2Header, sizeBytes: number): void {
  if (h.segmentSize !== null && h.segmentSize !== sizeBytes) {
    throw new CorruptImageError(
      `The LUKS2 header of ${file} maps ${h.segmentSize} bytes in segment 0; the volume is ${sizeBytes}. The header belongs to another image: restore it from a backup or a snapshot.`,
    );
  }
  checkImageLength(file, fd, h.payloadOffset, sizeBytes);
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
