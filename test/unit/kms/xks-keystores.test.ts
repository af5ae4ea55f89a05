import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { encodeContext, parseBlob } from '../../../src/kms/blob.js';
import { Kms } from '../../../src/kms/kms.js';
import { XksClient } from '../../../src/xks/client.js';
import { type RunningXksProxy, startXksProxy, XKS_AK, XKS_REGION, XKS_SK } from '../../helpers/xks.js';

/**
 * EXTERNAL_KEY_STORE key stores of the in-process KMS against `kmsvol
 * xks-proxy` (a separate process, its own SoftHSM2 token; run from dist/, as
 * is the KMS's XKS client in its worker: build first).
 */
const URI_PATH = '/tenant-a/kms/xks/v1';
let proxy: RunningXksProxy;
let proxyHome: string;
let home: string;
let kms: Kms;

beforeAll(async () => {
  proxyHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xksp-'));
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xksk-'));
  proxy = await startXksProxy({ home: proxyHome, uriPath: URI_PATH, keyIds: ['ext-1', 'ext-2'], keep: true });
  kms = Kms.open({ home, region: XKS_REGION, clock: new ManualClock(new Date()) });
});
afterAll(async () => {
  kms?.close();
  await proxy?.stop();
  for (const d of [home, proxyHome]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

function name(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).name;
  }
  throw new Error('expected an error');
}

const cred = (sk = XKS_SK) => ({ AccessKeyId: XKS_AK, RawSecretAccessKey: sk });
let n = 0;
function store(over: Record<string, unknown> = {}) {
  return kms.invoke('CreateCustomKeyStore', {
    CustomKeyStoreName: `xks-${++n}`,
    CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
    XksProxyConnectivity: 'PUBLIC_ENDPOINT',
    XksProxyUriEndpoint: proxy.endpoint,
    XksProxyUriPath: URI_PATH,
    XksProxyAuthenticationCredential: cred(),
    ...over,
  }).CustomKeyStoreId;
}

describe('external key stores through kmsvol xks-proxy', () => {
  it('create checks the proxy (unreachable, wrong credential, VPC, path); connect; a key whose ciphertext is KMS-inside, external-outside', async () => {
    expect(name(() => store({ XksProxyUriEndpoint: 'http://127.0.0.1:9' }))).toBe('XksProxyUriUnreachableException');
    expect(name(() => store({ XksProxyAuthenticationCredential: cred(`${XKS_SK.slice(0, -5)}AAAA=`) }))).toBe(
      'XksProxyIncorrectAuthenticationCredentialException',
    );
    expect(name(() => store({ XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE', XksProxyVpcEndpointServiceName: 'com.amazonaws.vpce.x' }))).toBe(
      'XksProxyVpcEndpointServiceNotFoundException',
    );
    expect(name(() => store({ XksProxyUriPath: '/tenant-a/kms/xks/v2/x' }))).toBe('ValidationException');
    const id = store();
    expect(name(() => store({ CustomKeyStoreName: 'other' }))).toBe('XksProxyUriInUseException');
    expect(kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreId: id }).CustomKeyStores[0]).toMatchObject({
      ConnectionState: 'DISCONNECTED',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
      XksProxyConfiguration: { Connectivity: 'PUBLIC_ENDPOINT', AccessKeyId: XKS_AK, UriEndpoint: proxy.endpoint, UriPath: URI_PATH },
    });
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreId: id }).CustomKeyStores[0]!.ConnectionState).toBe('CONNECTED');

    expect(name(() => kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'no-such-key' }))).toBe(
      'XksKeyNotFoundException',
    );
    const md = kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'ext-1' }).KeyMetadata;
    expect(md).toMatchObject({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyConfiguration: { Id: 'ext-1' } });
    expect(name(() => kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'ext-1' }))).toBe('XksKeyAlreadyInUseException');

    const ctx = { purpose: 'test' };
    const ct = Buffer.from(kms.invoke('Encrypt', { KeyId: md.KeyId, Plaintext: Buffer.from('hyok'), EncryptionContext: ctx }).CiphertextBlob);
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: ctx }).Plaintext).toString()).toBe('hyok');
    expect(name(() => kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: { purpose: 'other' } }))).toBe('InvalidCiphertextException');

    // Double encryption, checked with the XKS client itself: the proxy's decryption of the outer layer is KMS's own blob of the same key.
    const outer = parseBlob(ct);
    const body = outer.ciphertext;
    const iv = body.subarray(1, 1 + body[0]!);
    const mdLen = body[1 + body[0]!]!;
    const meta = body.subarray(2 + body[0]!, 2 + body[0]! + mdLen);
    const rest = body.subarray(2 + body[0]! + mdLen);
    const client = new XksClient({ uriEndpoint: proxy.endpoint, uriPath: URI_PATH, accessKeyId: XKS_AK, secretAccessKey: XKS_SK, region: XKS_REGION });
    const aad = Buffer.concat([outer.header, encodeContext(ctx)]);
    const inner = await client.decrypt(
      'ext-1',
      {
        ciphertext: Buffer.from(rest),
        initializationVector: Buffer.from(iv),
        authenticationTag: Buffer.from(outer.tag),
        ...(mdLen ? { ciphertextMetadata: Buffer.from(meta) } : {}),
      },
      aad,
      { kmsOperation: 'Decrypt', kmsRequestId: 'test', awsPrincipalArn: 'arn:aws:iam::000000000000:root', kmsKeyArn: md.Arn },
    );
    const innerBlob = parseBlob(inner);
    expect(innerBlob.keyId).toBe(md.KeyId);
    expect(inner.includes(Buffer.from('hyok'))).toBe(false);
    expect(kms.ctx.store.materials(md.KeyId)).toHaveLength(1);

    const dk = kms.invoke('GenerateDataKey', { KeyId: md.KeyId, KeySpec: 'AES_256' });
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: dk.CiphertextBlob }).Plaintext)).toEqual(Buffer.from(dk.Plaintext));

    kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(name(() => kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: ctx }))).toBe('KMSInvalidStateException');
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: ctx }).Plaintext).toString()).toBe('hyok');
  });

  it('a wrong secret makes Connect end FAILED with INVALID_CREDENTIALS; stopping the proxy fails Decrypt with KMSInvalidStateException', async () => {
    const id = store({ CustomKeyStoreName: 'b', XksProxyUriEndpoint: proxy.endpoint.replace('127.0.0.1', 'localhost') });
    kms.invoke('UpdateCustomKeyStore', { CustomKeyStoreId: id, XksProxyAuthenticationCredential: cred(`${XKS_SK.slice(0, -5)}AAAA=`) });
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreId: id }).CustomKeyStores[0]).toMatchObject({
      ConnectionState: 'FAILED',
      ConnectionErrorCode: 'INVALID_CREDENTIALS',
    });
    kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: id });
    kms.invoke('UpdateCustomKeyStore', { CustomKeyStoreId: id, XksProxyAuthenticationCredential: cred() });
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    const key = kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'ext-2' }).KeyMetadata.KeyId;
    const ct = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x') }).CiphertextBlob;
    await proxy.stop();
    expect(name(() => kms.invoke('Decrypt', { CiphertextBlob: ct }))).toBe('KMSInvalidStateException');
  });
});
