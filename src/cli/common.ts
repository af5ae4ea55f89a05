import { Command, Option } from 'commander';
import { clockFromEnv } from '../clock.js';
import { openHome, resolveHomeDir } from '../home.js';
import type { Home } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import type { Caller } from '../kms/authz.js';
import { openKmsClient as openClient } from '../kms/client/open.js';
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

/** The KMS for a CLI call; `caller` when the call is made through a service (the volume side calls through EC2). */
export function openKmsClient(g: GlobalOptions, caller?: Partial<Caller>): KmsClient {
  return openClient({ home: homeOf(g), region: regionOf(g), clock: clockFromEnv(), caller });
}

export function print(result: unknown, g: GlobalOptions): void {
  process.stdout.write(render(result, g.output ?? 'json', g.query));
}
