import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { tempHome } from '../helpers/home.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const SYM = '11111111-1111-4111-8111-111111111111';
const RSA = '22222222-2222-4222-8222-222222222222';
const ECC = '33333333-3333-4333-8333-333333333333';
const HMAC = '44444444-4444-4444-8444-444444444444';
const GEN = '55555555-5555-4555-8555-555555555555';

function openssl(args: string[]) {
  const r = spawnSync('openssl', args, { encoding: 'buffer' });
  expect(r.status, r.stderr.toString()).toBe(0);
  return r.stdout;
}

/** A seed file with symmetric, RSA, ECC and HMAC keys, given material, aliases, tags, a policy and a disabled key. */
function writeSeed(dir: string, hmacKey: Buffer, symKey: Buffer) {
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path.join(dir, 'rsa.pem')]);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path.join(dir, 'ec.pem')]);
  const indent = (pem: string) =>
    pem
      .trim()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
  const policy = {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:root' }, Action: 'kms:*', Resource: '*' },
      { Sid: 'No signing by eve', Effect: 'Deny', Principal: { AWS: 'arn:aws:iam::000000000000:user/eve' }, Action: 'kms:Sign', Resource: '*' },
    ],
  };
  const yaml = `# kmsvol seed file (test fixture)
Keys:
  - KeyId: ${SYM}
    Description: envelope key
    KeyMaterial: ${symKey.toString('base64')}
    Aliases: [alias/app/data]
    Tags: { team: storage }
  - KeyId: ${RSA}
    KeySpec: RSA_2048
    KeyUsage: SIGN_VERIFY
    Description: release signing
    Aliases: [alias/app/signing]
    Policy: ${JSON.stringify(JSON.stringify(policy))}
    KeyMaterial: |
${indent(fs.readFileSync(path.join(dir, 'rsa.pem'), 'utf8'))}
  - KeyId: ${ECC}
    KeySpec: ECC_NIST_P256
    KeyUsage: KEY_AGREEMENT
    KeyMaterial: |
${indent(fs.readFileSync(path.join(dir, 'ec.pem'), 'utf8'))}
  - KeyId: ${HMAC}
    KeySpec: HMAC_256
    KeyMaterial: ${hmacKey.toString('base64')}
    Tags:
      - { TagKey: purpose, TagValue: tokens }
  - KeyId: ${GEN}
    Description: generated material, disabled
    KeyState: Disabled
`;
  fs.writeFileSync(path.join(dir, 'seed.yaml'), yaml);
  return path.join(dir, 'seed.yaml');
}

describe('seed files', () => {
  it('serve --seed loads keys with given material, aliases and a policy; a restart with the same seed changes nothing and old blobs decrypt', async () => {
    const home = tempHome('kmsvol-seed-');
    const dir = tempHome('kmsvol-seedfile-');
    const hmacKey = crypto.randomBytes(32);
    const symKey = crypto.randomBytes(32);
    const seed = writeSeed(dir, hmacKey, symKey);
    const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'tester']).json.AccessKey;
    let ep = await startEndpoint(home, ['--seed', seed]);
    const client = () =>
      new sdk.KMSClient({
        endpoint: ep.url,
        region: 'us-east-1',
        credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
        maxAttempts: 1,
      });
    let c = client();
    const md = (id: string) => c.send(new sdk.DescribeKeyCommand({ KeyId: id })).then((r) => r.KeyMetadata!);
    expect(await md('alias/app/data')).toMatchObject({
      KeyId: SYM,
      KeySpec: 'SYMMETRIC_DEFAULT',
      Origin: 'EXTERNAL',
      KeyState: 'Enabled',
      Description: 'envelope key',
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    });
    expect(await md(RSA)).toMatchObject({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Origin: 'EXTERNAL' });
    expect(await md(ECC)).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
    expect(await md(HMAC)).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(await md(GEN)).toMatchObject({ KeySpec: 'SYMMETRIC_DEFAULT', Origin: 'AWS_KMS', KeyState: 'Disabled' });
    expect((await c.send(new sdk.ListResourceTagsCommand({ KeyId: SYM }))).Tags).toEqual([{ TagKey: 'team', TagValue: 'storage' }]);
    expect(JSON.parse((await c.send(new sdk.GetKeyPolicyCommand({ KeyId: RSA }))).Policy!).Statement[1].Sid).toBe('No signing by eve');
    // The given material is the material used: GetPublicKey is the PEM's public key, the MAC is openssl's.
    const pub = Buffer.from((await c.send(new sdk.GetPublicKeyCommand({ KeyId: 'alias/app/signing' }))).PublicKey!);
    expect(pub.equals(openssl(['pkey', '-in', path.join(dir, 'rsa.pem'), '-pubout', '-outform', 'DER']))).toBe(true);
    const mac = Buffer.from((await c.send(new sdk.GenerateMacCommand({ KeyId: HMAC, Message: Buffer.from('token'), MacAlgorithm: 'HMAC_SHA_256' }))).Mac!);
    expect(mac.equals(crypto.createHmac('sha256', hmacKey).update('token').digest())).toBe(true);
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: 'alias/app/data', Plaintext: Buffer.from('before restart'), EncryptionContext: { a: 'b' } })))
      .CiphertextBlob!;
    const sig = (await c.send(new sdk.SignCommand({ KeyId: RSA, Message: Buffer.from('release'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))).Signature!;
    const keysBefore = (await c.send(new sdk.ListKeysCommand({}))).Keys!.map((k) => k.KeyId).sort();
    c.destroy();
    await ep.stop();

    // Restart with the same seed: nothing changes, and what was made before still works.
    ep = await startEndpoint(home, ['--seed', seed]);
    c = client();
    expect((await c.send(new sdk.ListKeysCommand({}))).Keys!.map((k) => k.KeyId).sort()).toEqual(keysBefore);
    expect(
      (await c.send(new sdk.ListAliasesCommand({}))).Aliases!.filter((a) => a.AliasName!.startsWith('alias/app/')).map((a) => [a.AliasName, a.TargetKeyId]),
    ).toEqual([
      ['alias/app/data', SYM],
      ['alias/app/signing', RSA],
    ]);
    const dec = await c.send(new sdk.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { a: 'b' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('before restart');
    expect(
      (await c.send(new sdk.VerifyCommand({ KeyId: RSA, Message: Buffer.from('release'), Signature: sig, SigningAlgorithm: 'RSASSA_PSS_SHA_256' })))
        .SignatureValid,
    ).toBe(true);
    c.destroy();
    await ep.stop();

    // The audit log records each seeded key's creation, once.
    const created = kmsvol(home, ['audit', '--event-name', 'CreateKey']).json;
    const ids = created.Events.map((r: { responseElements: { keyMetadata: { keyId: string } } }) => r.responseElements.keyMetadata.keyId);
    expect(ids.filter((id: string) => [SYM, RSA, ECC, HMAC, GEN].includes(id)).sort()).toEqual([SYM, RSA, ECC, HMAC, GEN].sort());
    // kms seed again: all unchanged. A file that disagrees with the store names the key and the field, and changes nothing.
    const again = kmsvol(home, ['kms', 'seed', seed]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toEqual({
      Created: [],
      Unchanged: [SYM, RSA, ECC, HMAC, GEN].map((id) => `arn:aws:kms:us-east-1:000000000000:key/${id}`),
      AliasesCreated: [],
    });
    fs.writeFileSync(
      seed,
      fs
        .readFileSync(seed, 'utf8')
        .replace('Description: envelope key', 'Description: another')
        .replace('Keys:\n', `Keys:\n  - KeyId: 66666666-6666-4666-8666-666666666666\n`),
    );
    const conflict = kmsvol(home, ['kms', 'seed', seed]);
    expect(conflict.code).toBe(254);
    expect(conflict.stderr).toContain('SeedConflictException');
    expect(conflict.stderr).toContain(`key/${SYM}: field Description is "envelope key" in the store but "another" in the seed file`);
    expect(kmsvol(home, ['kms', 'describe-key', '--key-id', '66666666-6666-4666-8666-666666666666']).code).toBe(254);
  });

  it('refuses material that does not fit the spec, and unknown fields, naming the key', () => {
    const home = tempHome('kmsvol-seed-');
    const dir = tempHome('kmsvol-seedfile-');
    const bad = (body: string) => {
      fs.writeFileSync(path.join(dir, 's.json'), body);
      return kmsvol(home, ['kms', 'seed', path.join(dir, 's.json')]);
    };
    const short = bad(JSON.stringify({ Keys: [{ KeyId: HMAC, KeySpec: 'HMAC_512', KeyMaterial: crypto.randomBytes(32).toString('base64') }] }));
    expect(short.code).toBe(254);
    expect(short.stderr).toContain(`${HMAC}: Key material for an HMAC_512 key is 64 bytes; this material is 32 bytes.`);
    const typo = bad(JSON.stringify({ Keys: [{ KeyId: SYM, Descripton: 'x' }] }));
    expect(typo.stderr).toContain(`Keys[0] (${SYM}): unknown field Descripton`);
    const wrongKey = bad(
      JSON.stringify({
        Keys: [
          {
            KeyId: RSA,
            KeySpec: 'RSA_3072',
            KeyUsage: 'SIGN_VERIFY',
            KeyMaterial: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
          },
        ],
      }),
    );
    expect(wrongKey.stderr).toContain('an RSA private key of 3072 bits');
    expect(kmsvol(home, ['kms', 'list-keys']).json.Keys).toEqual([]);
  });
});
