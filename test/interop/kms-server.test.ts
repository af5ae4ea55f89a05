import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as sdk from '@aws-sdk/client-kms';
import { BIN, kmsvol } from '../helpers/cli.js';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let home: string;
let endpoint: string;
let creds: { accessKeyId: string; secretAccessKey: string };
let server: ReturnType<typeof spawn>;

const client = (c = creds, extra: Partial<sdk.KMSClientConfig> = {}) => new sdk.KMSClient({ endpoint, region: 'local', credentials: c, maxAttempts: 1, ...extra });

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
  const e = (await p.then(() => undefined, (x: unknown) => x)) as Error & { $metadata?: { httpStatusCode?: number } };
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
      const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.ListKeys' } }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      });
      req.end('{}');
    });
    expect(unsigned.status).toBe(400);
    expect(JSON.parse(unsigned.body).__type).toBe('MissingAuthenticationTokenException');
    await fails(client({ ...creds, secretAccessKey: 'not-the-secret' }).send(new sdk.ListKeysCommand({})), Error as never, 'InvalidSignatureException');
    const stale = client(creds, { systemClockOffset: -10 * 60 * 1000 });
    const e = await stale.send(new sdk.ListKeysCommand({})).catch((x: Error) => x);
    expect((e as Error).name).toBe('InvalidSignatureException');
    expect((e as Error).message).toMatch(/Signature expired/);
    await fails(client({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' }).send(new sdk.ListKeysCommand({})), Error as never, 'UnrecognizedClientException');
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
    expect(managed.json.KmsKeyId).toBe(ebsKey.Arn);
    // The audit log names the authenticated principal.
    const events = kmsvol(home, ['audit', '--event-name', 'Decrypt']).json.Events;
    expect(events.at(-1).userIdentity.arn).toBe('arn:aws:iam::000000000000:user/alice');
  });
});

