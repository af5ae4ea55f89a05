import crypto from 'node:crypto';
import { TokenError } from '../../hsm/token.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import { closeToken, connectionErrorOf, connectToken, sealPassword } from '../keystores/hsm.js';
import { storeNotFound } from '../keystores/keys.js';
import { checkHealth, proxyConfig, sealXksSecret, xksConfigOf } from '../keystores/xks.js';
import { XksBridgeError } from '../keystores/xks-sync.js';
import type { CustomKeyStoreRow } from '../store.js';
import { LIMITS, oneOf, paginate, reqStr, str } from '../validate.js';

/**
 * Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores,
 * UpdateCustomKeyStore, Connect-, Disconnect- and DeleteCustomKeyStore.
 *
 * AWS_CLOUDHSM stores run on a "cluster" made by `kmsvol cloudhsmv2
 * create-cluster` (keystores/clusters.ts): a PKCS#11 token whose user PIN is
 * the KeyStorePassword. ConnectCustomKeyStore logs in to the token in this
 * process and records CONNECTED, or FAILED with the ConnectionErrorCode.
 * EXTERNAL_KEY_STORE stores name an XKS proxy (PUBLIC_ENDPOINT over http(s);
 * VPC_ENDPOINT_SERVICE is refused): Create and Connect ask its
 * GetHealthStatus through the XKS client (keystores/xks.ts, xks-sync.ts).
 */
type Req = Record<string, unknown>;

const invalidState = (message: string) => new KmsError('CustomKeyStoreInvalidStateException', message);

function storeOf(k: KmsContext, id: string): CustomKeyStoreRow {
  const s = k.store.customKeyStore(k.region, id);
  if (!s) throw storeNotFound(k, id);
  return s;
}

function entry(s: CustomKeyStoreRow) {
  return {
    CustomKeyStoreId: s.store_id,
    CustomKeyStoreName: s.name,
    ...(s.cluster_id ? { CloudHsmClusterId: s.cluster_id } : {}),
    ...(s.trust_anchor ? { TrustAnchorCertificate: s.trust_anchor } : {}),
    ConnectionState: s.connection_state,
    ...(s.error_code ? { ConnectionErrorCode: s.error_code } : {}),
    CreationDate: new Date(s.created),
    CustomKeyStoreType: s.type,
    ...(s.type === 'EXTERNAL_KEY_STORE' ? { XksProxyConfiguration: xksShape(s) } : {}),
  };
}

function xksShape(s: CustomKeyStoreRow) {
  const c = xksConfigOf(s);
  return { Connectivity: c.connectivity, AccessKeyId: c.accessKeyId, UriEndpoint: c.uriEndpoint, UriPath: c.uriPath };
}

export function describeCustomKeyStores(k: KmsContext, req: Req) {
  k.authorizeIamOnly('kms:DescribeCustomKeyStores');
  const id = str(req, 'CustomKeyStoreId', { min: 1, max: 64 });
  const name = str(req, 'CustomKeyStoreName', { min: 1, max: 256 });
  if (id !== undefined && name !== undefined) throw KmsErrors.validation('Specify CustomKeyStoreId or CustomKeyStoreName, not both.');
  let rows = k.store.customKeyStores(k.region);
  if (id !== undefined) rows = [storeOf(k, id)];
  if (name !== undefined) {
    rows = rows.filter((r) => r.name === name);
    if (!rows.length) throw new KmsError('CustomKeyStoreNotFoundException', `No custom key store is named ${name} in account ${k.account} in ${k.region}.`);
  }
  const { page, ...more } = paginate(req, rows, LIMITS.DescribeCustomKeyStores, 'DescribeCustomKeyStores', (r) => [r.created, r.store_id]);
  return { CustomKeyStores: page.map(entry), ...more };
}

/** The cluster's certificate and the given trust anchor are the same certificate (compared as DER). */
function sameCertificate(a: string, b: string): boolean {
  try {
    return new crypto.X509Certificate(a).raw.equals(new crypto.X509Certificate(b).raw);
  } catch {
    return false;
  }
}

function password(req: Req): string | undefined {
  return str(req, 'KeyStorePassword', { min: 7, max: 32 });
}

function checkCluster(k: KmsContext, clusterId: string, trustAnchor: string | undefined) {
  const cluster = k.store.hsmCluster(k.region, clusterId);
  if (!cluster)
    throw new KmsError(
      'CloudHsmClusterNotFoundException',
      `AWS CloudHSM cluster ${clusterId} cannot be found in ${k.region}. Create one with kmsvol cloudhsmv2 create-cluster; describe-clusters lists them.`,
    );
  if (cluster.state !== 'ACTIVE') throw new KmsError('CloudHsmClusterNotActiveException', `AWS CloudHSM cluster ${clusterId} is ${cluster.state}, not ACTIVE.`);
  if (trustAnchor !== undefined && !sameCertificate(trustAnchor, cluster.certificate))
    throw new KmsError(
      'IncorrectTrustAnchorException',
      `The TrustAnchorCertificate is not the trust anchor certificate of AWS CloudHSM cluster ${clusterId}. Pass Certificates.ClusterCertificate from cloudhsmv2 describe-clusters.`,
    );
  return cluster;
}

export function createCustomKeyStore(k: KmsContext, req: Req) {
  const name = reqStr(req, 'CustomKeyStoreName', 256);
  const type = oneOf(req, 'CustomKeyStoreType', ['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const) ?? 'AWS_CLOUDHSM';
  k.authorizeIamOnly('kms:CreateCustomKeyStore');
  if (type === 'EXTERNAL_KEY_STORE') return createExternal(k, req, name);
  const clusterId = str(req, 'CloudHsmClusterId', { min: 19, max: 24 });
  const trustAnchor = str(req, 'TrustAnchorCertificate', { min: 1, max: 5000 });
  const pw = password(req);
  if (clusterId === undefined || trustAnchor === undefined || pw === undefined)
    throw KmsErrors.validation('An AWS_CLOUDHSM custom key store needs CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword.');
  const storeId = `cks-${crypto.randomBytes(9).toString('hex').slice(0, 17)}`;
  k.store.write(() => {
    // Precondition: a custom key store's name is unique in the account and Region.
    if (k.store.customKeyStores(k.region).some((s) => s.name === name))
      throw new KmsError(
        'CustomKeyStoreNameInUseException',
        `A custom key store named ${name} already exists in ${k.region}. Choose another CustomKeyStoreName.`,
      );
    checkCluster(k, clusterId, trustAnchor);
    const using = k.store.customKeyStores(k.region).find((s) => s.cluster_id === clusterId);
    if (using)
      throw new KmsError('CloudHsmClusterInUseException', `AWS CloudHSM cluster ${clusterId} is already the cluster of custom key store ${using.store_id}.`);
    k.store.insertCustomKeyStore({
      region: k.region,
      store_id: storeId,
      name,
      type,
      cluster_id: clusterId,
      trust_anchor: trustAnchor,
      sealed_password: sealPassword(k, storeId, pw),
      xks_config: null,
      sealed_xks_secret: null,
      connection_state: 'DISCONNECTED',
      error_code: null,
      created: k.now(),
    });
  });
  return { CustomKeyStoreId: storeId };
}

/** The proxy members of Create/UpdateCustomKeyStore, checked as AWS checks them (http:// allowed for a proxy on this machine). */
function proxyMembers(req: Req, required: boolean) {
  const connectivity = oneOf(req, 'XksProxyConnectivity', ['PUBLIC_ENDPOINT', 'VPC_ENDPOINT_SERVICE'] as const);
  // Precondition: kmsvol has no VPCs: VPC_ENDPOINT_SERVICE connectivity is refused, naming what to use instead.
  if (connectivity === 'VPC_ENDPOINT_SERVICE' || req.XksProxyVpcEndpointServiceName !== undefined)
    throw new KmsError(
      'XksProxyVpcEndpointServiceNotFoundException',
      `The VPC endpoint service ${str(req, 'XksProxyVpcEndpointServiceName', { min: 1, max: 64 }) ?? '(none)'} cannot be found: kmsvol has no VPCs. Use XksProxyConnectivity PUBLIC_ENDPOINT with an http(s) XksProxyUriEndpoint.`,
    );
  const endpoint = str(req, 'XksProxyUriEndpoint', { min: 10, max: 128 });
  const path = str(req, 'XksProxyUriPath', { min: 10, max: 128 });
  const cred = req.XksProxyAuthenticationCredential as { AccessKeyId?: unknown; RawSecretAccessKey?: unknown } | undefined;
  if (required && (connectivity === undefined || endpoint === undefined || path === undefined || cred === undefined))
    throw KmsErrors.validation('An EXTERNAL_KEY_STORE needs XksProxyConnectivity, XksProxyUriEndpoint, XksProxyUriPath and XksProxyAuthenticationCredential.');
  if (endpoint !== undefined && !/^https?:\/\/[a-zA-Z0-9.-]+(:\d{1,5})?$/.test(endpoint))
    throw KmsErrors.validation(`XksProxyUriEndpoint ${endpoint} must be https://host[:port] (http:// for a proxy on this machine), with no path.`);
  if (path !== undefined && !/^(\/[a-zA-Z0-9/_-]+)?\/kms\/xks\/v\d{1,2}$/.test(path))
    throw KmsErrors.validation(`XksProxyUriPath ${path} must end in /kms/xks/v1 (an optional prefix, then /kms/xks/v1).`);
  let credential: { accessKeyId: string; secret: string } | undefined;
  if (cred !== undefined) {
    const ak = cred?.AccessKeyId;
    const sk = cred?.RawSecretAccessKey;
    if (typeof ak !== 'string' || !/^[A-Z2-7]{20,30}$/.test(ak) || typeof sk !== 'string' || !/^[a-zA-Z0-9/+=]{43,64}$/.test(sk))
      throw KmsErrors.validation('XksProxyAuthenticationCredential needs AccessKeyId (20-30 of A-Z, 2-7) and RawSecretAccessKey (43-64 base64 characters).');
    credential = { accessKeyId: ak, secret: sk };
  }
  return { connectivity, endpoint, path, credential };
}

function createExternal(k: KmsContext, req: Req, name: string) {
  const m = proxyMembers(req, true);
  const storeId = `cks-${crypto.randomBytes(9).toString('hex').slice(0, 17)}`;
  const config = { uriEndpoint: m.endpoint!, uriPath: m.path!, connectivity: m.connectivity!, accessKeyId: m.credential!.accessKeyId };
  const row: CustomKeyStoreRow = {
    region: k.region,
    store_id: storeId,
    name,
    type: 'EXTERNAL_KEY_STORE',
    cluster_id: null,
    trust_anchor: null,
    sealed_password: null,
    xks_config: JSON.stringify(config),
    sealed_xks_secret: sealXksSecret(k, storeId, m.credential!.secret),
    connection_state: 'DISCONNECTED',
    error_code: null,
    created: k.now(),
  };
  const unique = () => {
    if (k.store.customKeyStores(k.region).some((s) => s.name === name))
      throw new KmsError(
        'CustomKeyStoreNameInUseException',
        `A custom key store named ${name} already exists in ${k.region}. Choose another CustomKeyStoreName.`,
      );
    const same = k.store
      .customKeyStores(k.region)
      .find((s) => s.xks_config && xksConfigOf(s).uriEndpoint === config.uriEndpoint && xksConfigOf(s).uriPath === config.uriPath);
    if (same)
      throw new KmsError('XksProxyUriInUseException', `${config.uriEndpoint}${config.uriPath} is already the proxy of external key store ${same.store_id}.`);
  };
  unique();
  // AWS KMS checks that the proxy answers with this credential before it creates the store.
  checkHealth(k, proxyConfig(k, row), 'CreateCustomKeyStore');
  k.store.write(() => {
    unique();
    k.store.insertCustomKeyStore(row);
  });
  return { CustomKeyStoreId: storeId };
}

export function connectCustomKeyStore(k: KmsContext, req: Req) {
  const id = reqStr(req, 'CustomKeyStoreId', 64);
  k.authorizeIamOnly('kms:ConnectCustomKeyStore');
  const s = storeOf(k, id);
  // Precondition: ConnectCustomKeyStore is valid in every state but DISCONNECTING and FAILED.
  if (s.connection_state === 'DISCONNECTING' || s.connection_state === 'FAILED')
    throw invalidState(
      `Custom key store ${id} is ${s.connection_state}${s.error_code ? ` (${s.error_code})` : ''}; disconnect it with DisconnectCustomKeyStore, correct the error (UpdateCustomKeyStore), then connect it.`,
    );
  if (s.connection_state === 'CONNECTED') return {};
  if (s.type === 'EXTERNAL_KEY_STORE') return connectExternal(k, s);
  const cluster = s.cluster_id ? checkCluster(k, s.cluster_id, undefined) : undefined;
  if (!cluster) throw KmsErrors.internal(`Custom key store ${id} names no cluster; the store is damaged.`);
  k.store.write(() => k.store.updateCustomKeyStore(k.region, id, { connection_state: 'CONNECTING', error_code: null }));
  let outcome: Partial<CustomKeyStoreRow> = { connection_state: 'CONNECTED', error_code: null };
  try {
    connectToken(k, s, cluster);
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    outcome = { connection_state: 'FAILED', error_code: connectionErrorOf(e) };
  }
  k.store.write(() => k.store.updateCustomKeyStore(k.region, id, outcome));
  return {};
}

function connectExternal(k: KmsContext, s: CustomKeyStoreRow) {
  k.store.write(() => k.store.updateCustomKeyStore(k.region, s.store_id, { connection_state: 'CONNECTING', error_code: null }));
  let outcome: Partial<CustomKeyStoreRow> = { connection_state: 'CONNECTED', error_code: null };
  try {
    checkHealth(k, proxyConfig(k, s), 'ConnectCustomKeyStore');
  } catch (e) {
    if (!(e instanceof XksBridgeError)) throw e;
    outcome = { connection_state: 'FAILED', error_code: e.connectionErrorCode };
  }
  k.store.write(() => k.store.updateCustomKeyStore(k.region, s.store_id, outcome));
  return {};
}

export function disconnectCustomKeyStore(k: KmsContext, req: Req) {
  const id = reqStr(req, 'CustomKeyStoreId', 64);
  k.authorizeIamOnly('kms:DisconnectCustomKeyStore');
  const s = storeOf(k, id);
  // Precondition: DisconnectCustomKeyStore is valid in every state but DISCONNECTING and DISCONNECTED.
  if (s.connection_state === 'DISCONNECTED' || s.connection_state === 'DISCONNECTING')
    throw invalidState(`Custom key store ${id} is ${s.connection_state}; DisconnectCustomKeyStore is valid in every other ConnectionState.`);
  k.store.write(() => k.store.updateCustomKeyStore(k.region, id, { connection_state: 'DISCONNECTED', error_code: null }));
  closeToken(id);
  return {};
}

export function deleteCustomKeyStore(k: KmsContext, req: Req) {
  const id = reqStr(req, 'CustomKeyStoreId', 64);
  k.authorizeIamOnly('kms:DeleteCustomKeyStore');
  k.store.write(() => {
    const s = storeOf(k, id);
    if (s.connection_state !== 'DISCONNECTED')
      throw invalidState(`Custom key store ${id} is ${s.connection_state}; DeleteCustomKeyStore is valid only when it is DISCONNECTED.`);
    // Precondition: a store that holds KMS keys (in any key state) cannot be deleted.
    const n = k.store.customStoreKeyCount(k.region, id);
    if (n > 0)
      throw new KmsError(
        'CustomKeyStoreHasCMKsException',
        `Custom key store ${id} holds ${n} KMS key(s). Schedule their deletion and wait until they are deleted, then delete the store.`,
      );
    k.store.deleteCustomKeyStore(k.region, id);
  });
  return {};
}

export function updateCustomKeyStore(k: KmsContext, req: Req) {
  const id = reqStr(req, 'CustomKeyStoreId', 64);
  const newName = str(req, 'NewCustomKeyStoreName', { min: 1, max: 256 });
  const pw = password(req);
  const clusterId = str(req, 'CloudHsmClusterId', { min: 19, max: 24 });
  k.authorizeIamOnly('kms:UpdateCustomKeyStore');
  const proxy = proxyMembers(req, false);
  const proxyChange = proxy.endpoint !== undefined || proxy.path !== undefined || proxy.credential !== undefined || proxy.connectivity !== undefined;
  k.store.write(() => {
    const s = storeOf(k, id);
    const fields: Partial<CustomKeyStoreRow> = {};
    if (proxyChange) {
      if (s.type !== 'EXTERNAL_KEY_STORE')
        throw KmsErrors.validation(`The XksProxy* members apply to an EXTERNAL_KEY_STORE; custom key store ${id} is ${s.type}.`);
      if (s.connection_state !== 'DISCONNECTED')
        throw invalidState(`Custom key store ${id} is ${s.connection_state}; to change its proxy settings, disconnect it first.`);
      const c = xksConfigOf(s);
      const next = {
        uriEndpoint: proxy.endpoint ?? c.uriEndpoint,
        uriPath: proxy.path ?? c.uriPath,
        connectivity: proxy.connectivity ?? c.connectivity,
        accessKeyId: proxy.credential?.accessKeyId ?? c.accessKeyId,
      };
      fields.xks_config = JSON.stringify(next);
      if (proxy.credential) fields.sealed_xks_secret = sealXksSecret(k, id, proxy.credential.secret);
    }
    if ((pw !== undefined || clusterId !== undefined) && s.type !== 'AWS_CLOUDHSM')
      throw KmsErrors.validation(`KeyStorePassword and CloudHsmClusterId apply to an AWS_CLOUDHSM key store; custom key store ${id} is ${s.type}.`);
    if (newName !== undefined && newName !== s.name) {
      if (k.store.customKeyStores(k.region).some((o) => o.name === newName))
        throw new KmsError('CustomKeyStoreNameInUseException', `A custom key store named ${newName} already exists in ${k.region}.`);
      fields.name = newName;
    }
    if ((pw !== undefined || clusterId !== undefined) && s.connection_state !== 'DISCONNECTED')
      throw invalidState(`Custom key store ${id} is ${s.connection_state}; to change its KeyStorePassword or CloudHsmClusterId, disconnect it first.`);
    if (pw !== undefined) fields.sealed_password = sealPassword(k, id, pw);
    if (clusterId !== undefined && clusterId !== s.cluster_id) {
      const cluster = checkCluster(k, clusterId, undefined);
      // Precondition: the new cluster is related to the old one (the same trust anchor).
      if (!s.trust_anchor || !sameCertificate(cluster.certificate, s.trust_anchor))
        throw new KmsError(
          'CloudHsmClusterNotRelatedException',
          `AWS CloudHSM cluster ${clusterId} is not related to the cluster of custom key store ${id} (another trust anchor).`,
        );
      fields.cluster_id = clusterId;
    }
    if (Object.keys(fields).length) k.store.updateCustomKeyStore(k.region, id, fields);
  });
  return {};
}
