import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import type { CustomKeyStoreRow, KeyRow } from '../store.js';
import { generateTokenKey } from './hsm.js';
import { checkExternalKey } from './xks.js';

/**
 * The rules of a KMS key in a custom key store: what CreateKey checks before
 * such a key comes into being, how its key is made in the store, and what
 * DescribeKey shows of the store (CustomKeyStoreId, CloudHsmClusterId,
 * XksKeyConfiguration).
 */

export type CustomOrigin = 'AWS_CLOUDHSM' | 'EXTERNAL_KEY_STORE';

export interface CustomKeyPlan {
  origin: CustomOrigin;
  store: CustomKeyStoreRow;
  xksKeyId?: string;
}

const TYPE_OF: Record<CustomOrigin, string> = { AWS_CLOUDHSM: 'AWS_CLOUDHSM', EXTERNAL_KEY_STORE: 'EXTERNAL_KEY_STORE' };

export function storeNotFound(k: KmsContext, id: string): KmsError {
  return new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${id} does not exist in account ${k.account} in ${k.region}.`);
}

/**
 * CreateKey's checks for a key in a custom key store; undefined for a key of
 * AWS_KMS or EXTERNAL origin without CustomKeyStoreId.
 */
export function planCustomKey(
  k: KmsContext,
  o: { origin: string | undefined; storeId: string | undefined; xksKeyId: string | undefined; spec: string; usage: string; multiRegion: boolean | undefined },
): CustomKeyPlan | undefined {
  const custom = o.origin === 'AWS_CLOUDHSM' || o.origin === 'EXTERNAL_KEY_STORE' ? (o.origin as CustomOrigin) : undefined;
  // Precondition: a CustomKeyStoreId names a store of this account and Region.
  const store = o.storeId === undefined ? undefined : k.store.customKeyStore(k.region, o.storeId);
  if (o.storeId !== undefined && !store) throw storeNotFound(k, o.storeId);
  // Precondition: CustomKeyStoreId goes with Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE, and they with it.
  if (!custom) {
    if (store)
      throw KmsErrors.unsupported(
        `Custom key store ${store.store_id} is an ${store.type} key store: create its keys with Origin ${store.type}, not ${o.origin ?? 'AWS_KMS'}.`,
      );
    if (o.xksKeyId !== undefined) throw KmsErrors.validation('XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.');
    return undefined;
  }
  if (!store) throw KmsErrors.unsupported(`Origin ${custom} keys live in a custom key store: give CustomKeyStoreId (DescribeCustomKeyStores lists them).`);
  // Precondition: a key in a custom key store is a symmetric encryption key in one Region.
  if (o.spec !== 'SYMMETRIC_DEFAULT' || o.usage !== 'ENCRYPT_DECRYPT')
    throw KmsErrors.unsupported(
      `A KMS key in a custom key store must have KeySpec SYMMETRIC_DEFAULT and KeyUsage ENCRYPT_DECRYPT, not ${o.spec} and ${o.usage}.`,
    );
  if (o.multiRegion) throw KmsErrors.unsupported('A KMS key in a custom key store cannot be a multi-Region key.');
  if (custom === 'EXTERNAL_KEY_STORE' && o.xksKeyId === undefined)
    throw KmsErrors.validation('Origin EXTERNAL_KEY_STORE needs XksKeyId: the id of the external key in the external key manager.');
  if (custom === 'AWS_CLOUDHSM' && o.xksKeyId !== undefined) throw KmsErrors.validation('XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.');
  if (store.type !== TYPE_OF[custom])
    throw KmsErrors.unsupported(`Custom key store ${store.store_id} is of type ${store.type}; Origin ${custom} keys belong in a ${custom} key store.`);
  // Precondition: keys are created only in a CONNECTED custom key store.
  if (store.connection_state !== 'CONNECTED')
    throw new KmsError(
      'CustomKeyStoreInvalidStateException',
      `Custom key store ${store.store_id} is ${store.connection_state}; CreateKey is valid only when its ConnectionState is CONNECTED. Connect it with ConnectCustomKeyStore.`,
    );
  if (custom === 'EXTERNAL_KEY_STORE') {
    const other = k.store.keyOfXksKey(k.region, store.store_id, o.xksKeyId!);
    if (other)
      throw new KmsError(
        'XksKeyAlreadyInUseException',
        `External key ${o.xksKeyId} is already the external key of ${k.keyArn(other)} in custom key store ${store.store_id}.`,
      );
    // Precondition: the proxy knows the external key, and it is an ENABLED AES_256 key for ENCRYPT and DECRYPT.
    checkExternalKey(k, store, o.xksKeyId!);
  }
  return { origin: custom, store, ...(o.xksKeyId !== undefined ? { xksKeyId: o.xksKeyId } : {}) };
}

/** Make the key in its store and record where it is. Call inside the write transaction that inserts the key row. */
export function attachCustomKey(k: KmsContext, plan: CustomKeyPlan, keyId: string): void {
  const tokenKeyId = plan.origin === 'AWS_CLOUDHSM' ? generateTokenKey(k, plan.store, keyId) : null;
  k.store.insertCustomStoreKey({ region: k.region, key_id: keyId, store_id: plan.store.store_id, token_key_id: tokenKeyId, xks_key_id: plan.xksKeyId ?? null });
}

/** DescribeKey's members for a key in a custom key store (none for other keys). */
export function customKeyMetadata(k: KmsContext, row: KeyRow) {
  if (row.origin !== 'AWS_CLOUDHSM' && row.origin !== 'EXTERNAL_KEY_STORE') return {};
  const link = k.store.customStoreKey(row.region, row.key_id);
  if (!link) return {};
  const store = k.store.customKeyStore(row.region, link.store_id);
  return {
    // An enabled key whose store is not CONNECTED is Unavailable, as AWS shows it.
    ...(row.key_state === 'Enabled' && store?.connection_state !== 'CONNECTED' ? { KeyState: 'Unavailable' } : {}),
    CustomKeyStoreId: link.store_id,
    ...(store?.cluster_id ? { CloudHsmClusterId: store.cluster_id } : {}),
    ...(link.xks_key_id ? { XksKeyConfiguration: { Id: link.xks_key_id } } : {}),
  };
}
