import { Command, Option } from 'commander';
import { clockFromEnv } from '../clock.js';
import { openHome, resolveHomeDir } from '../home.js';
import type { Home } from '../home.js';
import { InProcessKmsClient } from '../kms/client/index.js';
import type { KmsClient } from '../kms/client/index.js';
import { kmsEndpointFromEnv, RemoteKmsClient } from '../kms/client/remote.js';
import { DEFAULT_REGION } from '../kms/context.js';
import { render } from './output.js';
import type { OutputFormat } from './output.js';

export interface GlobalOptions {
  home?: string;
  region?: string;
  output?: OutputFormat;
  query?: string;
}

/** The AWS CLI's global options, accepted on every command (before or after the operation). */
export function withGlobals(cmd: Command): Command {
  return cmd
    .option('--home <dir>', 'kmsvol home directory (default $KMSVOL_HOME or ~/.kmsvol)')
    .option('--region <region>', 'region (default $KMSVOL_REGION, $AWS_REGION or "local")')
    .addOption(new Option('--output <format>', 'output format').choices(['json', 'text']))
    .option('--query <jmespath>', 'JMESPath query applied to the response')
    .option('--no-cli-pager', 'accepted for AWS CLI compatibility');
}

export function globalsOf(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export function homeOf(g: GlobalOptions): Home {
  return openHome(resolveHomeDir(g.home));
}

export function regionOf(g: GlobalOptions): string | undefined {
  return g.region ?? process.env.KMSVOL_REGION ?? process.env.AWS_REGION;
}

/** The embedded KMS, or the remote one when an endpoint is configured (AWS_ENDPOINT_URL_KMS or KMSVOL_KMS_ENDPOINT). */
export function openKmsClient(g: GlobalOptions): KmsClient {
  const endpoint = kmsEndpointFromEnv();
  if (endpoint) return new RemoteKmsClient({ endpoint, region: regionOf(g) ?? DEFAULT_REGION });
  return InProcessKmsClient.open({ home: homeOf(g), region: regionOf(g), clock: clockFromEnv() });
}

export function print(result: unknown, g: GlobalOptions): void {
  process.stdout.write(render(result, g.output ?? 'json', g.query));
}
