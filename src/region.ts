import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileSetting } from './awsconfig.js';

/**
 * AWS regions, and the region the AWS CLI would use. kmsvol works in the
 * same region as the user's AWS tools: AWS_REGION, else AWS_DEFAULT_REGION,
 * else the `region` of the profile (AWS_PROFILE, else AWS_DEFAULT_PROFILE,
 * else "default") in the AWS config file (AWS_CONFIG_FILE, else
 * ~/.aws/config), as AWS CLI v2 reads them; else us-east-1, as moto and
 * LocalStack default. An empty variable is an unset one.
 */
export const FALLBACK_REGION = 'us-east-1';

/** The region every key of a home made before kmsvol used AWS's regions is in (docs/cli.md). */
export const LEGACY_REGION = 'local';

/**
 * The regions of the aws, aws-cn and aws-us-gov partitions.
 * test/unit/region.test.ts holds this list against the partitions that
 * @aws-sdk/core resolves endpoints with.
 */
export const AWS_REGIONS: readonly string[] = [
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-central-1',
  'ca-west-1',
  'cn-north-1',
  'cn-northwest-1',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'eu-south-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'il-central-1',
  'me-central-1',
  'me-south-1',
  'me-west-1',
  'mx-central-1',
  'sa-east-1',
  'sa-west-1',
  'us-east-1',
  'us-east-2',
  'us-gov-east-1',
  'us-gov-west-1',
  'us-west-1',
  'us-west-2',
];

const KNOWN = new Set(AWS_REGIONS);

export function isAwsRegion(region: string): boolean {
  return KNOWN.has(region);
}

/** The `region` of a profile in an AWS config file's text (`[default]`, or `[profile NAME]` for any other), as botocore reads it (awsconfig.ts). */
export function profileRegion(config: string, profile: string): string | undefined {
  return profileSetting(config, profile, 'region');
}

/** The region the AWS CLI would use with this environment, or undefined when it would have none. */
export function awsCliRegion(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (fromEnv) return fromEnv;
  const file = env.AWS_CONFIG_FILE || path.join(env.HOME || os.homedir(), '.aws', 'config');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return profileRegion(text, env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || 'default');
}
