import { type Command, Option } from 'commander';
import { clockFromEnv } from '../clock.js';
import { configuredRegion } from '../config.js';
import type { Home } from '../home.js';
import { openHome, resolveHomeDir } from '../home.js';
import type { Caller } from '../kms/authz.js';
import type { KmsClient } from '../kms/client/index.js';
import { InProcessKmsClient } from '../kms/client/index.js';
import { openKmsClient as openClient } from '../kms/client/open.js';
import type { Kms } from '../kms/kms.js';
import { LEGACY_REGION } from '../region.js';
import type { OutputFormat } from './output.js';
import { render } from './output.js';

export interface GlobalOptions {
  home?: string;
  region?: string;
  output?: OutputFormat;
  query?: string;
  kms?: 'embedded' | 'aws';
  kmsEndpoint?: string;
  /** The AWS CLI v2's --cli-binary-format: how blob arguments are read. */
  cliBinaryFormat?: 'base64' | 'raw-in-base64-out';
}

/** The AWS CLI's global options, accepted on every command (before or after the operation). */
export function withGlobals(cmd: Command): Command {
  return cmd
    .option('--home <dir>', 'kmsvol home directory (default $KMSVOL_HOME or ~/.kmsvol)')
    .option(
      '--region <region>',
      "region (default $KMSVOL_REGION, else the AWS CLI's: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region in ~/.aws/config; else us-east-1)",
    )
    .addOption(new Option('--output <format>', 'output format').choices(['json', 'text', 'table', 'yaml']))
    .option('--profile <name>', 'the AWS profile for a remote KMS (as AWS_PROFILE)')
    .option('--query <jmespath>', 'JMESPath query applied to the response')
    .addOption(
      new Option('--kms <where>', 'the KMS: the embedded one, or AWS KMS itself with the standard credential chain (default $KMSVOL_KMS or embedded)').choices([
        'embedded',
        'aws',
      ]),
    )
    .option('--kms-endpoint <url>', 'a remote KMS such as `kmsvol kms serve` (default $KMSVOL_KMS_ENDPOINT or $AWS_ENDPOINT_URL_KMS)')
    .option('--endpoint-url <url>', 'the same as --kms-endpoint, as the AWS CLI names it')
    .option('--no-cli-pager', 'accepted for AWS CLI compatibility')
    .addOption(
      new Option(
        '--cli-binary-format <format>',
        'how blob arguments are read, as in AWS CLI v2: base64 (the default) or raw-in-base64-out (the text itself); fileb:// is raw bytes either way',
      ).choices(['base64', 'raw-in-base64-out']),
    );
}

/**
 * Which of a command's subcommands to build for these arguments (the user's
 * words): the ones the arguments name, or all of them when they name none or
 * ask for help, so that help and "unknown command" list every one. Building
 * only what runs keeps a CLI call's start cheap.
 */
export function namedIn(args: readonly string[] | undefined, names: readonly string[]): (name: string) => boolean {
  const all = !args || !names.some((n) => args.includes(n)) || args.some((a) => a === '--help' || a === '-h' || a === 'help');
  return (name) => all || args.includes(name);
}

/** An AWS name as the AWS CLI spells it in a command or option: CreateVolume is create-volume, KmsKeyId is kms-key-id. */
export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

export function globalsOf(cmd: Command): GlobalOptions {
  const g = cmd.optsWithGlobals() as GlobalOptions & { profile?: string };
  // --profile names the credentials a remote KMS client uses (the SDK reads AWS_PROFILE).
  if (g.profile) process.env.AWS_PROFILE = g.profile;
  if (!g.output && (process.env.AWS_DEFAULT_OUTPUT === 'table' || process.env.AWS_DEFAULT_OUTPUT === 'yaml' || process.env.AWS_DEFAULT_OUTPUT === 'text'))
    g.output = process.env.AWS_DEFAULT_OUTPUT;
  return g;
}

export function homeOf(g: GlobalOptions): Home {
  return openHome(resolveHomeDir(g.home));
}

export function regionOf(g: GlobalOptions): string | undefined {
  return configuredRegion(g.region);
}

/**
 * The KMS for a CLI call; `caller` when the call is made through a service
 * (the volume side calls through EC2). The cards this call starts get the
 * same KMS in their spec (card/spec.ts).
 */
export function openKmsClient(g: GlobalOptions & { endpointUrl?: string }, caller?: Partial<Caller>): KmsClient {
  const endpoint = g.kmsEndpoint ?? g.endpointUrl;
  const client = openClient({
    home: homeOf(g),
    region: regionOf(g),
    clock: clockFromEnv(),
    caller,
    ...(g.kms ? { kms: g.kms } : {}),
    ...(endpoint ? { endpoint } : {}),
  });
  if (client instanceof InProcessKmsClient) tellLegacyRegion(client.kms);
  return client;
}

let toldLegacyRegion = false;
/** A home made under region `local` (docs/cli.md, "Homes made under region local"): one line on stderr, once per call, naming how to reach its keys. */
function tellLegacyRegion(kms: Kms): void {
  if (toldLegacyRegion || !kms.keysOnlyInLocalRegion()) return;
  toldLegacyRegion = true;
  process.stderr.write(
    `kmsvol: this home's keys are in region '${LEGACY_REGION}' (made before kmsvol used AWS's regions), none in ${kms.region}: use them with --region ${LEGACY_REGION} or KMSVOL_REGION=${LEGACY_REGION}\n`,
  );
}

export function print(result: unknown, g: GlobalOptions, title?: string): void {
  process.stdout.write(render(result, g.output ?? 'json', g.query, title));
}
