import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { readImageHeader } from '../../src/volume/luks2.js';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { onCleanup, tempHome } from '../helpers/home.js';

/**
 * Through a remote KMS (`kmsvol serve`, AWS_ENDPOINT_URL_KMS), a card does
 * not decrypt with the user's credentials: it gets a kmsvol-card role session
 * for its own volume from the endpoint's STS, and its grant is the only thing
 * that session may use. The card's credentials are read where the card holds
 * them (its process environment), as an attacker who took over the card would.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The card process of a volume: argv is exactly node, card/main.js, home, volume id, ... */
function cardEnv(home: string, vol: string): Record<string, string> {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[1]?.endsWith(path.join('card', 'main.js')) && argv[2] === home && argv[3] === vol) {
      return Object.fromEntries(
        fs
          .readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    }
  }
  throw new Error(`no card process for ${vol}`);
}

describe('the card through a remote KMS', () => {
  it("is confined by its grant: another volume's data key is refused, and after detach its own is too", async () => {
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
    const key = kmsvol(home, ['kms', 'create-key', '--policy', onlyAlice], env).json.KeyMetadata.KeyId;
    const [mine, other] = [0, 1].map(() => {
      const r = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key], env);
      expect(r.code, r.stderr).toBe(0);
      return r.json.VolumeId as string;
    });
    const a = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', mine!], env);
    expect(a.code, a.stderr).toBe(0);

    // Another user of the account, whom the key's policy does not name, cannot become the card:
    // the kmsvol-card session for a volume is only for a principal who could make its card grant.
    const asBob = new STSClient({
      endpoint: server.url,
      region: 'local',
      credentials: { accessKeyId: bk.AccessKeyId, secretAccessKey: bk.SecretAccessKey },
      maxAttempts: 1,
    });
    const takeover = await asBob
      .send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/kmsvol-card', RoleSessionName: mine! }))
      .catch((e: Error) => e);
    expect((takeover as Error).name).toBe('AccessDenied');
    expect((takeover as Error).message).toBe(
      `User: arn:aws:iam::000000000000:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/kmsvol-card`,
    );

    const card = cardEnv(home, mine!);
    expect(card.AWS_ACCESS_KEY_ID).toMatch(/^ASIA/);
    expect(card.AWS_ACCESS_KEY_ID).not.toBe(ak.AccessKeyId);
    expect(card.AWS_SESSION_TOKEN).toBeTruthy();
    const asCard = new sdk.KMSClient({
      endpoint: server.url,
      region: 'local',
      credentials: { accessKeyId: card.AWS_ACCESS_KEY_ID!, secretAccessKey: card.AWS_SECRET_ACCESS_KEY!, sessionToken: card.AWS_SESSION_TOKEN! },
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
          GrantTokens: card.KMSVOL_CARD_GRANT_TOKEN ? [card.KMSVOL_CARD_GRANT_TOKEN] : undefined,
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

    expect(kmsvol(home, ['ec2', 'detach-volume', '--volume-id', mine!], env).code).toBe(0);
    await expect(decrypt(mine!)).rejects.toHaveProperty('name', 'AccessDeniedException');
  });
});
