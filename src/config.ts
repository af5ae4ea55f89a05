import { UsageError } from './errors.js';
import { awsCliRegion, FALLBACK_REGION } from './region.js';

/** The region when nothing chose one (the AWS CLI's choice comes first: src/region.ts), and the account when none is configured. */
export const DEFAULT_REGION = FALLBACK_REGION;
export const DEFAULT_ACCOUNT = '000000000000';

/**
 * The region and account a caller works in, chosen the same way by the CLI
 * and the `Kmsvol` API (the card gets them in its spec): an explicit choice
 * (`--region`, the API's option), else KMSVOL_REGION, else the region the
 * AWS CLI would use (src/region.ts: AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's region in ~/.aws/config). An empty variable is an unset one.
 * Undefined when nothing chose a region (then DEFAULT_REGION, us-east-1).
 */
export function configuredRegion(explicit?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const region = explicit || env.KMSVOL_REGION || awsCliRegion(env) || undefined;
  // A region is a name (as botocore and the endpoint's credential scope require): anything else would reach ARNs and zones.
  if (region !== undefined && !/^[a-z0-9-]{1,40}$/.test(region))
    throw new UsageError(
      `Provided region_name '${region}' doesn't match a supported format. Name a region such as us-east-1 (--region, KMSVOL_REGION, AWS_REGION, AWS_DEFAULT_REGION, or the profile's region in the AWS config file).`,
    );
  return region;
}

/** The account: an explicit choice, else KMSVOL_ACCOUNT_ID, else 000000000000 (an empty variable is an unset one here too). */
export function configuredAccount(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit || env.KMSVOL_ACCOUNT_ID || DEFAULT_ACCOUNT;
}
