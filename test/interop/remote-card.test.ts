import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { CARD_ENV } from '../../src/card/spec.js';
import { readImageHeader } from '../../src/volume/luks2.js';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { onCleanup, tempHome } from '../helpers/home.js';

/**
 * Through a remote KMS (`kmsvol serve`, AWS_ENDPOINT_URL_KMS), a card does
 * not decrypt with the user's credentials: it gets a kmsvol-card role session
 * for its own volume from the endpoint's STS, and its grant is the only thing
 * that session may use. The KMS's own audit rows show who the card was; the
 * card's credentials and grant token travel in its spec on stdin, so nothing
 * in its /proc environ or cmdline (readable by every user) gives them away.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The attached card of a volume, as the registry knows it: its pid (checked to be a card process) and its grant token. */
function cardOf(home: string, vol: string): { pid: number; grantToken: string } {
  const registry = new Registry(path.join(home, 'ec2.db'));
  try {
    const a = registry.getAttachment(vol);
    if (a?.state !== 'attached' || !a.grant_token) throw new Error(`${vol} has no attached card with a grant`);
    const argv = fs.readFileSync(`/proc/${a.pid}/cmdline`, 'utf8').split('\0');
    if (!argv[1]?.endsWith(path.join('card', 'main.js'))) throw new Error(`pid ${a.pid} is not a card: ${argv.join(' ')}`);
    return { pid: a.pid, grantToken: a.grant_token };
  } finally {
    registry.close();
  }
}

/** A process's environment, as any user reads it from /proc. */
function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** A home with a kmsvol endpoint, alice (the key's only user) and bob; two volumes under alice's key, the first attached. */
async function setup() {
  const home = tempHome('kmsvol-remote-card-');
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
  const server = await startEndpoint(home);
  const env = { AWS_ENDPOINT_URL_KMS: server.url, AWS_ACCESS_KEY_ID: ak.AccessKeyId, AWS_SECRET_ACCESS_KEY: ak.SecretAccessKey };
  onCleanup(() => {
    for (const v of kmsvol(home, ['ec2', 'describe-volumes'], env).json?.Volumes ?? []) {
      if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force'], env);
    }
  });
  const bk = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'bob']).json.AccessKey;
  const onlyAlice = JSON.stringify({
    Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:user/alice' }, Action: 'kms:*', Resource: '*' }],
  });
  const key = kmsvol(home, ['kms', 'create-key', '--policy', onlyAlice], env).json.KeyMetadata.KeyId as string;
  const [mine, other] = [0, 1].map(() => {
    const r = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key], env);
    expect(r.code, r.stderr).toBe(0);
    return r.json.VolumeId as string;
  }) as [string, string];
  const a = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', mine], env);
  expect(a.code, a.stderr).toBe(0);
  return { home, server, env, ak, bk, key, mine, other };
}

describe('the card through a remote KMS', () => {
  it("is confined by its grant: another volume's data key is refused, and after detach its own is too", async () => {
    const { home, server, env, ak, bk, key, mine, other } = await setup();

    // Another user of the account, whom the key's policy does not name, cannot become the card:
    // the kmsvol-card session for a volume is only for a principal who could make its card grant.
    const asBob = new STSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: bk.AccessKeyId, secretAccessKey: bk.SecretAccessKey },
      maxAttempts: 1,
    });
    const takeover = await asBob
      .send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/kmsvol-card', RoleSessionName: mine }))
      .catch((e: Error) => e);
    expect((takeover as Error).name).toBe('AccessDenied');
    expect((takeover as Error).message).toBe(
      `User: arn:aws:iam::000000000000:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/kmsvol-card`,
    );

    // The KMS's audit rows: the card's Decrypt of its data key was made as the card's role session, through EC2 and its grant.
    const cardArn = `arn:aws:sts::000000000000:assumed-role/kmsvol-card/${mine}`;
    const decrypts = () =>
      fs
        .readFileSync(path.join(home, 'audit.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) => r.eventName === 'Decrypt' && r.requestParameters?.encryptionContext?.['aws:ebs:id'] === mine);
    await expect.poll(() => decrypts().filter((r) => r.userIdentity.arn === cardArn).length).toBe(1);
    const byCard = decrypts().find((r) => r.userIdentity.arn === cardArn);
    expect(byCard.userIdentity).toEqual({ type: 'AssumedRole', arn: cardArn, invokedBy: 'ec2.us-east-1.amazonaws.com' });
    expect(byCard.errorCode).toBeUndefined();
    expect(byCard.additionalEventData.authorization.at(-1)).toMatchObject({ action: 'kms:Decrypt', effect: 'Allow', by: expect.stringMatching(/^grant /) });
    // ...and the user's own credentials never decrypted it for the card (alice's Decrypt is create-volume's key digest, before the attach).
    expect(
      decrypts()
        .filter((r) => r.userIdentity.arn !== cardArn)
        .map((r) => r.userIdentity.arn),
    ).toEqual(['arn:aws:iam::000000000000:user/alice']);
    // The card's process holds no AWS credential of any kind in its environment.
    const card = cardOf(home, mine);
    expect(Object.keys(environOf(card.pid)).filter((k) => /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE)$/.test(k))).toEqual([]);

    // What a kmsvol-card session of this volume may do (alice gets one as the control plane does for the card): its grant, nothing more.
    const asAlice = new STSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
      maxAttempts: 1,
    });
    const session = (
      await asAlice.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/kmsvol-card', RoleSessionName: mine, DurationSeconds: 900 }))
    ).Credentials!;
    expect(session.AccessKeyId).toMatch(/^ASIA/);
    const asCard = new sdk.KMSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: session.AccessKeyId!, secretAccessKey: session.SecretAccessKey!, sessionToken: session.SessionToken! },
      maxAttempts: 1,
    });
    const token = (vol: string) => readImageHeader(path.join(home, 'volumes', `${vol}.img`)).token;
    const decrypt = (vol: string) => {
      const t = token(vol);
      return asCard.send(
        new sdk.DecryptCommand({
          CiphertextBlob: Buffer.from(t.ciphertextBlob, 'base64'),
          EncryptionContext: t.encryptionContext,
          KeyId: t.keyArn,
          GrantTokens: [card.grantToken],
        }),
      );
    };
    const own = await decrypt(mine!);
    expect(own.Plaintext).toHaveLength(64);
    Buffer.from(own.Plaintext!).fill(0);
    const refused = await decrypt(other!).catch((e: Error) => e);
    expect((refused as Error).name).toBe('AccessDeniedException');
    expect((refused as Error).message).toContain(`assumed-role/kmsvol-card/${mine}`);
    // Nothing else either: the session has no permission of its own.
    await expect(asCard.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') }))).rejects.toHaveProperty('name', 'AccessDeniedException');

    expect(kmsvol(home, ['ec2', 'detach-volume', '--volume-id', mine], env).code).toBe(0);
    await expect(decrypt(mine)).rejects.toHaveProperty('name', 'AccessDeniedException');
  });

  it("keeps its secrets out of /proc: the card's environ and cmdline hold no credential, session token or grant token", async () => {
    const { home, env, ak, mine } = await setup();
    const card = cardOf(home, mine);
    const environ = fs.readFileSync(`/proc/${card.pid}/environ`, 'utf8');
    const cmdline = fs.readFileSync(`/proc/${card.pid}/cmdline`, 'utf8');
    // The card got a role session and a grant token (it unwrapped its key with them): neither is anywhere a user can read.
    expect(card.grantToken.length).toBeGreaterThan(20);
    for (const [what, text] of [
      ['environ', environ],
      ['cmdline', cmdline],
    ] as const) {
      expect(text, what).not.toContain(card.grantToken);
      expect(text, what).not.toContain(ak.SecretAccessKey);
      expect(text, what).not.toContain(ak.AccessKeyId);
      expect(text, what).not.toMatch(/ASIA[A-Z0-9]{12,}/);
      expect(text, what).not.toMatch(/AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)|GRANT_TOKEN|KMSVOL_KMS|AWS_ENDPOINT_URL/);
    }
    // The environment is the card's short list and nothing else; argv is node, the card, and the volume id as a label.
    expect(Object.keys(environOf(card.pid)).every((k) => (CARD_ENV as readonly string[]).includes(k))).toBe(true);
    expect(cmdline.split('\0').filter(Boolean).slice(2)).toEqual([mine]);
    expect(kmsvol(home, ['ec2', 'detach-volume', '--volume-id', mine], env).code).toBe(0);
  });
});
