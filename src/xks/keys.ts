import { type KeyRef, Token, type TokenConfig, TokenError } from '../hsm/token.js';

/**
 * What the XKS proxy asks of its external key manager: AES-256-GCM with a
 * named key, inside the manager. The proxy (proxy.ts) knows only this; the
 * PKCS#11 token below is the one implementation kmsvol ships.
 */
export interface KeyManager {
  /** Whether a key with this label exists (GetKeyMetadata, and KeyNotFoundException). */
  has(keyLabel: string): boolean;
  /** AES-GCM with a fresh 12-byte IV from the manager; 16-byte tag. */
  encrypt(keyLabel: string, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; iv: Buffer; tag: Buffer };
  /** Throws KeyManagerError('DECRYPT_FAILED') when the tag does not verify. */
  decrypt(keyLabel: string, sealed: { ciphertext: Buffer; iv: Buffer; tag: Buffer }, aad: Buffer): Buffer;
  /** For GetHealthStatus: who makes the manager, and which one this is. */
  readonly vendor: string;
  readonly model: string;
  readonly id: string;
}

export type KeyManagerErrorCode = 'KEY_NOT_FOUND' | 'DECRYPT_FAILED' | 'UNAVAILABLE';

export class KeyManagerError extends Error {
  constructor(
    readonly code: KeyManagerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyManagerError';
  }
}

/** The label of the key the deep health check encrypts and decrypts with (never a KMS key's, as the specification asks). */
export const HEALTH_KEY_LABEL = 'kmsvol-xks-proxy-health-check';

/**
 * A PKCS#11 token as the key manager (src/hsm/token.ts). Keys are looked up
 * by CKA_LABEL; `ensure` makes a missing one non-extractable and sensitive
 * in the token. One session, logged in for the life of the proxy.
 */
export class TokenKeyManager implements KeyManager {
  readonly vendor: string;
  readonly model: string;
  readonly id: string;
  private readonly refs = new Map<string, KeyRef>();

  private constructor(private readonly token: Token) {
    const soft = token.config.module.includes('softhsm');
    this.vendor = soft ? 'SoftHSM2 (OpenDNSSEC)' : `PKCS#11 module ${token.config.module}`;
    this.model = soft ? 'SoftHSM2 token via PKCS#11' : `PKCS#11 token ${token.config.tokenLabel}`;
    this.id = token.config.tokenLabel;
  }

  /** Open the token, log in with the user PIN, and make sure the health-check key and the named keys exist. */
  static open(cfg: TokenConfig, userPin: string, ensure: readonly string[]): TokenKeyManager {
    const token = Token.open(cfg);
    try {
      token.login(userPin);
      const m = new TokenKeyManager(token);
      for (const label of [HEALTH_KEY_LABEL, ...ensure]) m.refs.set(label, token.ensureKey(label));
      return m;
    } catch (e) {
      token.close();
      throw e;
    }
  }

  private ref(label: string): KeyRef {
    let r = this.refs.get(label);
    if (!r) {
      r = this.wrap(() => this.token.findKey(label));
      if (!r) throw new KeyManagerError('KEY_NOT_FOUND', `No key labelled ${label} in token ${this.id}.`);
      this.refs.set(label, r);
    }
    return r;
  }

  has(label: string): boolean {
    try {
      this.ref(label);
      return true;
    } catch (e) {
      if (e instanceof KeyManagerError && e.code === 'KEY_NOT_FOUND') return false;
      throw e;
    }
  }

  encrypt(label: string, plaintext: Buffer, aad: Buffer) {
    const out = this.wrap(() => this.token.encrypt(this.ref(label), plaintext, aad), label);
    return { ciphertext: out.ciphertext, iv: out.iv, tag: out.tag };
  }

  decrypt(label: string, sealed: { ciphertext: Buffer; iv: Buffer; tag: Buffer }, aad: Buffer): Buffer {
    return this.wrap(() => this.token.decrypt(this.ref(label), sealed, aad), label);
  }

  close(): void {
    this.token.close();
  }

  /** The token's errors in the proxy's terms; a key deleted from the token is forgotten. */
  private wrap<T>(fn: () => T, label?: string): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      if (e.code === 'DECRYPT_FAILED') throw new KeyManagerError('DECRYPT_FAILED', e.message);
      if (e.code === 'KEY_NOT_FOUND') {
        if (label) this.refs.delete(label);
        throw new KeyManagerError('KEY_NOT_FOUND', e.message);
      }
      throw new KeyManagerError('UNAVAILABLE', e.message);
    }
  }
}
