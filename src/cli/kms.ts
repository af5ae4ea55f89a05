import { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { KmsRequest } from '../kms/kms.js';
import type { MemberType } from '../kms/members.js';
import { MEMBERS } from '../kms/members.js';
import type { KmsOperation, OperationSpec } from '../kms/operations.js';
import { KMS_REGISTRY } from '../kms/operations.js';
import type { BinaryFormat } from './args.js';
import { parseBlob, parseInteger, parseMap, parseStruct, parseStructList, parseTimestamp, readParamText } from './args.js';
import { globalsOf, kebab, namedIn, openKmsClient, print, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { cliInput, cliInputOptions, printSkeleton } from './input.js';
import { loadKmsHelp } from './kms-help.js';
import { allPages, KMS_PAGING, paginationOptions } from './paging.js';
import { seedCommand } from './seed.js';
import { serveCommand } from './serve.js';

/**
 * `kmsvol kms <operation>`: one command per entry of the operation registry
 * (src/kms/operations.ts), its parameters the members the operation honours
 * (DryRun added where it has it), each parsed by its type in MEMBERS.
 */

/** How each member type's option value becomes a request value. */
const PARSERS: Record<MemberType, (v: unknown, flag: string, format: BinaryFormat) => unknown> = {
  string: (v, flag) => readParamText(v as string, flag),
  blob: (v, flag, format) => parseBlob(v as string, flag, format),
  map: (v, flag) => parseMap(v as string, flag),
  int: (v, flag) => parseInteger(v as string, flag),
  bool: (v) => v as boolean,
  list: (v) => v as string[],
  structs: (v, flag) => parseStructList(v as string[], flag),
  struct: (v, flag) => parseStruct(v as string, flag),
  timestamp: (v, flag) => parseTimestamp(v as string, flag),
};

/** A member's type; a member missing from MEMBERS is a registry bug that test/unit/kms/registry.test.ts reports. */
const typeOf = (field: string): MemberType => MEMBERS[field]?.type ?? 'string';

/** Each operation's parameters: the members it honours ("!" for required), DryRun added where the operation has it. */
const KMS_COMMANDS = Object.fromEntries(
  Object.entries(KMS_REGISTRY as Record<KmsOperation, OperationSpec>).map(([op, spec]) => [op, [...spec.members, ...(spec.dryRun ? ['DryRun'] : [])]]),
) as Record<KmsOperation, string[]>;

export { kebab };

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Build the request from parsed options (over `base`, from --cli-input-json/yaml), converting each value by its field type. */
function buildRequest(fields: string[], opts: Record<string, unknown>, base: KmsRequest = {}, format: BinaryFormat = 'base64'): KmsRequest {
  const req: KmsRequest = { ...base };
  const missing: string[] = [];
  for (const spec of fields) {
    const field = spec.replace(/!$/, '');
    const flag = kebab(field);
    const v = opts[camel(flag)];
    if (v === undefined) {
      if (spec.endsWith('!') && req[field] === undefined) missing.push(`--${flag}`);
      continue;
    }
    req[field] = PARSERS[typeOf(field)](v, flag, format);
  }
  if (missing.length) throw new UsageError(`the following arguments are required: ${missing.join(', ')}`);
  return req;
}

/** A request given whole (--cli-input-json/yaml) in the API's JSON form: blobs base64, timestamps ISO or epoch seconds. */
function fromInput(fields: string[], input: Record<string, unknown>): KmsRequest {
  const names = new Set(fields.map((f) => f.replace(/!$/, '')));
  const req: KmsRequest = {};
  for (const [k, v] of Object.entries(input)) {
    if (!names.has(k)) throw new UsageError(`Unknown parameter in input: "${k}", must be one of: ${[...names].join(', ')}`);
    const type = typeOf(k);
    req[k] = type === 'blob' ? parseBlob(String(v), kebab(k)) : type === 'timestamp' ? parseTimestamp(String(v), kebab(k)) : v;
  }
  return req;
}

function skeleton(fields: string[]): Record<string, unknown> {
  const blank: Record<MemberType, unknown> = {
    string: '',
    blob: '',
    map: { KeyName: '' },
    int: 0,
    bool: true,
    list: [''],
    structs: [{ TagKey: '', TagValue: '' }],
    struct: {},
    timestamp: '1970-01-01T00:00:00',
  };
  return Object.fromEntries(fields.map((f) => f.replace(/!$/, '')).map((f) => [f, blank[typeOf(f)]]));
}

/** `kmsvol kms`, with the subcommands `args` (the user's words) name, or all of them (namedIn). */
export function kmsCommand(args?: readonly string[]): Command {
  const kms = new Command('kms').description('AWS KMS operations against the local KMS (same names and arguments as `aws kms`)');
  const commands = Object.entries(KMS_COMMANDS) as [KmsOperation, string[]][];
  const wanted = namedIn(args, [...commands.map(([op]) => kebab(op)), 'serve', 'seed']);
  // Descriptions in AWS's words, read only when help is asked for (kms-help.ts).
  const help = args?.some((a) => a === '--help' || a === '-h' || a === 'help') ? loadKmsHelp() : undefined;
  for (const [op, fields] of commands) {
    if (!wanted(kebab(op))) continue;
    const cmd = withGlobals(new Command(kebab(op)).description(help?.operation(op) ?? `KMS ${op}`));
    for (const spec of fields) {
      const field = spec.replace(/!$/, '');
      const flag = kebab(field);
      const type = typeOf(field);
      const text = `${help?.member(op, field) ?? ''}${spec.endsWith('!') ? ' (required)' : ''}`.trim();
      if (type === 'bool') cmd.option(`--${flag}`, text).option(`--no-${flag}`, `the opposite of --${flag}`);
      else if (type === 'list' || type === 'structs') cmd.option(`--${flag} <values...>`, text);
      else cmd.option(`--${flag} <value>`, text);
    }
    const list = (KMS_REGISTRY[op] as OperationSpec).pages;
    cliInputOptions(cmd);
    if (list) paginationOptions(cmd);
    cmd.action(async (opts: Record<string, unknown>, self: Command) => {
      const g = globalsOf(self);
      await OperationContext.run(op, async () => {
        if (opts.generateCliSkeleton !== undefined) return printSkeleton(skeleton(fields), opts.generateCliSkeleton as string | true);
        const req = buildRequest(fields, opts, fromInput(fields, cliInput(opts)), g.cliBinaryFormat);
        const client = openKmsClient(g);
        try {
          // The AWS CLI pages through the whole list unless told not to (--no-paginate, or the service's own --limit/--marker).
          const auto = list && opts.paginate !== false && req.Limit === undefined && req.Marker === undefined;
          const out = auto
            ? await allPages((r) => client.send(op, r) as Promise<Record<string, unknown>>, req, list!, opts, KMS_PAGING)
            : await client.send(op, req);
          print(out, g, op);
        } finally {
          client.close();
        }
      });
    });
    kms.addCommand(cmd);
  }
  if (wanted('serve')) kms.addCommand(serveCommand());
  if (wanted('seed')) kms.addCommand(seedCommand());
  return kms;
}
