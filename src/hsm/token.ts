import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type * as Pkcs11Types from 'pkcs11js';

/**
 * The one PKCS#11 layer of kmsvol, over `pkcs11js` (PeculiarVentures). Both
 * the AWS_CLOUDHSM key stores of the KMS and the XKS proxy use it; nothing
 * else in kmsvol calls PKCS#11. It imports nothing of kmsvol's.
 *
 * Interface (all synchronous; a PKCS#11 session belongs to one process):
 *
 *   SOFTHSM2_MODULE                          Debian's libsofthsm2.so path
 *   initSoftHsmToken({ dir, label, soPin, userPin }) -> TokenConfig
 *       writes dir/softhsm2.conf (tokens in dir/tokens, mode 0700) and
 *       initializes a new token `label` with the two PINs (or returns the
 *       existing one). A process uses ONE SoftHSM2 configuration: the first
 *       load sets SOFTHSM2_CONF; another dir later is TokenError CONF_CONFLICT.
 *   Token.open(cfg: TokenConfig) -> Token    loads the module once per process,
 *       finds the slot whose token has cfg.tokenLabel, opens a R/W session.
 *   token.login(pin)                         user login; a wrong PIN is
 *       TokenError INVALID_CREDENTIALS, a locked PIN USER_LOCKED_OUT.
 *   token.findKey(label) -> KeyRef|undefined  a secret key with CKA_LABEL=label
 *   token.generateKey(label) -> KeyRef       AES-256, CKA_TOKEN true,
 *       CKA_SENSITIVE true, CKA_EXTRACTABLE false, ENCRYPT/DECRYPT only;
 *       CKA_ID is 16 random bytes (KeyRef.id: the handle that stays valid
 *       across sessions and processes, unlike an object handle).
 *   token.ensureKey(label) -> KeyRef         find, else generate
 *   token.encrypt(key, plaintext, aad?, iv?) -> { iv, ciphertext, tag }
 *       CKM_AES_GCM, 16-byte tag; the 12-byte IV is the caller's (when the
 *       IV must be inside the AAD) or else from the token's RNG.
 *   token.decrypt(key, { iv, ciphertext, tag }, aad?) -> Buffer
 *       a wrong tag/AAD/IV is TokenError DECRYPT_FAILED.
 *   token.close()                            closes the session (logs out when
 *       it was the last Token of this process on that slot).
 *   token.isOpen                             false after close, or after Token.open
 *       reloaded SoftHSM2 to see a token another process made (SoftHSM2 reads
 *       its token directory at C_Initialize only): then open a new Token.
 *
 * Key material never leaves the token: there is no call that reads CKA_VALUE,
 * and the key is made unextractable and sensitive at generation.
 */

export const SOFTHSM2_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export type TokenErrorCode =
  | 'MODULE_NOT_FOUND'
  | 'CONF_CONFLICT'
  | 'TOKEN_NOT_FOUND'
  | 'INVALID_CREDENTIALS'
  | 'USER_LOCKED_OUT'
  | 'NOT_LOGGED_IN'
  | 'KEY_NOT_FOUND'
  | 'DECRYPT_FAILED'
  | 'DEVICE_ERROR';

/** A failure of the token, with a stable code and the PKCS#11 return value when there is one. */
export class TokenError extends Error {
  readonly code: TokenErrorCode;
  readonly rv: number | undefined;
  constructor(code: TokenErrorCode, message: string, rv?: number) {
    super(message);
    this.name = 'TokenError';
    this.code = code;
    this.rv = rv;
  }
}

export interface TokenConfig {
  /** Path of the PKCS#11 module (a shared library). */
  module: string;
  /** The token's label (CK_TOKEN_INFO.label, without padding). */
  tokenLabel: string;
  /** For SoftHSM2: the configuration file, exported as SOFTHSM2_CONF before the module loads. */
  softhsmConf?: string;
}

export interface KeyRef {
  /** The object handle in this session (valid only in this process). */
  handle: Buffer;
  /** CKA_ID: stable across sessions and processes. */
  id: Buffer;
  label: string;
}

export interface GcmSealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

const require = createRequire(import.meta.url);
let lib: typeof Pkcs11Types | undefined;
function pk(): typeof Pkcs11Types {
  lib ??= require('pkcs11js') as typeof Pkcs11Types;
  return lib;
}

/** One loaded module per path per process (PKCS#11 allows one C_Initialize). */
const modules = new Map<string, Pkcs11Types.PKCS11>();
/** Open Tokens per slot, so that the last close logs out and the first login really checks the PIN. */
const openPerSlot = new Map<string, number>();
/** Every open Token per module path, so that a reload can mark them closed. */
const openTokens = new Map<string, Set<Token>>();

/**
 * SoftHSM2 reads its token directory at C_Initialize only: a token another
 * process made since is not seen. Reload the module (C_Finalize, C_Initialize):
 * every session of this process on it ends, and its Tokens report closed.
 */
function reloadModule(path: string): void {
  const p = modules.get(path);
  if (!p) return;
  for (const t of openTokens.get(path) ?? []) t.markClosed();
  openTokens.delete(path);
  for (const key of [...openPerSlot.keys()]) if (key.startsWith(`${path}\0`)) openPerSlot.delete(key);
  try {
    p.C_Finalize();
  } catch {
    // already finalized
  }
  p.C_Initialize();
}

function rvOf(e: unknown): number | undefined {
  const rv = e instanceof Error ? (e as unknown as { code?: unknown }).code : undefined;
  return typeof rv === 'number' ? rv : undefined;
}

function loadModule(cfg: TokenConfig): Pkcs11Types.PKCS11 {
  const path = resolve(cfg.module);
  if (cfg.softhsmConf !== undefined) {
    const want = resolve(cfg.softhsmConf);
    const have = process.env.SOFTHSM2_CONF;
    if (modules.has(path) && have !== undefined && resolve(have) !== want)
      throw new TokenError(
        'CONF_CONFLICT',
        `This process already uses the SoftHSM2 configuration ${have}; it cannot also use ${want}. Use one token directory per process.`,
      );
    process.env.SOFTHSM2_CONF = want;
  }
  const had = modules.get(path);
  if (had) return had;
  const p = new (pk().PKCS11)();
  try {
    p.load(path);
  } catch (e) {
    throw new TokenError('MODULE_NOT_FOUND', `Cannot load the PKCS#11 module ${path}: ${(e as Error).message}`);
  }
  try {
    p.C_Initialize();
  } catch (e) {
    if (rvOf(e) !== pk().CKR_CRYPTOKI_ALREADY_INITIALIZED) throw device(e, `C_Initialize of ${path}`);
  }
  modules.set(path, p);
  return p;
}

function device(e: unknown, what: string): TokenError {
  if (e instanceof TokenError) return e;
  return new TokenError('DEVICE_ERROR', `PKCS#11 ${what} failed: ${(e as Error).message}`, rvOf(e));
}

function findSlot(p: Pkcs11Types.PKCS11, label: string): Buffer | undefined {
  for (const slot of p.C_GetSlotList(true)) {
    const info = p.C_GetTokenInfo(slot);
    if (info.flags & pk().CKF_TOKEN_INITIALIZED && info.label.trimEnd() === label) return slot;
  }
  return undefined;
}

/**
 * Make (or find) a SoftHSM2 token under `dir`: dir/softhsm2.conf names
 * dir/tokens as the token directory. Precondition: the label is 1..32 bytes.
 */
export function initSoftHsmToken(o: { dir: string; label: string; soPin: string; userPin: string }): TokenConfig {
  if (Buffer.byteLength(o.label) < 1 || Buffer.byteLength(o.label) > 32)
    throw new TokenError('TOKEN_NOT_FOUND', `A token label is 1 to 32 bytes; ${JSON.stringify(o.label)} is not.`);
  for (const [who, pin] of [
    ['security officer', o.soPin],
    ['user', o.userPin],
  ] as const)
    if (pin.length < 4 || pin.length > 255) throw new TokenError('INVALID_CREDENTIALS', `SoftHSM2 needs a ${who} PIN of 4 to 255 characters.`);
  const dir = resolve(o.dir);
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  const text = `# kmsvol's SoftHSM2 tokens\ndirectories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`;
  let old: string | undefined;
  try {
    old = readFileSync(conf, 'utf8');
  } catch {
    old = undefined;
  }
  if (old !== text) writeFileSync(conf, text, { mode: 0o600 });
  const cfg: TokenConfig = { module: SOFTHSM2_MODULE, tokenLabel: o.label, softhsmConf: conf };
  const p = loadModule(cfg);
  if (findSlot(p, o.label)) return cfg;
  const free = p.C_GetSlotList(true).find((s) => !(p.C_GetTokenInfo(s).flags & pk().CKF_TOKEN_INITIALIZED));
  if (!free) throw new TokenError('DEVICE_ERROR', `SoftHSM2 offers no free slot in ${tokens}.`);
  try {
    p.C_InitToken(free, o.soPin, o.label.padEnd(32, ' '));
    const initialized = findSlot(p, o.label);
    if (!initialized) throw new TokenError('TOKEN_NOT_FOUND', `SoftHSM2 did not show the new token ${o.label}.`);
    const s = p.C_OpenSession(initialized, pk().CKF_SERIAL_SESSION | pk().CKF_RW_SESSION);
    try {
      p.C_Login(s, pk().CKU_SO, o.soPin);
      p.C_InitPIN(s, o.userPin);
      p.C_Logout(s);
    } finally {
      p.C_CloseSession(s);
    }
  } catch (e) {
    throw device(e, `token initialization of ${o.label}`);
  }
  return cfg;
}

export class Token {
  readonly config: TokenConfig;
  #p: Pkcs11Types.PKCS11;
  #slotKey: string;
  #session: Buffer | undefined;

  private constructor(cfg: TokenConfig, p: Pkcs11Types.PKCS11, slot: Buffer, session: Buffer) {
    this.config = cfg;
    this.#p = p;
    this.#slotKey = `${resolve(cfg.module)}\0${slot.toString('hex')}`;
    this.#session = session;
    openPerSlot.set(this.#slotKey, (openPerSlot.get(this.#slotKey) ?? 0) + 1);
    const path = resolve(cfg.module);
    if (!openTokens.has(path)) openTokens.set(path, new Set());
    openTokens.get(path)!.add(this);
  }

  /** Whether this Token still has its session (false after close, or after a reload of its module in this process). */
  get isOpen(): boolean {
    return this.#session !== undefined;
  }

  /** @internal The module was reloaded: the session is gone. */
  markClosed(): void {
    this.#session = undefined;
  }

  /** Load the module (once per process), find the token by label, open a R/W session. */
  static open(cfg: TokenConfig): Token {
    const p = loadModule(cfg);
    let slot = findSlot(p, cfg.tokenLabel);
    if (!slot && cfg.softhsmConf !== undefined) {
      reloadModule(resolve(cfg.module));
      slot = findSlot(p, cfg.tokenLabel);
    }
    if (!slot) throw new TokenError('TOKEN_NOT_FOUND', `No token labelled ${cfg.tokenLabel} is present in ${cfg.module}.`);
    try {
      return new Token(cfg, p, slot, p.C_OpenSession(slot, pk().CKF_SERIAL_SESSION | pk().CKF_RW_SESSION));
    } catch (e) {
      throw device(e, 'C_OpenSession');
    }
  }

  #s(): Buffer {
    if (!this.#session) throw new TokenError('NOT_LOGGED_IN', `The session with token ${this.config.tokenLabel} is closed.`);
    return this.#session;
  }

  /**
   * Log in as the user (CKU_USER). PKCS#11 shares a login among the sessions
   * of a process; when another Token of this process is already logged in,
   * the PIN is still checked (C_SetPIN with itself, which verifies the old PIN).
   */
  login(pin: string): void {
    const s = this.#s();
    const P = pk();
    try {
      this.#p.C_Login(s, P.CKU_USER, pin);
    } catch (e) {
      const rv = rvOf(e);
      if (rv === P.CKR_USER_ALREADY_LOGGED_IN) {
        try {
          this.#p.C_SetPIN(s, pin, pin);
          return;
        } catch (e2) {
          throw this.#loginError(e2);
        }
      }
      throw this.#loginError(e);
    }
  }

  #loginError(e: unknown): TokenError {
    const rv = rvOf(e);
    const P = pk();
    if (rv === P.CKR_PIN_INCORRECT || rv === P.CKR_PIN_LEN_RANGE)
      return new TokenError('INVALID_CREDENTIALS', `The PIN for the user of token ${this.config.tokenLabel} is incorrect.`, rv);
    if (rv === P.CKR_PIN_LOCKED)
      return new TokenError('USER_LOCKED_OUT', `The user of token ${this.config.tokenLabel} is locked out (too many wrong PINs).`, rv);
    return device(e, `C_Login on ${this.config.tokenLabel}`);
  }

  findKey(label: string): KeyRef | undefined {
    const s = this.#s();
    const P = pk();
    try {
      this.#p.C_FindObjectsInit(s, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_LABEL, value: label },
      ]);
      let found: Buffer[];
      try {
        found = this.#p.C_FindObjects(s, 2);
      } finally {
        this.#p.C_FindObjectsFinal(s);
      }
      const handle = found[0];
      if (!handle) return undefined;
      const [id] = this.#p.C_GetAttributeValue(s, handle, [{ type: P.CKA_ID }]);
      return { handle, id: Buffer.from(id?.value ?? Buffer.alloc(0)), label };
    } catch (e) {
      throw this.#opError(e, 'C_FindObjects');
    }
  }

  generateKey(label: string): KeyRef {
    const s = this.#s();
    const P = pk();
    const id = this.random(16);
    try {
      const handle = this.#p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_WRAP, value: false },
        { type: P.CKA_UNWRAP, value: false },
        { type: P.CKA_SIGN, value: false },
        { type: P.CKA_VERIFY, value: false },
        { type: P.CKA_DERIVE, value: false },
        { type: P.CKA_LABEL, value: label },
        { type: P.CKA_ID, value: id },
      ]);
      return { handle, id, label };
    } catch (e) {
      throw this.#opError(e, 'C_GenerateKey');
    }
  }

  ensureKey(label: string): KeyRef {
    return this.findKey(label) ?? this.generateKey(label);
  }

  /** Random bytes from the token's generator. */
  random(n: number): Buffer {
    try {
      return this.#p.C_GenerateRandom(this.#s(), Buffer.alloc(n));
    } catch {
      return randomBytes(n);
    }
  }

  encrypt(key: KeyRef, plaintext: Buffer, aad?: Buffer, givenIv?: Buffer): GcmSealed {
    const s = this.#s();
    if (givenIv !== undefined && givenIv.length !== 12) throw new TokenError('DEVICE_ERROR', 'AES-GCM here takes a 12-byte IV.');
    const iv = givenIv ?? this.random(12);
    try {
      this.#p.C_EncryptInit(s, this.#gcm(iv, aad), key.handle);
      const out = this.#p.C_Encrypt(s, plaintext, Buffer.alloc(plaintext.length + 16));
      return { iv, ciphertext: Buffer.from(out.subarray(0, out.length - 16)), tag: Buffer.from(out.subarray(out.length - 16)) };
    } catch (e) {
      throw this.#opError(e, 'C_Encrypt');
    }
  }

  decrypt(key: KeyRef, sealed: GcmSealed, aad?: Buffer): Buffer {
    const s = this.#s();
    const P = pk();
    if (sealed.iv.length !== 12 || sealed.tag.length !== 16) throw new TokenError('DECRYPT_FAILED', 'AES-GCM needs a 12-byte IV and a 16-byte tag.');
    try {
      this.#p.C_DecryptInit(s, this.#gcm(sealed.iv, aad), key.handle);
    } catch (e) {
      throw this.#opError(e, 'C_DecryptInit');
    }
    const input = Buffer.concat([sealed.ciphertext, sealed.tag]);
    try {
      return this.#p.C_Decrypt(s, input, Buffer.alloc(input.length));
    } catch (e) {
      // SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR; the standard's
      // codes are CKR_ENCRYPTED_DATA_INVALID and ..._LEN_RANGE. The key and the
      // mechanism were already accepted by C_DecryptInit.
      const rv = rvOf(e);
      if (rv === P.CKR_ENCRYPTED_DATA_INVALID || rv === P.CKR_ENCRYPTED_DATA_LEN_RANGE || rv === P.CKR_GENERAL_ERROR)
        throw new TokenError('DECRYPT_FAILED', `The token ${this.config.tokenLabel} could not authenticate the ciphertext (wrong key, AAD, IV or tag).`, rv);
      throw this.#opError(e, 'C_Decrypt');
    }
  }

  #gcm(iv: Buffer, aad: Buffer | undefined): Pkcs11Types.Mechanism {
    const P = pk();
    const parameter: Pkcs11Types.GcmParams = { type: P.CK_PARAMS_AES_GCM, iv, ivBits: 96, tagBits: 128 };
    if (aad !== undefined && aad.length > 0) parameter.aad = aad;
    return { mechanism: P.CKM_AES_GCM, parameter };
  }

  #opError(e: unknown, what: string): TokenError {
    const rv = rvOf(e);
    const P = pk();
    if (rv === P.CKR_USER_NOT_LOGGED_IN) return new TokenError('NOT_LOGGED_IN', `${what}: not logged in to token ${this.config.tokenLabel}.`, rv);
    if (rv === P.CKR_KEY_HANDLE_INVALID || rv === P.CKR_OBJECT_HANDLE_INVALID)
      return new TokenError('KEY_NOT_FOUND', `${what}: the key is no longer in token ${this.config.tokenLabel}.`, rv);
    return device(e, what);
  }

  /** Close the session; the last Token of this process on the slot logs out first. */
  close(): void {
    const s = this.#session;
    if (!s) return;
    this.#session = undefined;
    openTokens.get(resolve(this.config.module))?.delete(this);
    const left = (openPerSlot.get(this.#slotKey) ?? 1) - 1;
    if (left <= 0) openPerSlot.delete(this.#slotKey);
    else openPerSlot.set(this.#slotKey, left);
    try {
      if (left <= 0) this.#p.C_Logout(s);
    } catch {
      // not logged in: nothing to undo
    }
    try {
      this.#p.C_CloseSession(s);
    } catch {
      // the module already dropped it
    }
  }
}
