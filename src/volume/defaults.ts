import type { Ec2Context } from './context.js';

/**
 * Account-level EBS encryption settings: encryption by default, and the
 * default KMS key for new encrypted volumes (alias/aws/ebs unless changed).
 */
const BY_DEFAULT = 'ebs_encryption_by_default';
const DEFAULT_KEY = 'ebs_default_kms_key_id';
const AWS_MANAGED = 'alias/aws/ebs';

export function getEbsEncryptionByDefault(ctx: Ec2Context) {
  return { EbsEncryptionByDefault: ctx.registry.getSetting(BY_DEFAULT) === 'true' };
}

export function setEbsEncryptionByDefault(ctx: Ec2Context, on: boolean) {
  ctx.registry.write(() => ctx.registry.setSetting(BY_DEFAULT, String(on)));
  return { EbsEncryptionByDefault: on };
}

export function getEbsDefaultKmsKeyId(ctx: Ec2Context) {
  return { KmsKeyId: ctx.registry.getSetting(DEFAULT_KEY) ?? AWS_MANAGED };
}

/** The key must exist: it is resolved through the KMS (DescribeKey) and stored as its ARN. */
export async function modifyEbsDefaultKmsKeyId(ctx: Ec2Context, keyRef: string) {
  const arn = (await ctx.kms.send('DescribeKey', { KeyId: keyRef })).KeyMetadata.Arn;
  ctx.registry.write(() => ctx.registry.setSetting(DEFAULT_KEY, arn));
  return { KmsKeyId: arn };
}

export function resetEbsDefaultKmsKeyId(ctx: Ec2Context) {
  ctx.registry.write(() => ctx.registry.setSetting(DEFAULT_KEY, undefined));
  return { KmsKeyId: AWS_MANAGED };
}
