import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configuredRegion } from '../../src/config.js';
import { AWS_REGIONS, awsCliRegion, isAwsRegion, profileRegion } from '../../src/region.js';
import { tempHome } from '../helpers/home.js';

/** The region kmsvol works in is the one the AWS CLI would use, else us-east-1; the AWS region list is the SDK's. */
function configFile(text: string): string {
  const file = path.join(tempHome('kmsvol-awsconfig-'), 'config');
  fs.writeFileSync(file, text);
  return file;
}
const CONFIG = '[default]\nregion = eu-west-1\n\n# a comment\n[profile work]\noutput = json\nregion=ap-south-2\n[sso-session x]\nregion = us-west-2\n';

describe('the region the AWS CLI would use', () => {
  it('AWS_REGION, else AWS_DEFAULT_REGION, else the profile in the config file, else none', () => {
    const AWS_CONFIG_FILE = configFile(CONFIG);
    expect(awsCliRegion({ AWS_REGION: 'us-east-2', AWS_DEFAULT_REGION: 'us-west-1', AWS_CONFIG_FILE })).toBe('us-east-2');
    expect(awsCliRegion({ AWS_REGION: '', AWS_DEFAULT_REGION: 'us-west-1', AWS_CONFIG_FILE })).toBe('us-west-1');
    expect(awsCliRegion({ AWS_CONFIG_FILE })).toBe('eu-west-1');
    expect(awsCliRegion({ AWS_CONFIG_FILE, AWS_PROFILE: 'work' })).toBe('ap-south-2');
    expect(awsCliRegion({ AWS_CONFIG_FILE, AWS_DEFAULT_PROFILE: 'work' })).toBe('ap-south-2');
    expect(awsCliRegion({ AWS_CONFIG_FILE, AWS_PROFILE: 'x' })).toBeUndefined();
    expect(awsCliRegion({ AWS_CONFIG_FILE: '/nonexistent/config' })).toBeUndefined();
  });

  it('reads ~/.aws/config under HOME when AWS_CONFIG_FILE is unset', () => {
    const home = tempHome('kmsvol-awshome-');
    fs.mkdirSync(path.join(home, '.aws'));
    fs.writeFileSync(path.join(home, '.aws', 'config'), '[profile p]\nregion = ca-west-1\n');
    expect(awsCliRegion({ HOME: home, AWS_PROFILE: 'p' })).toBe('ca-west-1');
    expect(awsCliRegion({ HOME: home })).toBeUndefined();
  });

  it('kmsvol: --region, else KMSVOL_REGION, else the AWS CLI region', () => {
    const AWS_CONFIG_FILE = configFile(CONFIG);
    expect(configuredRegion('us-east-2', { KMSVOL_REGION: 'eu-north-1', AWS_CONFIG_FILE })).toBe('us-east-2');
    expect(configuredRegion(undefined, { KMSVOL_REGION: 'eu-north-1', AWS_REGION: 'sa-east-1', AWS_CONFIG_FILE })).toBe('eu-north-1');
    expect(configuredRegion(undefined, { AWS_DEFAULT_REGION: 'sa-east-1', AWS_CONFIG_FILE })).toBe('sa-east-1');
    expect(configuredRegion(undefined, { AWS_CONFIG_FILE })).toBe('eu-west-1');
    expect(configuredRegion(undefined, { AWS_CONFIG_FILE: '/nonexistent/config' })).toBeUndefined();
  });

  it('profileRegion reads [default] and [profile NAME] only', () => {
    expect(profileRegion(CONFIG, 'default')).toBe('eu-west-1');
    expect(profileRegion(CONFIG, 'sso-session x')).toBeUndefined();
    expect(profileRegion('[profile a.b]\nregion = us-west-2\n', 'a.b')).toBe('us-west-2');
    expect(profileRegion('[profile aXb]\nregion = us-west-2\n', 'a.b')).toBeUndefined();
  });
});

describe('AWS regions', () => {
  it("are the aws, aws-cn and aws-us-gov partitions' regions as @aws-sdk/core resolves endpoints", async () => {
    const file = path.join(path.dirname(require.resolve('@aws-sdk/core/package.json')), 'dist-es/submodules/client/util-endpoints/lib/aws/partitions.js');
    const { partitionsInfo } = (await import(file)) as { partitionsInfo: { partitions: { id: string; regions: Record<string, unknown> }[] } };
    const sdk = partitionsInfo.partitions
      .filter((p) => ['aws', 'aws-cn', 'aws-us-gov'].includes(p.id))
      .flatMap((p) => Object.keys(p.regions))
      .filter((r) => !r.startsWith('aws-'))
      .sort();
    expect([...AWS_REGIONS].sort()).toEqual(sdk);
    expect(isAwsRegion('us-east-1')).toBe(true);
    expect(isAwsRegion('local')).toBe(false);
    expect(isAwsRegion('mars-central-9')).toBe(false);
  });
});
