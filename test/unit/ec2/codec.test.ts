import { describe, expect, it } from 'vitest';
import { Ec2Contexts } from '../../../src/ec2/context.js';
import { openHome } from '../../../src/home.js';
import { ec2Service } from '../../../src/server/ec2/index.js';
import type { ServiceCall } from '../../../src/server/service.js';
import { onCleanup, testKms } from '../../helpers/home.js';

/**
 * The endpoint's EC2 codec over the registry, with a real context (a
 * temporary home, its registry and KMS; no volume, no card): the XML each
 * answer takes from the entry's output shape and the model's element names.
 */
function endpoint() {
  const { kms, home } = testKms();
  const contexts = new Ec2Contexts(openHome(home));
  onCleanup(() => contexts.close());
  const principal = `arn:aws:iam::${kms.account}:root`;
  return async (params: Record<string, string>) => {
    const call = {
      params: new URLSearchParams(params),
      requestId: 'r-1',
      ec2: () => contexts.contextFor(kms, principal, kms.region),
    } as unknown as ServiceCall;
    const reply = await ec2Service.handle(call);
    return { status: reply.status, body: String(reply.body) };
  };
}

describe('the EC2 codec with a context', () => {
  it('an operation whose model has no output answers <return>true</return>; one with an output answers its members under their locationNames', async () => {
    const ec2 = endpoint();
    const instances = await ec2({ Action: 'DescribeInstances' });
    expect(instances.status).toBe(200);
    // Instance.State is instanceState (elsewhere State is status): the entry's rename.
    expect(instances.body).toMatch(/<reservationSet><item>.*<instancesSet><item>.*<instanceState><code>16<\/code><name>running<\/name><\/instanceState>/s);
    const id = /<instanceId>(i-[0-9a-f]{17})<\/instanceId>/.exec(instances.body)![1]!;
    const tagged = await ec2({ Action: 'CreateTags', 'ResourceId.1': id, 'Tag.1.Key': 'team', 'Tag.1.Value': 'blue' });
    expect(tagged.body).toMatch(
      /<CreateTagsResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2016-11-15\/"><requestId>r-1<\/requestId><return>true<\/return><\/CreateTagsResponse>/,
    );
    const tags = await ec2({ Action: 'DescribeTags', 'Filter.1.Name': 'key', 'Filter.1.Value.1': 'team' });
    expect(tags.body).toContain(
      `<tagSet><item><key>team</key><resourceId>${id}</resourceId><resourceType>instance</resourceType><value>blue</value></item></tagSet>`,
    );
    expect((await ec2({ Action: 'GetEbsEncryptionByDefault' })).body).toContain('<ebsEncryptionByDefault>false</ebsEncryptionByDefault>');
  });

  it('DryRun answers DryRunOperation (412) when the request would succeed and changes nothing; a missing required member is MissingParameter', async () => {
    const ec2 = endpoint();
    const dry = await ec2({ Action: 'EnableEbsEncryptionByDefault', DryRun: 'true' });
    expect([dry.status, dry.body]).toEqual([412, expect.stringContaining('<Code>DryRunOperation</Code>')]);
    expect((await ec2({ Action: 'GetEbsEncryptionByDefault' })).body).toContain('<ebsEncryptionByDefault>false</ebsEncryptionByDefault>');
    const missing = await ec2({ Action: 'ModifyEbsDefaultKmsKeyId' });
    expect([missing.status, missing.body]).toEqual([400, expect.stringContaining('<Code>MissingParameter</Code>')]);
  });
});
