import crypto from 'node:crypto';
import type { XksCiphertext, XksKeyMetadata, XksProxyConfig } from '../../xks/client.js';
import type { EncryptionContext, ParsedBlob } from '../blob.js';
import { encodeContext, encodeHeader, MATERIAL_ID_BYTES, NONCE_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import type { CustomKeyStoreRow, KeyRow } from '../store.js';
import { XksBridgeError, xksCall } from './xks-sync.js';

/**
 * EXTERNAL_KEY_STORE key stores at run time: the proxy configuration of a
 * store, its health check, the external key's metadata, and the outer layer
 * of the double encryption AWS documents for such keys — KMS's own key
 * (the key's material here, as for AWS_KMS) encrypts first, then the external
 * key encrypts that ciphertext through the proxy.
 *
 * The outer blob has kmsvol's blob header (blob.ts: store, key id, the inner
 * material id, 12 random bytes where the nonce goes), which with the
 * encryption context is the AAD sent to the proxy; its body is
 * [IV length (1)][IV][metadata length (1)][ciphertextMetadata][proxy ciphertext],
 * and its tag the proxy's authentication tag.
 */

export interface XksStoreConfig {
  uriEndpoint: string;
  uriPath: string;
  connectivity: string;
  accessKeyId: string;
}

const SECRET_LABEL = Buffer.alloc(MATERIAL_ID_BYTES, 0xcd);

export function sealXksSecret(k: KmsContext, storeId: string, secret: string): Buffer {
  const b = Buffer.from(secret, 'utf8');
  try {
    return k.rootKey.seal(`custom-key-store/${storeId}/xks`, SECRET_LABEL, b);
  } finally {
    b.fill(0);
  }
}

export function xksConfigOf(s: CustomKeyStoreRow): XksStoreConfig {
  return JSON.parse(s.xks_config ?? '{}') as XksStoreConfig;
}

/** The client configuration of a store (the secret unsealed for the call). */
export function proxyConfig(k: KmsContext, s: { store_id: string; xks_config: string | null; sealed_xks_secret: Buffer | null }): XksProxyConfig {
  const c = JSON.parse(s.xks_config ?? '{}') as XksStoreConfig;
  if (!s.sealed_xks_secret) throw KmsErrors.internal(`External key store ${s.store_id} has no proxy credential; the store is damaged.`);
  const secret = k.rootKey.unseal(`custom-key-store/${s.store_id}/xks`, SECRET_LABEL, s.sealed_xks_secret);
  try {
    return { uriEndpoint: c.uriEndpoint, uriPath: c.uriPath, accessKeyId: c.accessKeyId, secretAccessKey: secret.toString('utf8'), region: k.region };
  } finally {
    secret.fill(0);
  }
}

function metadata(k: KmsContext, op: string, keyArn?: string) {
  return {
    awsPrincipalArn: k.call?.caller.principal ?? `arn:aws:iam::${k.account}:root`,
    kmsOperation: op,
    kmsRequestId: k.call?.caller.requestId ?? crypto.randomUUID(),
    ...(keyArn ? { kmsKeyArn: keyArn } : {}),
    ...(k.call?.caller.viaService ? { kmsViaService: k.call.caller.viaService } : {}),
  };
}

/** GetHealthStatus for Create/Update/ConnectCustomKeyStore; throws XksBridgeError (with its ConnectionErrorCode). */
export function checkHealth(k: KmsContext, cfg: XksProxyConfig, op: string): void {
  xksCall(cfg, 'health', [metadata(k, op)], op);
}

/** CreateKey: the external key exists, is AES_256, ENABLED, and does ENCRYPT and DECRYPT. */
export function checkExternalKey(k: KmsContext, s: CustomKeyStoreRow, xksKeyId: string): void {
  const m = xksCall<XksKeyMetadata>(proxyConfig(k, s), 'keyMetadata', [xksKeyId, metadata(k, 'CreateKey')], 'CreateKey');
  if (m.keySpec !== 'AES_256' || !m.keyUsage.includes('ENCRYPT') || !m.keyUsage.includes('DECRYPT') || m.keyStatus !== 'ENABLED')
    throw new KmsError(
      'XksKeyInvalidConfigurationException',
      `External key ${xksKeyId} is ${m.keySpec}, ${m.keyStatus}, for ${m.keyUsage.join('+')}; a KMS key needs an AES_256 external key that is ENABLED for ENCRYPT and DECRYPT.`,
    );
}

/** A proxy failure in a cryptographic operation names the key and its store, then says what the proxy did. */
function named<T>(k: KmsContext, row: KeyRow, store: CustomKeyStoreRow, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof XksBridgeError && e.name === 'KMSInvalidStateException')
      throw new XksBridgeError(
        e.name,
        `${k.keyArn(row.key_id)} is unavailable: its external key store ${store.store_id} (${store.name}): ${e.message}`,
        e.connectionErrorCode,
      );
    throw e;
  }
}

function storeOfKey(k: KmsContext, row: KeyRow): { store: CustomKeyStoreRow; xksKeyId: string } {
  const link = k.store.customStoreKey(row.region, row.key_id);
  const store = link && k.store.customKeyStore(row.region, link.store_id);
  if (!link?.xks_key_id || !store) throw KmsErrors.internal(`${k.keyArn(row.key_id)} names an external key store that is gone; the store is damaged.`);
  if (store.connection_state !== 'CONNECTED')
    throw KmsErrors.invalidStateMsg(
      `${k.keyArn(row.key_id)} is unavailable: its custom key store ${store.store_id} (${store.name}) is ${store.connection_state}${store.error_code ? ` (${store.error_code})` : ''}. Connect it with ConnectCustomKeyStore.`,
    );
  return { store, xksKeyId: link.xks_key_id };
}

/** The outer encryption: the inner blob (KMS's own key) encrypted by the external key through the proxy. */
export function sealOuter(k: KmsContext, row: KeyRow, inner: Buffer, innerMaterialId: Buffer, ctx: EncryptionContext | undefined, op: string): Buffer {
  const { store, xksKeyId } = storeOfKey(k, row);
  const arn = k.keyArn(row.key_id);
  const header = encodeHeader({ storeId: k.store.storeId, keyId: row.key_id, materialId: innerMaterialId, nonce: crypto.randomBytes(NONCE_BYTES) });
  const aad = Buffer.concat([header, encodeContext(ctx)]);
  const c = named(k, row, store, () => xksCall<XksCiphertext>(proxyConfig(k, store), 'encrypt', [xksKeyId, inner, aad, metadata(k, op, arn)], op));
  const md = c.ciphertextMetadata ?? Buffer.alloc(0);
  if (c.authenticationTag.length !== 16 || c.initializationVector.length > 255 || md.length > 255)
    throw KmsErrors.invalidStateMsg(`${arn} is unavailable: the external key store proxy answered an unusable ciphertext.`);
  return Buffer.concat([
    header,
    Buffer.from([c.initializationVector.length]),
    c.initializationVector,
    Buffer.from([md.length]),
    md,
    c.ciphertext,
    c.authenticationTag,
  ]);
}

/** The outer decryption: the inner blob back from the proxy. */
export function openOuter(k: KmsContext, row: KeyRow, parsed: ParsedBlob, ctx: EncryptionContext | undefined, op: string): Buffer {
  const { store, xksKeyId } = storeOfKey(k, row);
  const body = parsed.ciphertext;
  const bad = KmsErrors.invalidCiphertext;
  let o = 0;
  const ivLen = body[o++];
  if (ivLen === undefined || body.length < o + ivLen + 1) throw bad();
  const iv = body.subarray(o, (o += ivLen));
  const mdLen = body[o++]!;
  if (body.length < o + mdLen + 1) throw bad();
  const md = body.subarray(o, (o += mdLen));
  const c: XksCiphertext = {
    ciphertext: Buffer.from(body.subarray(o)),
    initializationVector: Buffer.from(iv),
    authenticationTag: Buffer.from(parsed.tag),
    ...(mdLen ? { ciphertextMetadata: Buffer.from(md) } : {}),
  };
  const aad = Buffer.concat([parsed.header, encodeContext(ctx)]);
  try {
    return named(k, row, store, () => xksCall<Buffer>(proxyConfig(k, store), 'decrypt', [xksKeyId, c, aad, metadata(k, op, k.keyArn(row.key_id))], op));
  } catch (e) {
    // The proxy's InvalidCiphertextException in a cryptographic operation: the caller's ciphertext or context is wrong.
    if (e instanceof Error && /ciphertext or the encryption context is corrupted/.test(e.message)) throw bad();
    throw e;
  }
}
