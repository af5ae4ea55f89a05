/** The region when nothing chose one (kmsvol's own; a remote AWS KMS needs a real one), and the account when none is configured. */
export const DEFAULT_REGION = 'local';
export const DEFAULT_ACCOUNT = '000000000000';

/**
 * The region and account a caller works in, chosen the same way by the CLI
 * and the `Kmsvol` API (the card gets them in its spec): an explicit choice
 * (`--region`, the API's option), else KMSVOL_REGION, else AWS_REGION. An
 * empty variable is an unset one. Undefined when nothing chose a region.
 */
export function configuredRegion(explicit?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return explicit || env.KMSVOL_REGION || env.AWS_REGION || undefined;
}

/** The account: an explicit choice, else KMSVOL_ACCOUNT_ID, else 000000000000 (an empty variable is an unset one here too). */
export function configuredAccount(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit || env.KMSVOL_ACCOUNT_ID || DEFAULT_ACCOUNT;
}
