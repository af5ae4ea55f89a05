import { type Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import { yaml } from '../lazy.js';
import { readParamText } from './args.js';

/**
 * The AWS CLI's whole-request options: `--cli-input-json` / `--cli-input-yaml`
 * (the request's members, AWS names; options given as well win) and
 * `--generate-cli-skeleton [input|yaml-input]`.
 */
export function cliInputOptions(cmd: Command): Command {
  return cmd
    .option('--cli-input-json <json>', 'the request as JSON (file:// works); options given as well win')
    .option('--cli-input-yaml <yaml>', 'the request as YAML (file:// works); options given as well win')
    .addOption(
      new Option(
        '--generate-cli-skeleton [kind]',
        'print a request skeleton (input, the default) for --cli-input-json or --cli-input-yaml (yaml-input)',
      ).choices(['input', 'yaml-input']),
    );
}

export function cliInput(opts: { cliInputJson?: unknown; cliInputYaml?: unknown }): Record<string, unknown> {
  const parse = (text: string, how: 'json' | 'yaml') => {
    let v: unknown;
    try {
      v = how === 'json' ? JSON.parse(readParamText(text, `cli-input-${how}`)) : yaml().parse(readParamText(text, `cli-input-${how}`));
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`Error parsing parameter '--cli-input-${how}': ${(e as Error).message}`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw new UsageError(`Error parsing parameter '--cli-input-${how}': expected an object of request members.`);
    return v as Record<string, unknown>;
  };
  if (opts.cliInputJson) return parse(String(opts.cliInputJson), 'json');
  if (opts.cliInputYaml) return parse(String(opts.cliInputYaml), 'yaml');
  return {};
}

export function printSkeleton(skeleton: Record<string, unknown>, kind: string | true): void {
  process.stdout.write(kind === 'yaml-input' ? yaml().stringify(skeleton) : `${JSON.stringify(skeleton, null, 4)}\n`);
}
