import crypto from 'node:crypto';
import { type KeyRef, Token, type TokenConfig, TokenError } from '../../hsm/token.js';
import type { EncryptionContext, ParsedBlob } from '../blob.js';
import { encodeContext, encodeHeader, MATERIAL_ID_BYTES, NONCE_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import type { CustomKeyStoreRow, HsmClusterRow, KeyRow } from '../store.js';

/**
 * AWS_CLOUDHSM key stores at run time: the token session of this process for
 * each connected store, and the cryptography of its keys, done in the token.
 *
 * Connection state lives in the store (custom_key_stores.connection_state) and
 * is read on every use, so a store disconnected by any process refuses every
 * process's next operation. The PKCS#11 session itself belongs to this
 * process: it is opened and logged in (with the store's sealed password) on
 * first use after a connect, and closed when this process disconnects.
 *
 * The ciphertext of a token key has kmsvol's blob layout (blob.ts): its
 * material id is the token key's CKA_ID (16 bytes) followed by the first 16
 * bytes of SHA-256 of the custom key store id, and its nonce is the AES-GCM IV
 * the token used. The header and the encryption context are the AAD.
 */

const sessions = new Map<string, Token>();
/** The token keys found in each session (object handles are valid for the session's life). */
const found = new WeakMap<Token, Map<string, KeyRef>>();

/** The token key of a KMS key, which must carry the CKA_ID recorded at CreateKey. */
function tokenKey(t: Token, keyId: string, tokenKeyId: Buffer): KeyRef {
  let keys = found.get(t);
  if (!keys) found.set(t, (keys = new Map()));
  const had = keys.get(keyId);
  if (had) return had;
  const key = t.findKey(keyId);
  if (!key?.id.equals(tokenKeyId)) throw new TokenError('KEY_NOT_FOUND', `key ${keyId} is missing from the token`);
  keys.set(keyId, key);
  return key;
}

const PASSWORD_LABEL = Buffer.alloc(MATERIAL_ID_BYTES, 0xcc);

export function sealPassword(k: KmsContext, storeId: string, password: string): Buffer {
  const b = Buffer.from(password, 'utf8');
  try {
    return k.rootKey.seal(`custom-key-store/${storeId}`, PASSWORD_LABEL, b);
  } finally {
    b.fill(0);
  }
}

function password(k: KmsContext, s: CustomKeyStoreRow): string {
  if (!s.sealed_password) throw KmsErrors.internal(`Custom key store ${s.store_id} has no password; the store is damaged.`);
  const b = k.rootKey.unseal(`custom-key-store/${s.store_id}`, PASSWORD_LABEL, s.sealed_password);
  try {
    return b.toString('utf8');
  } finally {
    b.fill(0);
  }
}

export function tokenConfig(c: HsmClusterRow): TokenConfig {
  return { module: c.module, tokenLabel: c.token_label, ...(c.softhsm_conf ? { softhsmConf: c.softhsm_conf } : {}) };
}

/** ConnectionErrorCode for a token failure, in AWS's words for a CloudHSM key store. */
export function connectionErrorOf(e: TokenError): string {
  switch (e.code) {
    case 'INVALID_CREDENTIALS':
      return 'INVALID_CREDENTIALS';
    case 'USER_LOCKED_OUT':
      return 'USER_LOCKED_OUT';
    case 'TOKEN_NOT_FOUND':
    case 'MODULE_NOT_FOUND':
      return 'CLUSTER_NOT_FOUND';
    default:
      return 'INTERNAL_ERROR';
  }
}

/** Open and log in to the store's token in this process (replacing a session it had). Throws TokenError. */
export function connectToken(k: KmsContext, s: CustomKeyStoreRow, cluster: HsmClusterRow): void {
  closeToken(s.store_id);
  const t = Token.open(tokenConfig(cluster));
  try {
    t.login(password(k, s));
  } catch (e) {
    t.close();
    throw e;
  }
  sessions.set(s.store_id, t);
}

export function closeToken(storeId: string): void {
  const t = sessions.get(storeId);
  sessions.delete(storeId);
  t?.close();
}

/** The store row of a key in a custom key store, which must be CONNECTED (else KMSInvalidStateException naming it and its state). */
export function connectedStoreOf(k: KmsContext, row: KeyRow): { store: CustomKeyStoreRow; tokenKeyId: Buffer } {
  const link = k.store.customStoreKey(row.region, row.key_id);
  const store = link && k.store.customKeyStore(row.region, link.store_id);
  if (!link || !store || !link.token_key_id) throw KmsErrors.internal(`${k.keyArn(row.key_id)} names a custom key store that is gone; the store is damaged.`);
  if (store.connection_state !== 'CONNECTED')
    throw KmsErrors.invalidStateMsg(
      `${k.keyArn(row.key_id)} is unavailable: its custom key store ${store.store_id} (${store.name}) is ${store.connection_state}${store.error_code ? ` (${store.error_code})` : ''}. Connect it with ConnectCustomKeyStore.`,
    );
  return { store, tokenKeyId: link.token_key_id };
}

/** This process's logged-in session with the store's token, opened on first use. */
function session(k: KmsContext, store: CustomKeyStoreRow, arn: string): Token {
  const had = sessions.get(store.store_id);
  if (had?.isOpen) return had;
  const cluster = store.cluster_id ? k.store.hsmCluster(store.region, store.cluster_id) : undefined;
  if (!cluster) throw KmsErrors.invalidStateMsg(`${arn} is unavailable: the AWS CloudHSM cluster of custom key store ${store.store_id} cannot be found.`);
  try {
    connectToken(k, store, cluster);
  } catch (e) {
    if (e instanceof TokenError)
      throw KmsErrors.invalidStateMsg(
        `${arn} is unavailable: custom key store ${store.store_id} cannot reach its token (${connectionErrorOf(e)}: ${e.message})`,
      );
    throw e;
  }
  return sessions.get(store.store_id)!;
}

function materialIdOf(storeId: string, tokenKeyId: Buffer): Buffer {
  return Buffer.concat([
    tokenKeyId,
    crypto
      .createHash('sha256')
      .update(storeId)
      .digest()
      .subarray(0, MATERIAL_ID_BYTES - tokenKeyId.length),
  ]);
}

function tokenError(k: KmsContext, row: KeyRow, store: CustomKeyStoreRow, e: unknown): never {
  if (!(e instanceof TokenError)) throw e;
  if (e.code === 'DECRYPT_FAILED') throw KmsErrors.invalidCiphertext();
  // The session may be stale (token removed, logged out): the next call opens a new one.
  closeToken(store.store_id);
  throw KmsErrors.invalidStateMsg(`${k.keyArn(row.key_id)} is unavailable: the token of custom key store ${store.store_id} failed (${e.code}: ${e.message})`);
}

/** Generate the key of a new KMS key inside the store's token, labelled with the key id; its CKA_ID. */
export function generateTokenKey(k: KmsContext, store: CustomKeyStoreRow, keyId: string): Buffer {
  const t = session(k, store, k.keyArn(keyId));
  try {
    return t.generateKey(keyId).id;
  } catch (e) {
    if (e instanceof TokenError) {
      closeToken(store.store_id);
      throw new KmsError('CloudHsmClusterInvalidConfigurationException', `The token of custom key store ${store.store_id} cannot make a key: ${e.message}`);
    }
    throw e;
  }
}

/** Encrypt under a key in an AWS_CLOUDHSM key store: AES-256-GCM inside the token. */
export function sealInToken(k: KmsContext, row: KeyRow, plaintext: Buffer, ctx: EncryptionContext | undefined, nonce?: Buffer): Buffer {
  const { store, tokenKeyId } = connectedStoreOf(k, row);
  const t = session(k, store, k.keyArn(row.key_id));
  try {
    const key = tokenKey(t, row.key_id, tokenKeyId);
    const iv = nonce ?? t.random(NONCE_BYTES);
    const header = encodeHeader({ storeId: k.store.storeId, keyId: row.key_id, materialId: materialIdOf(store.store_id, tokenKeyId), nonce: iv });
    const sealed = t.encrypt(key, plaintext, Buffer.concat([header, encodeContext(ctx)]), iv);
    return Buffer.concat([header, sealed.ciphertext, sealed.tag]);
  } catch (e) {
    return tokenError(k, row, store, e);
  }
}

/** Decrypt a blob of a key in an AWS_CLOUDHSM key store, inside the token. */
export function openInToken(k: KmsContext, row: KeyRow, parsed: ParsedBlob, ctx: EncryptionContext | undefined): Buffer {
  const { store, tokenKeyId } = connectedStoreOf(k, row);
  if (!parsed.materialId.equals(materialIdOf(store.store_id, tokenKeyId))) throw KmsErrors.invalidCiphertext();
  const t = session(k, store, k.keyArn(row.key_id));
  try {
    const key = tokenKey(t, row.key_id, tokenKeyId);
    return t.decrypt(
      key,
      { iv: Buffer.from(parsed.nonce), ciphertext: Buffer.from(parsed.ciphertext), tag: Buffer.from(parsed.tag) },
      Buffer.concat([parsed.header, encodeContext(ctx)]),
    );
  } catch (e) {
    return tokenError(k, row, store, e);
  }
}

/** GenerateRandom with CustomKeyStoreId: random bytes from the store's token (its store must be CONNECTED). */
export function randomFromStore(k: KmsContext, storeId: string, n: number): Buffer {
  const store = k.store.customKeyStore(k.region, storeId);
  if (!store) throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${storeId} does not exist in account ${k.account} in ${k.region}.`);
  if (store.connection_state !== 'CONNECTED')
    throw new KmsError(
      'CustomKeyStoreInvalidStateException',
      `Custom key store ${storeId} is ${store.connection_state}; GenerateRandom in a custom key store is valid only when it is CONNECTED.`,
    );
  if (store.type !== 'AWS_CLOUDHSM') throw KmsErrors.unsupported(`GenerateRandom takes an AWS CloudHSM key store; ${storeId} is ${store.type}.`);
  const t = session(k, store, `custom key store ${storeId}`);
  try {
    return t.random(n);
  } catch (e) {
    closeToken(storeId);
    throw e;
  }
}
