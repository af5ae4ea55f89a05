import { HDR_SIZE, KEYSLOTS_SIZE } from './luks2.js';

/**
 * The kmsvol keyslot in LUKS2 metadata (docs/format.md, "The keyslot"): one
 * luks2 keyslot that the token's secret opens, so stock cryptsetup reaches the
 * volume key through the token plugin. Its parameters are what
 * systemd-cryptenroll uses for a high-entropy token secret: PBKDF2 with
 * cryptsetup's minimum iterations, no slow KDF.
 */

/** cryptsetup's minimum PBKDF2 iterations (PBKDF2_MIN_ITERATIONS), as systemd-cryptenroll sets for token-enrolled slots. */
export const KEYSLOT_ITERATIONS = 1000;
/** LUKS_STRIPES: the anti-forensic split of every LUKS keyslot. */
export const KEYSLOT_STRIPES = 4000;
/** The keyslot's own encryption: aes-xts-plain64 with a 512-bit key (cryptsetup's default). */
export const KEYSLOT_CIPHER = 'aes-xts-plain64';
export const KEYSLOT_KEY_BYTES = 64;
/** The volume key's length: the split key is this many bytes times the stripes. */
export const VOLUME_KEY_BYTES = 64;
/** The area a 64-byte key's keyslot takes: 64 x 4000 bytes, rounded up to 4096 as cryptsetup allocates. */
export const KEYSLOT_AREA_SIZE = Math.ceil((VOLUME_KEY_BYTES * KEYSLOT_STRIPES) / 4096) * 4096;
/** The keyslot secret's length (GenerateDataKey NumberOfBytes). */
export const SECRET_BYTES = 32;

/** A keyslot made in the card layer: its KDF salt and the encrypted area (public; the secret is wrapped in the token). */
export interface KeyslotMaterial {
  salt: Buffer;
  iterations: number;
  area: Buffer;
  /** The wrapped secret (KMS ciphertext blob), base64. */
  secretBlob: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

/**
 * Where the new keyslot goes: the lowest free keyslot id, and the first
 * 4096-aligned offset in the keyslot area that overlaps no keyslot already
 * there (one a stock tool added, such as a recovery passphrase).
 * Throws when the keyslot area has no room.
 */
export function freeKeyslot(j: Json): { id: string; offset: number } {
  const slots = obj(j.keyslots);
  let id = 0;
  while (Object.hasOwn(slots, String(id))) id++;
  const used = Object.values(slots)
    .map((s) => obj(obj(s).area))
    .map((a) => [Number(a.offset), Number(a.offset) + Number(a.size)] as const)
    .sort((a, b) => a[0] - b[0]);
  let offset = 2 * HDR_SIZE;
  for (const [from, to] of used) {
    if (offset + KEYSLOT_AREA_SIZE <= from) break;
    offset = Math.max(offset, Math.ceil(to / 4096) * 4096);
  }
  const end = 2 * HDR_SIZE + Number(obj(j.config).keyslots_size ?? KEYSLOTS_SIZE);
  if (offset + KEYSLOT_AREA_SIZE > end) throw new Error(`the LUKS2 keyslot area has no room for a ${KEYSLOT_AREA_SIZE}-byte keyslot`);
  return { id: String(id), offset };
}

/**
 * Postcondition: metadata `j` holds keyslot `id` at `offset` with `m`'s KDF,
 * the digest of segment 0 lists it, and the kmsvol token (version 1, `token`)
 * names it. Returns the new metadata; `j` is not changed.
 */
export function withKeyslot(j: Json, id: string, offset: number, m: KeyslotMaterial, token: Json): Json {
  const out = structuredClone(j);
  out.keyslots = {
    ...obj(out.keyslots),
    [id]: {
      type: 'luks2',
      key_size: VOLUME_KEY_BYTES,
      af: { type: 'luks1', stripes: KEYSLOT_STRIPES, hash: 'sha256' },
      area: { type: 'raw', offset: String(offset), size: String(KEYSLOT_AREA_SIZE), encryption: KEYSLOT_CIPHER, key_size: KEYSLOT_KEY_BYTES },
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: m.iterations, salt: m.salt.toString('base64') },
    },
  };
  for (const d of Object.values(obj(out.digests))) {
    const dj = obj(d);
    if (Array.isArray(dj.segments) && dj.segments.includes('0') && Array.isArray(dj.keyslots) && !dj.keyslots.includes(id)) dj.keyslots.push(id);
  }
  const tokens = obj(out.tokens);
  const tid = Object.keys(tokens).find((k) => obj(tokens[k]).type === 'kmsvol') ?? '0';
  tokens[tid] = token;
  out.tokens = tokens;
  return out;
}
