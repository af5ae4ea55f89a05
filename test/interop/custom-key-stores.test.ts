import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { startXksProxy, XKS_AK, XKS_SK } from '../helpers/xks.js';

/**
 * AWS CloudHSM key stores through clients nobody here wrote: boto3 (the volume
 * story, in pytest) and the AWS CLI, against `kmsvol serve`. The cluster is a
 * SoftHSM2 token made by `kmsvol cloudhsmv2 create-cluster` under the home.
 */
const PW = 'kmsuser-Passw0rd';

function cluster(home: string) {
  const made = kmsvol(home, ['cloudhsmv2', 'create-cluster', '--kmsuser-password', PW, '--region', 'us-east-1']);
  expect(made.code, made.stderr).toBe(0);
  const id: string = made.json.Cluster.ClusterId;
  const described = kmsvol(home, ['cloudhsmv2', 'describe-clusters', '--filters', `clusterIds=${id}`, '--region', 'us-east-1']).json.Clusters[0];
  expect(described).toMatchObject({ ClusterId: id, State: 'ACTIVE' });
  const cert = path.join(home, `${id}.pem`);
  fs.writeFileSync(cert, described.Certificates.ClusterCertificate);
  return { id, cert };
}

function aws(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync('/usr/bin/aws', ['--output', 'json', '--endpoint-url', env.AWS_ENDPOINT_URL!, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { code: r.status, out: r.stdout, err: r.stderr, json };
}

function pytest(file: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('/usr/bin/python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-x', path.join(ROOT, 'test/interop/ec2', file)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('AWS CloudHSM key stores through boto3 and the AWS CLI', () => {
  it('the AWS CLI: a wrong trust anchor is IncorrectTrustAnchorException (exit 254); a wrong password FAILED/INVALID_CREDENTIALS; then create-key, encrypt, decrypt in the token', async () => {
    const home = tempHome('kmsvol-cks-');
    const a = cluster(home);
    const b = cluster(home);
    const ep = await startEndpoint(home);
    const wrongAnchor = aws(
      ep.env,
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'cli',
      '--cloud-hsm-cluster-id',
      a.id,
      '--trust-anchor-certificate',
      `file://${b.cert}`,
      '--key-store-password',
      PW,
    );
    expect(wrongAnchor.code, wrongAnchor.err).toBe(254);
    expect(wrongAnchor.err).toContain('IncorrectTrustAnchorException');
    const bad = aws(
      ep.env,
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'bad-pw',
      '--cloud-hsm-cluster-id',
      b.id,
      '--trust-anchor-certificate',
      `file://${b.cert}`,
      '--key-store-password',
      'not-the-pin',
    );
    expect(bad.code, bad.err).toBe(0);
    expect(aws(ep.env, 'kms', 'connect-custom-key-store', '--custom-key-store-id', bad.json.CustomKeyStoreId).code).toBe(0);
    expect(aws(ep.env, 'kms', 'describe-custom-key-stores', '--custom-key-store-id', bad.json.CustomKeyStoreId).json.CustomKeyStores[0]).toMatchObject({
      ConnectionState: 'FAILED',
      ConnectionErrorCode: 'INVALID_CREDENTIALS',
    });
    const store = aws(
      ep.env,
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'cli',
      '--cloud-hsm-cluster-id',
      a.id,
      '--trust-anchor-certificate',
      `file://${a.cert}`,
      '--key-store-password',
      PW,
    ).json.CustomKeyStoreId;
    expect(aws(ep.env, 'kms', 'connect-custom-key-store', '--custom-key-store-id', store).code).toBe(0);
    const key = aws(ep.env, 'kms', 'create-key', '--origin', 'AWS_CLOUDHSM', '--custom-key-store-id', store).json.KeyMetadata;
    expect(key).toMatchObject({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: store, CloudHsmClusterId: a.id });
    const pt = path.join(home, 'pt');
    fs.writeFileSync(pt, 'secret for the token');
    const ct = aws(ep.env, 'kms', 'encrypt', '--key-id', key.KeyId, '--plaintext', `fileb://${pt}`, '--query', 'CiphertextBlob', '--output', 'text');
    const blob = path.join(home, 'blob');
    fs.writeFileSync(blob, Buffer.from(ct.out.trim(), 'base64'));
    const out = aws(ep.env, 'kms', 'decrypt', '--ciphertext-blob', `fileb://${blob}`, '--query', 'Plaintext', '--output', 'text');
    expect(Buffer.from(out.out.trim(), 'base64').toString()).toBe('secret for the token');
  }, 120_000);

  it('boto3: a volume on a CloudHSM key keeps serving through a disconnect, a new attach fails with KMSInvalidStateException and an event, reconnect attaches again', async () => {
    const home = tempHome('kmsvol-cks-');
    const c = cluster(home);
    const ep = await startEndpoint(home);
    const r = await pytest('test_cloudhsm_story.py', { ...ep.env, KMSVOL_ENDPOINT: ep.url, CLUSTER_ID: c.id, CLUSTER_CERT: c.cert, KMSUSER_PASSWORD: PW });
    expect(r.out).toMatch(/1 passed/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);

  it('boto3: a volume on an EXTERNAL_KEY_STORE key (kmsvol xks-proxy) keeps serving through a disconnect; a new attach fails with an event; reconnect attaches', async () => {
    const home = tempHome('kmsvol-xks-');
    const proxyHome = fs.mkdtempSync(path.join(home, 'proxy-'));
    const uriPath = '/story/kms/xks/v1';
    const proxy = await startXksProxy({ home: proxyHome, uriPath, keyIds: ['story-key'], region: 'us-east-1' });
    onCleanup(() => void proxy.stop());
    const ep = await startEndpoint(home);
    const r = await pytest('test_xks_story.py', {
      ...ep.env,
      KMSVOL_ENDPOINT: ep.url,
      XKS_ENDPOINT: proxy.endpoint,
      XKS_PATH: uriPath,
      XKS_AK,
      XKS_SK,
      XKS_KEY: 'story-key',
    });
    expect(r.out).toMatch(/1 passed/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);

  it('the AWS CLI: an external key store with the shorthand credential, create-key with --xks-key-id, encrypt and decrypt through the proxy', async () => {
    const home = tempHome('kmsvol-xks-');
    const proxyHome = fs.mkdtempSync(path.join(home, 'proxy-'));
    const uriPath = '/cli/kms/xks/v1';
    const proxy = await startXksProxy({ home: proxyHome, uriPath, keyIds: ['cli-key'], region: 'us-east-1' });
    onCleanup(() => void proxy.stop());
    const ep = await startEndpoint(home);
    const made = aws(
      ep.env,
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'cli-xks',
      '--custom-key-store-type',
      'EXTERNAL_KEY_STORE',
      '--xks-proxy-connectivity',
      'PUBLIC_ENDPOINT',
      '--xks-proxy-uri-endpoint',
      proxy.endpoint,
      '--xks-proxy-uri-path',
      uriPath,
      '--xks-proxy-authentication-credential',
      `AccessKeyId=${XKS_AK},RawSecretAccessKey=${XKS_SK}`,
    );
    expect(made.code, made.err).toBe(0);
    const store = made.json.CustomKeyStoreId;
    expect(aws(ep.env, 'kms', 'connect-custom-key-store', '--custom-key-store-id', store).code).toBe(0);
    const unknown = aws(ep.env, 'kms', 'create-key', '--origin', 'EXTERNAL_KEY_STORE', '--custom-key-store-id', store, '--xks-key-id', 'not-there');
    expect(unknown.code).toBe(254);
    expect(unknown.err).toContain('XksKeyNotFoundException');
    const key = aws(ep.env, 'kms', 'create-key', '--origin', 'EXTERNAL_KEY_STORE', '--custom-key-store-id', store, '--xks-key-id', 'cli-key').json.KeyMetadata;
    expect(key).toMatchObject({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: store, XksKeyConfiguration: { Id: 'cli-key' } });
    const pt = path.join(home, 'pt');
    fs.writeFileSync(pt, 'held outside');
    const ct = aws(ep.env, 'kms', 'encrypt', '--key-id', key.KeyId, '--plaintext', `fileb://${pt}`, '--query', 'CiphertextBlob', '--output', 'text');
    const blob = path.join(home, 'blob');
    fs.writeFileSync(blob, Buffer.from(ct.out.trim(), 'base64'));
    const out = aws(ep.env, 'kms', 'decrypt', '--ciphertext-blob', `fileb://${blob}`, '--query', 'Plaintext', '--output', 'text');
    expect(Buffer.from(out.out.trim(), 'base64').toString()).toBe('held outside');
  }, 120_000);
});
