import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * AWS's "rotate imported key material on demand", through @aws-sdk/client-kms
 * (Debian's botocore predates ImportType) against `kmsvol serve`, with the
 * material wrapped by openssl pkeyutl as AWS's guide does it.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
let home: string;
let server: RunningEndpoint;
let kms: sdk.KMSClient;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-import-rotation-'));
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'admin']).json.AccessKey;
  server = await startEndpoint(home);
  kms = new sdk.KMSClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

/** GetParametersForImport, then the material wrapped with openssl pkeyutl (RSAES_OAEP_SHA_256). */
async function wrapped(keyId: string, material: Buffer) {
  const p = await kms.send(new sdk.GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
  const dir = fs.mkdtempSync(path.join(home, 'wrap-'));
  fs.writeFileSync(path.join(dir, 'pub.der'), p.PublicKey!);
  fs.writeFileSync(path.join(dir, 'material.bin'), material, { mode: 0o600 });
  execFileSync('openssl', [
    'pkeyutl',
    '-encrypt',
    '-in',
    path.join(dir, 'material.bin'),
    '-out',
    path.join(dir, 'wrapped.bin'),
    '-inkey',
    path.join(dir, 'pub.der'),
    '-keyform',
    'DER',
    '-pubin',
    '-pkeyopt',
    'rsa_padding_mode:oaep',
    '-pkeyopt',
    'rsa_oaep_md:sha256',
  ]);
  const out = { ImportToken: p.ImportToken, EncryptedKeyMaterial: fs.readFileSync(path.join(dir, 'wrapped.bin')) };
  fs.rmSync(dir, { recursive: true });
  return out;
}

describe('on-demand rotation of imported key material (SDK)', () => {
  it('NEW_KEY_MATERIAL waits as PENDING_ROTATION, RotateKeyOnDemand makes it current, and old ciphertext still decrypts', async () => {
    const keyId = (await kms.send(new sdk.CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const forever = { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' as const };
    const first = await kms.send(
      new sdk.ImportKeyMaterialCommand({ KeyId: keyId, ...(await wrapped(keyId, crypto.randomBytes(32))), ...forever, KeyMaterialDescription: 'v1' }),
    );
    const old = (await kms.send(new sdk.EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('old') }))).CiphertextBlob!;
    const second = await kms.send(
      new sdk.ImportKeyMaterialCommand({
        KeyId: keyId,
        ...(await wrapped(keyId, crypto.randomBytes(32))),
        ...forever,
        ImportType: 'NEW_KEY_MATERIAL',
        KeyMaterialDescription: 'v2',
      }),
    );
    const list = async () =>
      (await kms.send(new sdk.ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }))).Rotations!.map((r) => ({
        id: r.KeyMaterialId,
        state: r.KeyMaterialState,
        description: r.KeyMaterialDescription,
        type: r.RotationType,
        imported: r.ImportState,
      }));
    expect(await list()).toEqual([
      { id: first.KeyMaterialId, state: 'CURRENT', description: 'v1', type: undefined, imported: 'IMPORTED' },
      { id: second.KeyMaterialId, state: 'PENDING_ROTATION', description: 'v2', type: undefined, imported: 'IMPORTED' },
    ]);
    await kms.send(new sdk.RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect(await list()).toEqual([
      { id: first.KeyMaterialId, state: 'NON_CURRENT', description: 'v1', type: undefined, imported: 'IMPORTED' },
      { id: second.KeyMaterialId, state: 'CURRENT', description: 'v2', type: 'ON_DEMAND', imported: 'IMPORTED' },
    ]);
    expect((await kms.send(new sdk.DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId).toBe(second.KeyMaterialId);
    const dec = await kms.send(new sdk.DecryptCommand({ CiphertextBlob: old }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('old');
    expect(dec.KeyMaterialId).toBe(first.KeyMaterialId);
    // Without material pending rotation, RotateKeyOnDemand is refused.
    await expect(kms.send(new sdk.RotateKeyOnDemandCommand({ KeyId: keyId }))).rejects.toMatchObject({ name: 'KMSInvalidStateException' });
  });
});
