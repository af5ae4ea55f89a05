import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { SOFTHSM2_MODULE } from '../../../src/hsm/token.js';
import { createCluster, describeClusters } from '../../../src/kms/keystores/clusters.js';
import { Kms } from '../../../src/kms/kms.js';

// SoftHSM2 takes one configuration per process (vitest forks one per file): one home for the file,
// one cluster (token) per test.
let home: string;
let kms: Kms;
const PW = 'kmsuser-Passw0rd';

beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-cks-'));
  kms = Kms.open({ home, clock: new ManualClock(new Date('2030-01-01T00:00:00Z')) });
});
afterAll(() => {
  kms.close();
  fs.rmSync(home, { recursive: true, force: true });
});

function name(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).name;
  }
  throw new Error('expected an error');
}

function cluster() {
  const c = createCluster(kms.ctx, { kmsuserPassword: PW, softhsmDir: path.join(home, 'hsm') }).Cluster;
  return { id: c.ClusterId, cert: c.Certificates.ClusterCertificate };
}

let n = 0;
function connectedStore() {
  const c = cluster();
  const id = kms.invoke('CreateCustomKeyStore', {
    CustomKeyStoreName: `store-${++n}`,
    CloudHsmClusterId: c.id,
    TrustAnchorCertificate: c.cert,
    KeyStorePassword: PW,
  }).CustomKeyStoreId;
  kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
  return { id, cluster: c };
}

const stateOf = (id: string) => kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreId: id }).CustomKeyStores[0]!;

describe('AWS CloudHSM clusters (cloudhsmv2)', () => {
  it('create-cluster gives an ACTIVE cluster-… with a PEM ClusterCertificate that openssl reads', () => {
    const c = cluster();
    expect(c.id).toMatch(/^cluster-[2-7a-z]{11}$/);
    const d = describeClusters(kms.ctx, [c.id]).Clusters;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ ClusterId: c.id, State: 'ACTIVE' });
    const x = spawnSync('openssl', ['x509', '-noout', '-subject'], { input: c.cert, encoding: 'utf8' });
    expect(x.status).toBe(0);
    expect(x.stdout).toContain(c.id);
  });
});

describe('CreateCustomKeyStore and the connection states', () => {
  it('a store starts DISCONNECTED; Connect makes it CONNECTED; Disconnect DISCONNECTED again', () => {
    const c = cluster();
    const id = kms.invoke('CreateCustomKeyStore', {
      CustomKeyStoreName: 'states',
      CloudHsmClusterId: c.id,
      TrustAnchorCertificate: c.cert,
      KeyStorePassword: PW,
    }).CustomKeyStoreId;
    expect(id).toMatch(/^cks-[0-9a-f]{17}$/);
    expect(stateOf(id)).toMatchObject({
      CustomKeyStoreName: 'states',
      CloudHsmClusterId: c.id,
      ConnectionState: 'DISCONNECTED',
      CustomKeyStoreType: 'AWS_CLOUDHSM',
      TrustAnchorCertificate: c.cert,
    });
    expect(name(() => kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: id }))).toBe('CustomKeyStoreInvalidStateException');
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(stateOf(id).ConnectionState).toBe('CONNECTED');
    expect(name(() => kms.invoke('DeleteCustomKeyStore', { CustomKeyStoreId: id }))).toBe('CustomKeyStoreInvalidStateException');
    kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(stateOf(id).ConnectionState).toBe('DISCONNECTED');
    kms.invoke('DeleteCustomKeyStore', { CustomKeyStoreId: id });
    expect(name(() => stateOf(id))).toBe('CustomKeyStoreNotFoundException');
  });

  it('another certificate as TrustAnchorCertificate is IncorrectTrustAnchorException; a name in use is CustomKeyStoreNameInUseException', () => {
    const a = cluster();
    const b = cluster();
    expect(
      name(() =>
        kms.invoke('CreateCustomKeyStore', { CustomKeyStoreName: 'ta', CloudHsmClusterId: a.id, TrustAnchorCertificate: b.cert, KeyStorePassword: PW }),
      ),
    ).toBe('IncorrectTrustAnchorException');
    expect(
      name(() =>
        kms.invoke('CreateCustomKeyStore', {
          CustomKeyStoreName: 'ta',
          CloudHsmClusterId: 'cluster-aaaaaaaaaaa',
          TrustAnchorCertificate: a.cert,
          KeyStorePassword: PW,
        }),
      ),
    ).toBe('CloudHsmClusterNotFoundException');
    kms.invoke('CreateCustomKeyStore', { CustomKeyStoreName: 'ta', CloudHsmClusterId: a.id, TrustAnchorCertificate: a.cert, KeyStorePassword: PW });
    expect(
      name(() =>
        kms.invoke('CreateCustomKeyStore', { CustomKeyStoreName: 'ta', CloudHsmClusterId: b.id, TrustAnchorCertificate: b.cert, KeyStorePassword: PW }),
      ),
    ).toBe('CustomKeyStoreNameInUseException');
    expect(
      name(() =>
        kms.invoke('CreateCustomKeyStore', { CustomKeyStoreName: 'ta2', CloudHsmClusterId: a.id, TrustAnchorCertificate: a.cert, KeyStorePassword: PW }),
      ),
    ).toBe('CloudHsmClusterInUseException');
  });

  it('a wrong KeyStorePassword makes Connect end FAILED with INVALID_CREDENTIALS; disconnect, update the password, connect', () => {
    const c = cluster();
    const id = kms.invoke('CreateCustomKeyStore', {
      CustomKeyStoreName: 'pw',
      CloudHsmClusterId: c.id,
      TrustAnchorCertificate: c.cert,
      KeyStorePassword: 'wrong-password',
    }).CustomKeyStoreId;
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(stateOf(id)).toMatchObject({ ConnectionState: 'FAILED', ConnectionErrorCode: 'INVALID_CREDENTIALS' });
    expect(name(() => kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id }))).toBe('CustomKeyStoreInvalidStateException');
    kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: id });
    kms.invoke('UpdateCustomKeyStore', { CustomKeyStoreId: id, KeyStorePassword: PW, NewCustomKeyStoreName: 'pw-fixed' });
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: id });
    expect(stateOf(id)).toMatchObject({ ConnectionState: 'CONNECTED', CustomKeyStoreName: 'pw-fixed' });
    expect(stateOf(id).ConnectionErrorCode).toBeUndefined();
    expect(name(() => kms.invoke('UpdateCustomKeyStore', { CustomKeyStoreId: id, KeyStorePassword: PW }))).toBe('CustomKeyStoreInvalidStateException');
  });

  it('DescribeCustomKeyStores pages with Limit and Marker, and finds by name', () => {
    connectedStore();
    connectedStore();
    const all = kms.invoke('DescribeCustomKeyStores', {}).CustomKeyStores;
    expect(all.length).toBeGreaterThanOrEqual(2);
    const p1 = kms.invoke('DescribeCustomKeyStores', { Limit: 1 });
    expect(p1.CustomKeyStores).toHaveLength(1);
    expect(p1.Truncated).toBe(true);
    const p2 = kms.invoke('DescribeCustomKeyStores', { Limit: 1, Marker: p1.NextMarker });
    expect(p2.CustomKeyStores[0]!.CustomKeyStoreId).toBe(all[1]!.CustomKeyStoreId);
    expect(kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreName: all[0]!.CustomKeyStoreName }).CustomKeyStores).toHaveLength(1);
    expect(name(() => kms.invoke('DescribeCustomKeyStores', { CustomKeyStoreName: 'no-such' }))).toBe('CustomKeyStoreNotFoundException');
  });

  it('EXTERNAL_KEY_STORE: VPC_ENDPOINT_SERVICE is refused clearly; a path not ending in /kms/xks/v1 is a ValidationException', () => {
    const base = { CustomKeyStoreName: 'x', CustomKeyStoreType: 'EXTERNAL_KEY_STORE', XksProxyUriEndpoint: 'http://127.0.0.1:1' };
    expect(name(() => kms.invoke('CreateCustomKeyStore', { ...base, XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE' }))).toBe(
      'XksProxyVpcEndpointServiceNotFoundException',
    );
    const cred = { AccessKeyId: 'AKIAXKSPROXYTEST2345', RawSecretAccessKey: 'c2VjcmV0LWZvci1rbXN2b2wteGtzLXRlc3RzLW9ubHk=' };
    expect(
      name(() =>
        kms.invoke('CreateCustomKeyStore', {
          ...base,
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyUriPath: '/kms/xks/v1/extra',
          XksProxyAuthenticationCredential: cred,
        }),
      ),
    ).toBe('ValidationException');
  });
});

describe('keys in an AWS CloudHSM key store', () => {
  it('CreateKey makes the key in the token; DescribeKey names the store and cluster; Encrypt/Decrypt/GenerateDataKey/ReEncrypt work', () => {
    const s = connectedStore();
    const md = kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id }).KeyMetadata;
    expect(md).toMatchObject({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id, CloudHsmClusterId: s.cluster.id, KeyState: 'Enabled' });
    expect(kms.invoke('DescribeKey', { KeyId: md.KeyId }).KeyMetadata).toMatchObject({ CustomKeyStoreId: s.id, CloudHsmClusterId: s.cluster.id });
    // No backing material of the key exists outside the token: the KMS store holds none for it.
    expect(kms.ctx.store.materials(md.KeyId)).toEqual([]);
    expect(md.CurrentKeyMaterialId).toBeUndefined();
    const ctx = { volume: 'vol-1' };
    const ct = kms.invoke('Encrypt', { KeyId: md.KeyId, Plaintext: Buffer.from('secret'), EncryptionContext: ctx }).CiphertextBlob;
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: ctx }).Plaintext).toString()).toBe('secret');
    expect(name(() => kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionContext: { volume: 'vol-2' } }))).toBe('InvalidCiphertextException');
    const changed = Buffer.from(ct);
    changed[changed.length - 20]! ^= 1;
    expect(name(() => kms.invoke('Decrypt', { CiphertextBlob: changed, EncryptionContext: ctx }))).toBe('InvalidCiphertextException');
    const dk = kms.invoke('GenerateDataKey', { KeyId: md.KeyId, NumberOfBytes: 64 });
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: dk.CiphertextBlob }).Plaintext)).toEqual(Buffer.from(dk.Plaintext));
    const soft = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const re = kms.invoke('ReEncrypt', { CiphertextBlob: ct, SourceEncryptionContext: ctx, DestinationKeyId: soft }).CiphertextBlob;
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: re }).Plaintext).toString()).toBe('secret');
    expect(kms.invoke('GenerateRandom', { NumberOfBytes: 16, CustomKeyStoreId: s.id }).Plaintext).toHaveLength(16);
  });

  it('a disconnected store: crypto is KMSInvalidStateException naming the store and state; CreateKey is CustomKeyStoreInvalidStateException; reconnect works', () => {
    const s = connectedStore();
    const key = kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id }).KeyMetadata.KeyId;
    const ct = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x') }).CiphertextBlob;
    kms.invoke('DisconnectCustomKeyStore', { CustomKeyStoreId: s.id });
    let message = '';
    try {
      kms.invoke('Decrypt', { CiphertextBlob: ct });
    } catch (e) {
      expect((e as Error).name).toBe('KMSInvalidStateException');
      message = (e as Error).message;
    }
    expect(message).toContain(s.id);
    expect(message).toContain('DISCONNECTED');
    expect(kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata).toMatchObject({ KeyState: 'Unavailable', Enabled: true });
    expect(name(() => kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256' }))).toBe('KMSInvalidStateException');
    expect(name(() => kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id }))).toBe('CustomKeyStoreInvalidStateException');
    expect(name(() => kms.invoke('GenerateRandom', { NumberOfBytes: 8, CustomKeyStoreId: s.id }))).toBe('CustomKeyStoreInvalidStateException');
    expect(name(() => kms.invoke('DeleteCustomKeyStore', { CustomKeyStoreId: s.id }))).toBe('CustomKeyStoreHasCMKsException');
    kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: s.id });
    expect(kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.KeyState).toBe('Enabled');
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: ct }).Plaintext).toString()).toBe('x');
  });

  it('CreateKey checks Origin, CustomKeyStoreId, KeySpec and MultiRegion as AWS does', () => {
    const s = connectedStore();
    expect(name(() => kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM' }))).toBe('UnsupportedOperationException');
    expect(name(() => kms.invoke('CreateKey', { CustomKeyStoreId: 'cks-1234567890abcdef0' }))).toBe('CustomKeyStoreNotFoundException');
    expect(name(() => kms.invoke('CreateKey', { CustomKeyStoreId: s.id }))).toBe('UnsupportedOperationException');
    expect(name(() => kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id, KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).toBe(
      'UnsupportedOperationException',
    );
    expect(name(() => kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id, MultiRegion: true }))).toBe('UnsupportedOperationException');
    expect(name(() => kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: s.id, XksKeyId: 'k' }))).toBe('UnsupportedOperationException');
  });

  it('pkcs11-tool lists the KMS key in the token as a non-extractable secret key and cannot read its value', () => {
    const s = connectedStore();
    const key = kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: s.id }).KeyMetadata.KeyId;
    const tool = (...args: string[]) =>
      spawnSync('pkcs11-tool', ['--module', SOFTHSM2_MODULE, '--token-label', s.cluster.id, '--login', '--pin', PW, ...args], {
        env: { ...process.env, SOFTHSM2_CONF: path.join(home, 'hsm', 'softhsm2.conf') },
        encoding: 'utf8',
      });
    const list = tool('--list-objects', '--type', 'secrkey');
    expect(list.status).toBe(0);
    const entry = `${list.stdout}`.split(/\n(?=Secret Key Object)/).find((b) => b.includes(`label:      ${key}`));
    expect(entry, list.stdout).toBeDefined();
    expect(entry).toMatch(/AES length 32/);
    expect(entry).toMatch(/never extractable/);
    expect(entry).toMatch(/Access:\s+sensitive/);
    const read = tool('--read-object', '--type', 'secrkey', '--label', key);
    expect(read.status).not.toBe(0);
    expect(`${read.stdout}${read.stderr}`).toMatch(/CKR_ATTRIBUTE_SENSITIVE|sensitive|failed/i);
  });
});
