import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * Asymmetric and HMAC keys through clients nobody here wrote, against
 * `kmsvol serve`: boto3 from Debian (pytest), @aws-sdk/client-kms and the
 * AWS CLI v2 from Debian, with openssl checking what they get back.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
let home: string;
let server: RunningEndpoint;
let creds: { AccessKeyId: string; SecretAccessKey: string };

beforeAll(async () => {
  home = tempHome('kmsvol-asym-clients-');
  creds = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
  server = await startEndpoint(home);
});
afterAll(async () => {
  await server?.stop();
});

const client = () =>
  new sdk.KMSClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey },
    maxAttempts: 1,
  });

function openssl(args: string[], input?: Buffer) {
  const r = spawnSync('openssl', args, { input });
  expect(r.status, r.stderr.toString()).toBe(0);
  return r.stdout;
}

describe('boto3 (Debian) with asymmetric and HMAC keys', () => {
  it('passes its pytest suite (signatures checked by openssl, modeled exceptions)', () => {
    const { AWS_PROFILE: _p, ...env } = process.env;
    const r = spawnSync('/usr/bin/python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(ROOT, 'test/interop/py/test_asymmetric_boto3.py')], {
      env: {
        ...env,
        KMSVOL_ENDPOINT: server.url,
        AWS_ACCESS_KEY_ID: creds.AccessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      },
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\b8 passed\b/);
  });
});

describe('@aws-sdk/client-kms with asymmetric and HMAC keys', () => {
  it('Sign/Verify/GetPublicKey, GenerateMac/VerifyMac, key pairs, DeriveSharedSecret and GetKeyLastUsage, with modeled exceptions and DryRun', async () => {
    const c = client();
    const dir = tempHome('kmsvol-asym-sdk-');
    const sig = (await c.send(new sdk.CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    expect(sig.SigningAlgorithms).toEqual(['ECDSA_SHA_256']);
    const s = await c.send(new sdk.SignCommand({ KeyId: sig.KeyId, Message: Buffer.from('hello'), SigningAlgorithm: 'ECDSA_SHA_256' }));
    fs.writeFileSync(path.join(dir, 'pub.der'), (await c.send(new sdk.GetPublicKeyCommand({ KeyId: sig.Arn }))).PublicKey!);
    fs.writeFileSync(path.join(dir, 'sig'), s.Signature!);
    fs.writeFileSync(path.join(dir, 'msg'), 'hello');
    openssl(['pkey', '-pubin', '-inform', 'DER', '-in', path.join(dir, 'pub.der'), '-out', path.join(dir, 'pub.pem')]);
    expect(
      openssl(['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'sig'), path.join(dir, 'msg')])
        .toString()
        .trim(),
    ).toBe('Verified OK');
    const bad = Buffer.from(s.Signature!);
    bad[bad.length - 1]! ^= 1;
    await expect(
      c.send(new sdk.VerifyCommand({ KeyId: sig.KeyId, Message: Buffer.from('hello'), Signature: bad, SigningAlgorithm: 'ECDSA_SHA_256' })),
    ).rejects.toBeInstanceOf(sdk.KMSInvalidSignatureException);
    await expect(
      c.send(new sdk.SignCommand({ KeyId: sig.KeyId, Message: Buffer.from('hello'), SigningAlgorithm: 'ECDSA_SHA_256', DryRun: true })),
    ).rejects.toBeInstanceOf(sdk.DryRunOperationException);

    const mac = (await c.send(new sdk.CreateKeyCommand({ KeySpec: 'HMAC_512', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!.KeyId!;
    const m = await c.send(new sdk.GenerateMacCommand({ KeyId: mac, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_512' }));
    expect((await c.send(new sdk.VerifyMacCommand({ KeyId: mac, Message: Buffer.from('x'), Mac: m.Mac, MacAlgorithm: 'HMAC_SHA_512' }))).MacValid).toBe(true);
    await expect(c.send(new sdk.VerifyMacCommand({ KeyId: mac, Message: Buffer.from('y'), Mac: m.Mac, MacAlgorithm: 'HMAC_SHA_512' }))).rejects.toBeInstanceOf(
      sdk.KMSInvalidMacException,
    );

    const sym = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const pair = await c.send(new sdk.GenerateDataKeyPairCommand({ KeyId: sym, KeyPairSpec: 'RSA_3072' }));
    fs.writeFileSync(path.join(dir, 'priv.der'), (await c.send(new sdk.DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob }))).Plaintext!);
    expect(openssl(['pkey', '-inform', 'DER', '-in', path.join(dir, 'priv.der'), '-pubout', '-outform', 'DER']).equals(Buffer.from(pair.PublicKey!))).toBe(
      true,
    );
    const np = await c.send(new sdk.GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' }));
    expect(np.PrivateKeyCiphertextBlob!.length).toBeGreaterThan(100);
    expect((np as { PrivateKeyPlaintext?: unknown }).PrivateKeyPlaintext).toBeUndefined();
    await expect(c.send(new sdk.GenerateDataKeyPairCommand({ KeyId: sig.KeyId, KeyPairSpec: 'RSA_2048' }))).rejects.toBeInstanceOf(
      sdk.InvalidKeyUsageException,
    );

    const ecdh = (await c.send(new sdk.CreateKeyCommand({ KeySpec: 'ECC_NIST_P384', KeyUsage: 'KEY_AGREEMENT' }))).KeyMetadata!.KeyId!;
    const peer = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    fs.writeFileSync(path.join(dir, 'peer.pem'), peer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fs.writeFileSync(path.join(dir, 'kms.der'), (await c.send(new sdk.GetPublicKeyCommand({ KeyId: ecdh }))).PublicKey!);
    const shared = await c.send(
      new sdk.DeriveSharedSecretCommand({ KeyId: ecdh, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer.publicKey.export({ type: 'spki', format: 'der' }) }),
    );
    expect(
      Buffer.from(shared.SharedSecret!).equals(
        openssl(['pkeyutl', '-derive', '-inkey', path.join(dir, 'peer.pem'), '-peerkey', path.join(dir, 'kms.der'), '-peerform', 'DER']),
      ),
    ).toBe(true);

    const usage = await c.send(new sdk.GetKeyLastUsageCommand({ KeyId: ecdh }));
    // The request id is the one the client saw for its DeriveSharedSecret call.
    expect(usage.KeyLastUsage).toMatchObject({
      Operation: 'DeriveSharedSecret',
      CloudTrailEventId: expect.any(String),
      KmsRequestId: shared.$metadata.requestId,
    });
    expect(usage.KeyCreationDate).toBeInstanceOf(Date);
    expect((await c.send(new sdk.DescribeCustomKeyStoresCommand({}))).CustomKeyStores).toEqual([]);
    await expect(c.send(new sdk.DeleteCustomKeyStoreCommand({ CustomKeyStoreId: 'cks-1234567890abcdef0' }))).rejects.toBeInstanceOf(
      sdk.CustomKeyStoreNotFoundException,
    );
    c.destroy();
  });
});

describe('the AWS CLI v2 (Debian) with asymmetric keys', () => {
  it('sign with fileb:// and verify; get-public-key gives DER that openssl reads', () => {
    const dir = tempHome('kmsvol-asym-cli-');
    const { AWS_PROFILE: _p, AWS_ENDPOINT_URL_KMS: _e, ...rest } = process.env;
    const env = {
      ...rest,
      AWS_ACCESS_KEY_ID: creds.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    };
    const aws = (args: string[]) => {
      const r = spawnSync('/usr/bin/aws', ['--endpoint-url', server.url, ...args], { env, encoding: 'utf8', timeout: 60_000 });
      return { code: r.status, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
    };
    const key = aws(['kms', 'create-key', '--key-spec', 'RSA_2048', '--key-usage', 'SIGN_VERIFY']).json.KeyMetadata.KeyId;
    fs.writeFileSync(path.join(dir, 'msg'), 'release 1.0');
    const s = aws(['kms', 'sign', '--key-id', key, '--message', `fileb://${path.join(dir, 'msg')}`, '--signing-algorithm', 'RSASSA_PKCS1_V1_5_SHA_256']);
    expect(s.code, s.stderr).toBe(0);
    fs.writeFileSync(path.join(dir, 'sig'), Buffer.from(s.json.Signature, 'base64'));
    fs.writeFileSync(path.join(dir, 'pub.der'), Buffer.from(aws(['kms', 'get-public-key', '--key-id', key]).json.PublicKey, 'base64'));
    openssl(['pkey', '-pubin', '-inform', 'DER', '-in', path.join(dir, 'pub.der'), '-out', path.join(dir, 'pub.pem')]);
    expect(
      openssl(['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'sig'), path.join(dir, 'msg')])
        .toString()
        .trim(),
    ).toBe('Verified OK');
    const v = aws([
      'kms',
      'verify',
      '--key-id',
      key,
      '--message',
      `fileb://${path.join(dir, 'msg')}`,
      '--signature',
      `fileb://${path.join(dir, 'sig')}`,
      '--signing-algorithm',
      'RSASSA_PKCS1_V1_5_SHA_256',
    ]);
    expect(v.json.SignatureValid).toBe(true);
    fs.writeFileSync(path.join(dir, 'msg'), 'release 1.1');
    const tampered = aws([
      'kms',
      'verify',
      '--key-id',
      key,
      '--message',
      `fileb://${path.join(dir, 'msg')}`,
      '--signature',
      `fileb://${path.join(dir, 'sig')}`,
      '--signing-algorithm',
      'RSASSA_PKCS1_V1_5_SHA_256',
    ]);
    expect(tampered.code).toBe(254);
    expect(tampered.stderr).toContain('An error occurred (KMSInvalidSignatureException) when calling the Verify operation');
  });
});
