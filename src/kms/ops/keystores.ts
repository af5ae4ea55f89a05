import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import { LIMITS, oneOf, paginate, reqStr, str } from '../validate.js';

/**
 * Custom key stores (AWS CloudHSM and external key stores) answer as a
 * region that has none: DescribeCustomKeyStores lists nothing, every store
 * id is not found, and a new store cannot be created because the cluster or
 * proxy it names cannot be reached from here. Never a silent success.
 */
type Req = Record<string, unknown>;

const notFound = (k: KmsContext, id: string) =>
  new KmsError(
    'CustomKeyStoreNotFoundException',
    `Custom key store ${id} does not exist in account ${k.account} in ${k.region}. kmsvol has no custom key stores; DescribeCustomKeyStores lists none.`,
  );

function storeId(req: Req): string {
  return reqStr(req, 'CustomKeyStoreId', 64);
}

export function describeCustomKeyStores(k: KmsContext, req: Req) {
  k.authorizeIamOnly('kms:DescribeCustomKeyStores');
  const id = str(req, 'CustomKeyStoreId', { min: 1, max: 64 });
  const name = str(req, 'CustomKeyStoreName', { min: 1, max: 256 });
  if (id !== undefined && name !== undefined) throw KmsErrors.validation('Specify CustomKeyStoreId or CustomKeyStoreName, not both.');
  if (id !== undefined) throw notFound(k, id);
  if (name !== undefined)
    throw new KmsError(
      'CustomKeyStoreNotFoundException',
      `No custom key store is named ${name} in account ${k.account} in ${k.region}. kmsvol has no custom key stores.`,
    );
  const { page, ...more } = paginate(req, [] as never[], LIMITS.DescribeCustomKeyStores);
  return { CustomKeyStores: page, ...more };
}

export function createCustomKeyStore(k: KmsContext, req: Req) {
  reqStr(req, 'CustomKeyStoreName', 256);
  const type = oneOf(req, 'CustomKeyStoreType', ['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const) ?? 'AWS_CLOUDHSM';
  k.authorizeIamOnly('kms:CreateCustomKeyStore');
  if (type === 'AWS_CLOUDHSM') {
    const cluster = str(req, 'CloudHsmClusterId', { min: 19, max: 24 });
    if (cluster === undefined) throw KmsErrors.validation('CloudHsmClusterId is required for an AWS_CLOUDHSM custom key store.');
    throw new KmsError(
      'CloudHsmClusterNotFoundException',
      `AWS CloudHSM cluster ${cluster} cannot be found: kmsvol has no AWS CloudHSM clusters, so it cannot create an AWS CloudHSM key store. Create keys in kmsvol itself (Origin AWS_KMS or EXTERNAL).`,
    );
  }
  const connectivity = oneOf(req, 'XksProxyConnectivity', ['PUBLIC_ENDPOINT', 'VPC_ENDPOINT_SERVICE'] as const);
  if (connectivity === 'VPC_ENDPOINT_SERVICE') {
    const service = str(req, 'XksProxyVpcEndpointServiceName', { min: 1, max: 64 }) ?? '(none)';
    throw new KmsError(
      'XksProxyVpcEndpointServiceNotFoundException',
      `The VPC endpoint service ${service} cannot be found: kmsvol has no VPCs, so it cannot reach an external key store proxy. Create keys in kmsvol itself.`,
    );
  }
  const uri = str(req, 'XksProxyUriEndpoint', { min: 10, max: 128 }) ?? '(none)';
  throw new KmsError(
    'XksProxyUriUnreachableException',
    `kmsvol cannot communicate with an external key store proxy at ${uri}: it does not support external key stores. Create keys in kmsvol itself.`,
  );
}

export function connectCustomKeyStore(k: KmsContext, req: Req) {
  const id = storeId(req);
  k.authorizeIamOnly('kms:ConnectCustomKeyStore');
  throw notFound(k, id);
}

export function disconnectCustomKeyStore(k: KmsContext, req: Req) {
  const id = storeId(req);
  k.authorizeIamOnly('kms:DisconnectCustomKeyStore');
  throw notFound(k, id);
}

export function deleteCustomKeyStore(k: KmsContext, req: Req) {
  const id = storeId(req);
  k.authorizeIamOnly('kms:DeleteCustomKeyStore');
  throw notFound(k, id);
}

export function updateCustomKeyStore(k: KmsContext, req: Req) {
  const id = storeId(req);
  k.authorizeIamOnly('kms:UpdateCustomKeyStore');
  throw notFound(k, id);
}
