import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, kmsvol } from '../helpers/cli.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let home: string;
let endpoint: string;
let creds: { accessKeyId: string; secretAccessKey: string };
let server: ReturnType<typeof spawn>;

const client = (c = creds, extra: Partial<sdk.KMSClientConfig> = {}) =>
  new sdk.KMSClient({ endpoint, region: 'us-east-1', credentials: c, maxAttempts: 1, ...extra });

beforeAll(async () => {
  home = await fsp.mkdtemp(path.join(os.tmpdir(), 'kmsvol-server-'));
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
  creds = { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey };
  server = spawn(process.execPath, [BIN, 'kms', 'serve', '--port', '0'], { env: { ...process.env, KMSVOL_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /"Endpoint": "([^"]+)"/.exec(out);
      if (m) {
        endpoint = m[1]!;
        resolve();
      }
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
});

afterAll(async () => {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  for (const v of kmsvol(home, ['ec2', 'describe-volumes']).json?.Volumes ?? []) {
    if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force']);
  }
  fs.rmSync(home, { recursive: true, force: true });
});

async function fails<T>(p: Promise<T>, cls: new (...a: never[]) => Error, name: string) {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as Error & { $metadata?: { httpStatusCode?: number } };
  expect(e, `expected ${name}`).toBeInstanceOf(cls);
  expect(e.name).toBe(name);
  expect(e.$metadata?.httpStatusCode).toBe(400);
}

describe('@aws-sdk/client-kms against kmsvol kms serve', () => {
  it('every operation succeeds with AWS field names and types', async () => {
    const c = client();
    const md = (await c.send(new sdk.CreateKeyCommand({ Description: 'conformance', Tags: [{ TagKey: 't', TagValue: 'v' }] }))).KeyMetadata!;
    expect(md.CreationDate).toBeInstanceOf(Date);
    expect(md.KeyState).toBe('Enabled');
    const id = md.KeyId!;
    expect((await c.send(new sdk.DescribeKeyCommand({ KeyId: md.Arn }))).KeyMetadata!.KeyId).toBe(id);
    expect((await c.send(new sdk.ListKeysCommand({}))).Keys!.map((k) => k.KeyId)).toContain(id);
    await c.send(new sdk.UpdateKeyDescriptionCommand({ KeyId: id, Description: 'd2' }));
    await c.send(new sdk.TagResourceCommand({ KeyId: id, Tags: [{ TagKey: 'u', TagValue: 'w' }] }));
    await c.send(new sdk.UntagResourceCommand({ KeyId: id, TagKeys: ['t'] }));
    expect((await c.send(new sdk.ListResourceTagsCommand({ KeyId: id }))).Tags).toEqual([{ TagKey: 'u', TagValue: 'w' }]);
    const enc = await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('hello'), EncryptionContext: { a: 'b' } }));
    expect(enc.CiphertextBlob).toBeInstanceOf(Uint8Array);
    const dec = await c.send(new sdk.DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: 'b' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('hello');
    const id2 = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const re = await c.send(new sdk.ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: { a: 'b' }, DestinationKeyId: id2 }));
    expect(re.KeyId).toContain(id2);
    const g = await c.send(new sdk.GenerateDataKeyCommand({ KeyId: id, NumberOfBytes: 64 }));
    expect(g.Plaintext).toHaveLength(64);
    expect((await c.send(new sdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: id, KeySpec: 'AES_256' }))).CiphertextBlob).toBeInstanceOf(Uint8Array);
    expect((await c.send(new sdk.GenerateRandomCommand({ NumberOfBytes: 32 }))).Plaintext).toHaveLength(32);
    await c.send(new sdk.DisableKeyCommand({ KeyId: id2 }));
    await c.send(new sdk.EnableKeyCommand({ KeyId: id2 }));
    const sched = await c.send(new sdk.ScheduleKeyDeletionCommand({ KeyId: id2, PendingWindowInDays: 7 }));
    expect(sched.DeletionDate).toBeInstanceOf(Date);
    expect(sched.KeyState).toBe('PendingDeletion');
    await c.send(new sdk.CancelKeyDeletionCommand({ KeyId: id2 }));
    await c.send(new sdk.EnableKeyRotationCommand({ KeyId: id, RotationPeriodInDays: 90 }));
    const st = await c.send(new sdk.GetKeyRotationStatusCommand({ KeyId: id }));
    expect(st.KeyRotationEnabled).toBe(true);
    expect(st.NextRotationDate).toBeInstanceOf(Date);
    await c.send(new sdk.RotateKeyOnDemandCommand({ KeyId: id }));
    const rot = await c.send(new sdk.ListKeyRotationsCommand({ KeyId: id }));
    expect(rot.Rotations![0]!.RotationType).toBe('ON_DEMAND');
    expect(rot.Rotations![0]!.RotationDate).toBeInstanceOf(Date);
    await c.send(new sdk.DisableKeyRotationCommand({ KeyId: id }));
    await c.send(new sdk.CreateAliasCommand({ AliasName: 'alias/sdk', TargetKeyId: id }));
    await c.send(new sdk.UpdateAliasCommand({ AliasName: 'alias/sdk', TargetKeyId: id2 }));
    const al = await c.send(new sdk.ListAliasesCommand({}));
    expect(al.Aliases!.find((a) => a.AliasName === 'alias/sdk')!.TargetKeyId).toBe(id2);
    expect(al.Aliases![0]!.CreationDate).toBeInstanceOf(Date);
    await c.send(new sdk.DeleteAliasCommand({ AliasName: 'alias/sdk' }));
    const mrk = (await c.send(new sdk.CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    expect(mrk.KeyId).toMatch(/^mrk-/);
    const rep = await c.send(new sdk.ReplicateKeyCommand({ KeyId: mrk.KeyId, ReplicaRegion: 'eu-west-1' }));
    expect(rep.ReplicaKeyMetadata!.Arn).toBe(`arn:aws:kms:eu-west-1:000000000000:key/${mrk.KeyId}`);
    expect(rep.ReplicaKeyMetadata!.MultiRegionConfiguration!.MultiRegionKeyType).toBe('REPLICA');
    await c.send(new sdk.UpdatePrimaryRegionCommand({ KeyId: mrk.KeyId, PrimaryRegion: 'eu-west-1' }));
    expect((await c.send(new sdk.DescribeKeyCommand({ KeyId: mrk.KeyId }))).KeyMetadata!.MultiRegionConfiguration!.MultiRegionKeyType).toBe('REPLICA');
  });

  it('documented errors arrive as the SDK exception classes, with HTTP 400', async () => {
    const c = client();
    const id = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const other = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
    await fails(c.send(new sdk.DescribeKeyCommand({ KeyId: 'alias/none' })), sdk.NotFoundException, 'NotFoundException');
    await fails(c.send(new sdk.DecryptCommand({ CiphertextBlob: blob, KeyId: other })), sdk.IncorrectKeyException, 'IncorrectKeyException');
    const bad = Buffer.from(blob);
    bad[bad.length - 1]! ^= 1;
    await fails(c.send(new sdk.DecryptCommand({ CiphertextBlob: bad })), sdk.InvalidCiphertextException, 'InvalidCiphertextException');
    await fails(c.send(new sdk.GenerateDataKeyCommand({ KeyId: id })), Error as never, 'ValidationException');
    await c.send(new sdk.CreateAliasCommand({ AliasName: 'alias/dup', TargetKeyId: id }));
    await fails(c.send(new sdk.CreateAliasCommand({ AliasName: 'alias/dup', TargetKeyId: id })), sdk.AlreadyExistsException, 'AlreadyExistsException');
    await c.send(new sdk.DisableKeyCommand({ KeyId: id }));
    await fails(c.send(new sdk.DecryptCommand({ CiphertextBlob: blob })), sdk.DisabledException, 'DisabledException');
    await c.send(new sdk.ScheduleKeyDeletionCommand({ KeyId: other, PendingWindowInDays: 7 }));
    await fails(c.send(new sdk.EncryptCommand({ KeyId: other, Plaintext: Buffer.from('x') })), sdk.KMSInvalidStateException, 'KMSInvalidStateException');
    const k3 = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    for (let i = 0; i < 10; i++) await c.send(new sdk.RotateKeyOnDemandCommand({ KeyId: k3 }));
    await fails(c.send(new sdk.RotateKeyOnDemandCommand({ KeyId: k3 })), sdk.LimitExceededException, 'LimitExceededException');
  });

  it('authentication: unsigned, wrong secret, stale timestamp and unknown access key are refused as AWS refuses them', async () => {
    const unsigned = await new Promise<{ status: number; body: string }>((resolve) => {
      const u = new URL(endpoint);
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/',
          headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.ListKeys' },
        },
        (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: b }));
        },
      );
      req.end('{}');
    });
    expect(unsigned.status).toBe(400);
    expect(JSON.parse(unsigned.body).__type).toBe('MissingAuthenticationTokenException');
    await fails(client({ ...creds, secretAccessKey: 'not-the-secret' }).send(new sdk.ListKeysCommand({})), Error as never, 'InvalidSignatureException');
    const stale = client(creds, { systemClockOffset: -10 * 60 * 1000 });
    const e = await stale.send(new sdk.ListKeysCommand({})).catch((x: Error) => x);
    expect((e as Error).name).toBe('InvalidSignatureException');
    expect((e as Error).message).toMatch(/Signature expired/);
    await fails(
      client({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' }).send(new sdk.ListKeysCommand({})),
      Error as never,
      'UnrecognizedClientException',
    );
  });

  it('volumes through the server: attach works, and fails with DisabledException once the key is disabled through the server', async () => {
    const env = { AWS_ENDPOINT_URL_KMS: endpoint, AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey };
    const c = client();
    const key = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const r = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key], env);
    expect(r.code, r.stderr).toBe(0);
    const vol = r.json.VolumeId;
    const attachEnv = (extra: string[] = []) => kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol, ...extra], env);
    let a = attachEnv();
    expect(a.code, a.stderr).toBe(0);
    const data = crypto.randomBytes(8192);
    fs.writeFileSync(a.json.Device, data, { flag: 'r+' });
    expect(kmsvol(home, ['ec2', 'detach-volume', '--volume-id', vol], env).code).toBe(0);
    await c.send(new sdk.DisableKeyCommand({ KeyId: key }));
    a = attachEnv();
    expect(a.code).toBe(254);
    expect(a.stderr).toContain('An error occurred (DisabledException) when calling the AttachVolume operation');
    await c.send(new sdk.EnableKeyCommand({ KeyId: key }));
    a = attachEnv();
    expect(a.code, a.stderr).toBe(0);
    const back = Buffer.alloc(8192);
    const fd = fs.openSync(a.json.Device, 'r');
    fs.readSync(fd, back, 0, 8192, 0);
    fs.closeSync(fd);
    expect(back.equals(data)).toBe(true);
    expect(kmsvol(home, ['ec2', 'detach-volume', '--volume-id', vol], env).code).toBe(0);
    // With no key named, the volume goes under alias/aws/ebs, which the server creates when first named.
    const managed = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted'], env);
    expect(managed.code, managed.stderr).toBe(0);
    const ebsKey = (await c.send(new sdk.DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }))).KeyMetadata!;
    expect(ebsKey.KeyManager).toBe('AWS');
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', managed.json.VolumeId], env).json.Volumes[0].KmsKeyId).toBe(ebsKey.Arn);
    // The audit log names the authenticated principal.
    const events = kmsvol(home, ['audit', '--event-name', 'Decrypt']).json.Events;
    expect(events.at(-1).userIdentity.arn).toBe('arn:aws:iam::000000000000:user/alice');
  });

  it('policies, grants and imported material through the SDK; AccessDeniedException for another user', async () => {
    const bk = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'bob']).json.AccessKey;
    const bob = client({ accessKeyId: bk.AccessKeyId, secretAccessKey: bk.SecretAccessKey });
    const c = client();
    const id = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const alice = 'arn:aws:iam::000000000000:user/alice';
    const bobArn = 'arn:aws:iam::000000000000:user/bob';
    expect((await c.send(new sdk.ListKeyPoliciesCommand({ KeyId: id }))).PolicyNames).toEqual(['default']);
    const onlyBob = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: bobArn }, Action: 'kms:*', Resource: '*' }] });
    await fails(
      c.send(new sdk.PutKeyPolicyCommand({ KeyId: id, PolicyName: 'default', Policy: onlyBob })),
      sdk.MalformedPolicyDocumentException,
      'MalformedPolicyDocumentException',
    );
    const policy = JSON.stringify({
      Statement: [
        { Sid: 'admin', Effect: 'Allow', Principal: { AWS: alice }, Action: 'kms:*', Resource: '*' },
        { Sid: 'user', Effect: 'Allow', Principal: { AWS: bobArn }, Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: '*' },
      ],
    });
    await c.send(new sdk.PutKeyPolicyCommand({ KeyId: id, PolicyName: 'default', Policy: policy }));
    expect((await c.send(new sdk.GetKeyPolicyCommand({ KeyId: id, PolicyName: 'default' }))).Policy).toBe(policy);
    const denied = (await bob.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x') })).catch((e: unknown) => e)) as Error & {
      $metadata: { httpStatusCode: number };
    };
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.$metadata.httpStatusCode).toBe(400);
    expect(denied.message).toMatch(
      new RegExp(`^User: ${bobArn} is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:us-east-1:000000000000:key/${id}`),
    );

    // A grant lets bob Encrypt under one context only.
    const g = await c.send(
      new sdk.CreateGrantCommand({
        KeyId: id,
        GranteePrincipal: bobArn,
        RetiringPrincipal: alice,
        Operations: ['Encrypt'],
        Constraints: { EncryptionContextSubset: { team: 'blue' } },
        Name: 'bob-blue',
      }),
    );
    expect(g.GrantId).toMatch(/^[0-9a-f]{64}$/);
    expect(
      (
        await c.send(
          new sdk.CreateGrantCommand({
            KeyId: id,
            GranteePrincipal: bobArn,
            RetiringPrincipal: alice,
            Operations: ['Encrypt'],
            Constraints: { EncryptionContextSubset: { team: 'blue' } },
            Name: 'bob-blue',
          }),
        )
      ).GrantId,
    ).toBe(g.GrantId);
    const blob = (
      await bob.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('blue'), EncryptionContext: { team: 'blue' }, GrantTokens: [g.GrantToken!] }))
    ).CiphertextBlob!;
    expect(Buffer.from((await bob.send(new sdk.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { team: 'blue' } }))).Plaintext!).toString()).toBe(
      'blue',
    );
    expect(
      (await bob.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x'), EncryptionContext: { team: 'red' } })).catch((e: Error) => e)).name,
    ).toBe('AccessDeniedException');
    const list = await c.send(new sdk.ListGrantsCommand({ KeyId: id }));
    expect(list.Grants).toHaveLength(1);
    expect(list.Grants![0]!.CreationDate).toBeInstanceOf(Date);
    expect(list.Grants![0]!.Constraints).toEqual({ EncryptionContextSubset: { team: 'blue' } });
    expect((await c.send(new sdk.ListRetirableGrantsCommand({ RetiringPrincipal: alice }))).Grants!.map((x) => x.GrantId)).toEqual([g.GrantId]);
    await fails(c.send(new sdk.RetireGrantCommand({ GrantToken: 'garbage' })), sdk.InvalidGrantTokenException, 'InvalidGrantTokenException');
    await c.send(new sdk.RetireGrantCommand({ GrantToken: g.GrantToken }));
    const g2 = await c.send(new sdk.CreateGrantCommand({ KeyId: id, GranteePrincipal: bobArn, Operations: ['Encrypt'] }));
    await c.send(new sdk.RevokeGrantCommand({ KeyId: id, GrantId: g2.GrantId }));
    expect((await c.send(new sdk.ListGrantsCommand({ KeyId: id }))).Grants).toEqual([]);

    // Imported material: the SDK's own types for the token, the public key and the dates.
    const ext = (await c.send(new sdk.CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const params = await c.send(new sdk.GetParametersForImportCommand({ KeyId: ext, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    expect(params.ImportToken).toBeInstanceOf(Uint8Array);
    expect(params.ParametersValidTo).toBeInstanceOf(Date);
    const pub = crypto.createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
    const wrapMaterial = (m: Buffer) => crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, m);
    const material = crypto.randomBytes(32);
    const validTo = new Date(Math.floor(Date.now() / 1000) * 1000 + 86400_000);
    await c.send(
      new sdk.ImportKeyMaterialCommand({
        KeyId: ext,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: wrapMaterial(material),
        ExpirationModel: 'KEY_MATERIAL_EXPIRES',
        ValidTo: validTo,
      }),
    );
    const md = (await c.send(new sdk.DescribeKeyCommand({ KeyId: ext }))).KeyMetadata!;
    expect(md.KeyState).toBe('Enabled');
    expect(md.ValidTo).toEqual(validTo);
    await fails(
      c.send(
        new sdk.ImportKeyMaterialCommand({
          KeyId: ext,
          ImportToken: params.ImportToken,
          EncryptedKeyMaterial: wrapMaterial(crypto.randomBytes(32)),
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      ),
      sdk.IncorrectKeyMaterialException,
      'IncorrectKeyMaterialException',
    );
    await fails(
      c.send(
        new sdk.ImportKeyMaterialCommand({
          KeyId: ext,
          ImportToken: Buffer.from('nope'),
          EncryptedKeyMaterial: wrapMaterial(material),
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      ),
      sdk.InvalidImportTokenException,
      'InvalidImportTokenException',
    );
    await c.send(new sdk.DeleteImportedKeyMaterialCommand({ KeyId: ext }));
    expect((await c.send(new sdk.DescribeKeyCommand({ KeyId: ext }))).KeyMetadata!.KeyState).toBe('PendingImport');
    await fails(c.send(new sdk.EnableKeyRotationCommand({ KeyId: ext })), sdk.UnsupportedOperationException, 'UnsupportedOperationException');

    // The AWS managed key is used through EC2 only: the plain SDK is refused, kmsvol's volume side is not.
    expect((await c.send(new sdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: 'alias/aws/ebs', NumberOfBytes: 64 })).catch((e: Error) => e)).name).toBe(
      'AccessDeniedException',
    );
  });

  it('text that is not Unicode: a body that is not UTF-8 is SerializationException, a lone surrogate ValidationException; neither opens a blob made under U+FFFD', async () => {
    const c = client();
    const id = (await c.send(new sdk.CreateKeyCommand({ Description: 'utf8' }))).KeyMetadata!.KeyId!;
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('secret'), EncryptionContext: { a: '\ufffd' } }))).CiphertextBlob!;
    // The same Decrypt, its body bytes replaced before signing: the context's value is the byte 0xff, which UTF-8 decoding would make U+FFFD.
    const withBody = (body: Buffer) => {
      const raw = client();
      raw.middlewareStack.add(
        (next) => async (args) => {
          const r = args.request as { body: unknown; headers: Record<string, string> };
          r.body = body;
          r.headers['content-length'] = String(body.length);
          return next(args);
        },
        { step: 'build' },
      );
      return raw;
    };
    const b64 = Buffer.from(blob).toString('base64');
    const notUtf8 = Buffer.concat([Buffer.from(`{"CiphertextBlob":"${b64}","EncryptionContext":{"a":"`), Buffer.from([0xff]), Buffer.from('"}}')]);
    const e1 = (await withBody(notUtf8)
      .send(new sdk.DecryptCommand({ CiphertextBlob: blob }))
      .catch((x: unknown) => x)) as Error & { $metadata: { httpStatusCode: number } };
    expect(e1.name).toBe('SerializationException');
    expect(e1.$metadata.httpStatusCode).toBe(400);
    expect(e1.message).toMatch(/not valid UTF-8/);
    // A lone surrogate (the SDK sends it as the JSON escape \udfff), in a context, a description, a tag: ValidationException, nothing created.
    const e2 = (await c.send(new sdk.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { a: '\udfff' } })).catch((x: unknown) => x)) as Error;
    expect(e2.name).toBe('ValidationException');
    expect(e2.message).toMatch(
      /^1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Member must be valid Unicode text; .*\\udfff/,
    );
    await fails(
      c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: { '\ud800': 'v' } })),
      sdk.KMSServiceException,
      'ValidationException',
    );
    const before = (await c.send(new sdk.ListKeysCommand({ Limit: 1000 }))).Keys!.length;
    await fails(c.send(new sdk.CreateKeyCommand({ Description: 'x\ud800' })), sdk.KMSServiceException, 'ValidationException');
    expect((await c.send(new sdk.ListKeysCommand({ Limit: 1000 }))).Keys!.length).toBe(before);
    await fails(c.send(new sdk.TagResourceCommand({ KeyId: id, Tags: [{ TagKey: 'k', TagValue: '\udc00' }] })), sdk.KMSServiceException, 'ValidationException');
    expect((await c.send(new sdk.ListResourceTagsCommand({ KeyId: id }))).Tags).toEqual([]);
    // The blob still opens under its own context, and a surrogate pair (one character) is text like any other.
    expect(Buffer.from((await c.send(new sdk.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { a: '\ufffd' } }))).Plaintext!).toString()).toBe(
      'secret',
    );
    const pair = (await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: { a: '\ud83d\ude00' } }))).CiphertextBlob!;
    await fails(
      c.send(new sdk.DecryptCommand({ CiphertextBlob: pair, EncryptionContext: { a: '\ufffd' } })),
      sdk.InvalidCiphertextException,
      'InvalidCiphertextException',
    );
    expect((await c.send(new sdk.DecryptCommand({ CiphertextBlob: pair, EncryptionContext: { a: '😀' } }))).KeyId).toContain(id);
  });

  it('statuses other than 400: 413 for an oversized body, 404 off the API path, 500 for KMSInternalException', async () => {
    const raw = (method: string, p: string, body: string | Buffer) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(endpoint);
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            method,
            path: p,
            headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.ListKeys' },
          },
          (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve({ status: res.statusCode!, body: b }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const big = await raw('POST', '/', Buffer.alloc(2 << 20, 0x20));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).__type).toBe('RequestEntityTooLargeException');
    const off = await raw('GET', '/keys', '');
    expect(off.status).toBe(404);
    expect(JSON.parse(off.body).__type).toBe('UnknownOperationException');
    // A damaged store (sealed material changed behind the server's back) is an internal fault: 500.
    const c = client();
    const id = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const db = new Database(path.join(home, 'kms.db'));
    db.prepare('UPDATE materials SET sealed = zeroblob(60) WHERE key_id = ?').run(id);
    db.close();
    const e = (await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x') })).catch((x: unknown) => x)) as Error & {
      $metadata: { httpStatusCode: number };
    };
    expect(e).toBeInstanceOf(sdk.KMSInternalException);
    expect(e.$metadata.httpStatusCode).toBe(500);
    expect(e.message).toMatch(/does not open under this root key/);
    // The server still answers after all three.
    expect((await c.send(new sdk.ListKeysCommand({}))).Keys).toBeDefined();
  });

  it('--kms aws uses the standard credential chain (here a shared credentials profile) and says clearly when it finds none', () => {
    const dir = fs.mkdtempSync(path.join(home, 'aws-'));
    fs.writeFileSync(
      path.join(dir, 'credentials'),
      `[kmsvol-test]\naws_access_key_id = ${creds.accessKeyId}\naws_secret_access_key = ${creds.secretAccessKey}\n`,
    );
    fs.writeFileSync(path.join(dir, 'config'), '[profile kmsvol-test]\nregion = us-east-1\n');
    const base = {
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'),
      AWS_CONFIG_FILE: path.join(dir, 'config'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_ENDPOINT_URL_KMS: endpoint,
    };
    const r = kmsvol(home, ['kms', 'create-key', '--kms', 'aws', '--region', 'us-east-1', '--description', 'through the chain'], {
      ...base,
      AWS_PROFILE: 'kmsvol-test',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.KeyMetadata.Description).toBe('through the chain');
    const events = kmsvol(home, ['audit', '--event-name', 'CreateKey']).json.Events;
    expect(events.at(-1).userIdentity.arn).toBe('arn:aws:iam::000000000000:user/alice');
    const none = kmsvol(home, ['kms', 'list-keys', '--kms', 'aws', '--region', 'us-east-1'], { ...base, AWS_PROFILE: 'nobody' });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('NoCredentialsError');
    expect(none.stderr).toMatch(/Configure them with `aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID/);
    const noRegion = kmsvol(home, ['kms', 'list-keys', '--kms', 'aws'], { ...base, AWS_REGION: '', AWS_DEFAULT_REGION: '', KMSVOL_REGION: '' });
    expect(noRegion.code).toBe(252);
    expect(noRegion.stderr).toContain('--kms aws needs a region');
  });

  it('--workers 2: two processes share the port and the store, and SIGTERM stops them all', async () => {
    const multi = spawn(process.execPath, [BIN, 'kms', 'serve', '--port', '0', '--workers', '2'], {
      env: { ...process.env, KMSVOL_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        multi.stdout!.on('data', (d) => {
          out += d;
          const m = /"Endpoint": "([^"]+)"/.exec(out);
          if (m) resolve(m[1]!);
        });
        multi.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const workers = fs.readFileSync(`/proc/${multi.pid}/task/${multi.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
      expect(workers).toHaveLength(2);
      const c = new sdk.KMSClient({ endpoint: url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
      // Bytes each worker has written (its store and audit writes): both must grow, so both served.
      const wchar = (pid: number) => Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
      const before = workers.map(wchar);
      // Keys made through one worker are used through the other (new connections, one client each, spread over both).
      const ids = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const own = new sdk.KMSClient({ endpoint: url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
          try {
            return (await own.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
          } finally {
            own.destroy();
          }
        }),
      );
      const after = workers.map(wchar);
      workers.forEach((pid, i) => {
        expect(after[i]! - before[i]!, `worker ${pid} served none of 16 CreateKey calls`).toBeGreaterThan(0);
      });
      for (const id of ids) {
        const blob = (await c.send(new sdk.EncryptCommand({ KeyId: id, Plaintext: Buffer.from(id) }))).CiphertextBlob!;
        expect(Buffer.from((await c.send(new sdk.DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe(id);
      }
      c.destroy();
      const exited = new Promise((r) => multi.once('exit', r));
      multi.kill('SIGTERM');
      await exited;
      for (const pid of workers) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    } finally {
      if (multi.exitCode === null) multi.kill('SIGKILL');
    }
  });
});
