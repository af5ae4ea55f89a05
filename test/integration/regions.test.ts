import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { Kms, Kmsvol } from '../../src/index.js';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { tempHome } from '../helpers/home.js';
import { volumeHome } from '../helpers/volumes.js';

/**
 * The card works in the region its caller chose, however it was chosen: the
 * volume's data key lives in that region's KMS namespace, and a card that
 * opened another region's KMS could not unwrap it.
 */
describe('regions reach the card', () => {
  for (const [how, args, env] of [
    ['--region', ['--region', 'us-east-1'], {}],
    ['AWS_REGION', [], { AWS_REGION: 'eu-west-1', KMSVOL_REGION: '' }],
  ] as const) {
    it(`a volume created and attached with ${how} attaches and detaches`, () => {
      const { home } = volumeHome();
      const created = kmsvol(home, [...args, 'ec2', 'create-volume', '--size', '1', '--encrypted'], { ...env });
      expect(created.code, created.stderr).toBe(0);
      // No key named: create-volume answers none, as EC2 does; describe-volumes shows the default key's ARN.
      expect(created.json.KmsKeyId).toBeUndefined();
      const described = kmsvol(home, [...args, 'ec2', 'describe-volumes', '--volume-ids', created.json.VolumeId], { ...env }).json.Volumes[0];
      expect(described.KmsKeyId).toMatch(how === '--region' ? /^arn:aws:kms:us-east-1:/ : /^arn:aws:kms:eu-west-1:/);
      const a = kmsvol(home, [...args, 'ec2', 'attach-volume', '--volume-id', created.json.VolumeId], { ...env });
      expect(a.code, a.stderr).toBe(0);
      expect(a.json.State).toBe('attached');
      const d = kmsvol(home, [...args, 'ec2', 'detach-volume', '--volume-id', created.json.VolumeId], { ...env });
      expect(d.code, d.stderr).toBe(0);
    });
  }

  it('the Kmsvol API honours AWS_REGION as the CLI does: its key, its volume and its card are in that region', async () => {
    const saved = { AWS_REGION: process.env.AWS_REGION, KMSVOL_REGION: process.env.KMSVOL_REGION };
    process.env.AWS_REGION = 'eu-west-1';
    delete process.env.KMSVOL_REGION;
    let kv: Kmsvol;
    try {
      kv = Kmsvol.open();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    try {
      const vol = await kv.createVolume({ Size: 1, Encrypted: true });
      const described = (await kv.describeVolumes({ VolumeIds: [vol.VolumeId] })).Volumes[0]!;
      expect(described.KmsKeyId).toMatch(/^arn:aws:kms:eu-west-1:000000000000:key\//);
      const a = await kv.attachVolume(vol.VolumeId);
      expect(a.State).toBe('attached');
      await kv.detachVolume(vol.VolumeId);
      // The card recorded its attach in the same region: it unwrapped the key from eu-west-1's KMS.
      const attached = kv.events().filter((e) => e.detail.event === 'attachVolume' && e.detail.result === 'attached');
      expect(attached.map((e) => e.region)).toEqual(['eu-west-1']);
    } finally {
      await kv.close();
    }
  });
});

/** Run fn with these environment variables (undefined: unset), restoring them after. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (vs: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vs)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  try {
    return fn();
  } finally {
    apply(saved);
  }
}

describe('one rule for region and account (src/config.ts), wherever they are chosen', () => {
  it('Kms.open chooses the region as the CLI does: AWS_REGION when KMSVOL_REGION is unset or empty', () => {
    for (const KMSVOL_REGION of [undefined, '']) {
      const home = tempHome();
      const env = { AWS_REGION: 'eu-west-2', KMSVOL_REGION };
      const cli = kmsvol(home, ['kms', 'create-key'], { AWS_REGION: 'eu-west-2', KMSVOL_REGION: '' });
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.json.KeyMetadata.Arn).toMatch(/^arn:aws:kms:eu-west-2:/);
      const kms = withEnv(env, () => Kms.open({ home }));
      try {
        expect(kms.region).toBe('eu-west-2');
        // The key the CLI made is in the library's namespace: the same ARN.
        expect(kms.invoke('DescribeKey', { KeyId: cli.json.KeyMetadata.KeyId }).KeyMetadata!.Arn).toBe(cli.json.KeyMetadata.Arn);
      } finally {
        kms.close();
      }
    }
  });

  it('the ec2 commands choose the account as the kms commands do (KMSVOL_ACCOUNT_ID set, and empty as unset)', () => {
    const home = tempHome();
    for (const [KMSVOL_ACCOUNT_ID, want] of [
      ['111122223333', '111122223333'],
      ['', '000000000000'],
    ] as const) {
      const env = { KMSVOL_ACCOUNT_ID };
      const key = kmsvol(home, ['kms', 'create-key'], env);
      expect(key.code, key.stderr).toBe(0);
      expect(key.json.KeyMetadata.AWSAccountId).toBe(want);
      const owner = kmsvol(home, ['ec2', 'describe-instances'], env);
      expect(owner.code, owner.stderr).toBe(0);
      expect(owner.json.Reservations[0].OwnerId, `KMSVOL_ACCOUNT_ID=${JSON.stringify(KMSVOL_ACCOUNT_ID)}`).toBe(want);
      const kms = withEnv(env, () => Kms.open({ home }));
      try {
        expect(kms.account).toBe(want);
      } finally {
        kms.close();
      }
    }
  });
});

describe('the region a user means', () => {
  it('AWS_DEFAULT_REGION and the AWS config profile choose the region, as the AWS CLI reads them; nothing set is us-east-1', () => {
    const home = tempHome();
    const dir = tempHome('kmsvol-awsconfig-');
    fs.writeFileSync(path.join(dir, 'config'), '[profile work]\nregion = eu-central-1\n');
    const none = { KMSVOL_REGION: '', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: '', AWS_CONFIG_FILE: path.join(dir, 'config') };
    const arn = (env: Record<string, string>) =>
      kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.Arn', '--output', 'text'], { ...none, ...env }).stdout;
    expect(arn({})).toMatch(/^arn:aws:kms:us-east-1:/);
    expect(arn({ AWS_DEFAULT_REGION: 'ap-south-1' })).toMatch(/^arn:aws:kms:ap-south-1:/);
    expect(arn({ AWS_PROFILE: 'work' })).toMatch(/^arn:aws:kms:eu-central-1:/);
    expect(arn({ AWS_PROFILE: 'work', AWS_DEFAULT_REGION: 'ap-south-1' })).toMatch(/^arn:aws:kms:ap-south-1:/);
  });

  it("the endpoint refuses a region that is not AWS's, as AWS does, unless --region-allow-any", async () => {
    const home = tempHome();
    const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
    const list = (url: string, region: string) =>
      new sdk.KMSClient({ endpoint: url, region, credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey }, maxAttempts: 1 })
        .send(new sdk.ListKeysCommand({}))
        .then(
          () => 'ok',
          (e: Error) => `${e.name}: ${e.message}`,
        );
    const strict = await startEndpoint(home);
    expect(await list(strict.url, 'mars-central-9')).toBe("InvalidSignatureException: Credential should be scoped to a valid region, not 'mars-central-9'. ");
    expect(await list(strict.url, 'ap-southeast-7')).toBe('ok');
    await strict.stop();
    const any = await startEndpoint(home, ['--region-allow-any']);
    expect(await list(any.url, 'mars-central-9')).toBe('ok');
    await any.stop();
    const bad = kmsvol(home, ['serve', '--region', 'local', '--port', '0']);
    expect(bad.code).toBe(252);
    expect(bad.stderr).toContain('--region local is not an AWS region (such as us-east-1). Name an AWS region, or add --region-allow-any');
  });
});
