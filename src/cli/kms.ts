import { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { KmsOperation, KmsRequest } from '../kms/kms.js';
import { OPERATIONS } from '../kms/kms.js';
import { DRY_RUN_OPERATIONS, HONOURED } from '../kms/members.js';
import { parseBlob, parseInteger, parseMap, parseStruct, parseStructList, parseTimestamp, readParamText } from './args.js';
import { globalsOf, openKmsClient, print, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { cliInput, cliInputOptions, printSkeleton } from './input.js';
import { allPages, KMS_PAGING, paginationOptions } from './paging.js';
import { seedCommand } from './seed.js';
import { serveCommand } from './serve.js';

/** Field types, by AWS field name; anything not listed is a string. */
const FIELD_TYPES: Record<string, 'blob' | 'map' | 'int' | 'bool' | 'list' | 'structs' | 'struct' | 'timestamp'> = {
  Plaintext: 'blob',
  CiphertextBlob: 'blob',
  ImportToken: 'blob',
  EncryptedKeyMaterial: 'blob',
  Message: 'blob',
  Signature: 'blob',
  PublicKey: 'blob',
  Mac: 'blob',
  SharedSecretCiphertextBlob: 'blob',
  XksProxyAuthenticationCredential: 'struct',
  ValidTo: 'timestamp',
  Constraints: 'struct',
  Operations: 'list',
  EncryptionContext: 'map',
  SourceEncryptionContext: 'map',
  DestinationEncryptionContext: 'map',
  NumberOfBytes: 'int',
  PendingWindowInDays: 'int',
  RotationPeriodInDays: 'int',
  Limit: 'int',
  MultiRegion: 'bool',
  BypassPolicyLockoutSafetyCheck: 'bool',
  DryRun: 'bool',
  TagKeys: 'list',
  GrantTokens: 'list',
  Tags: 'structs',
};

type FieldType = (typeof FIELD_TYPES)[string];

/** How each field type's option value becomes a request value. */
const PARSERS: Record<FieldType, (v: unknown, flag: string) => unknown> = {
  blob: (v, flag) => parseBlob(v as string, flag),
  map: (v, flag) => parseMap(v as string, flag),
  int: (v, flag) => parseInteger(v as string, flag),
  bool: (v) => v as boolean,
  list: (v) => v as string[],
  structs: (v, flag) => parseStructList(v as string[], flag),
  struct: (v, flag) => parseStruct(v as string, flag),
  timestamp: (v, flag) => parseTimestamp(v as string, flag),
};

/** Each operation's parameters: the members it honours (src/kms/members.ts), DryRun added where the operation has it. */
const KMS_COMMANDS = Object.fromEntries(
  Object.keys(OPERATIONS).map((op) => [op, [...(HONOURED[op] ?? []), ...(DRY_RUN_OPERATIONS.has(op) ? ['DryRun'] : [])]]),
) as Record<KmsOperation, string[]>;

export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Build the request from parsed options (over `base`, from --cli-input-json/yaml), converting each value by its field type. */
function buildRequest(fields: string[], opts: Record<string, unknown>, base: KmsRequest = {}): KmsRequest {
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
    const type = FIELD_TYPES[field];
    req[field] = type ? PARSERS[type](v, flag) : readParamText(v as string);
  }
  if (missing.length) throw new UsageError(`the following arguments are required: ${missing.join(', ')}`);
  return req;
}

/** The list each paginated KMS operation pages through (the AWS CLI's paginators). */
const PAGINATED: Partial<Record<KmsOperation, string>> = {
  ListKeys: 'Keys',
  ListAliases: 'Aliases',
  ListGrants: 'Grants',
  ListRetirableGrants: 'Grants',
  ListKeyPolicies: 'PolicyNames',
  ListResourceTags: 'Tags',
  ListKeyRotations: 'Rotations',
};

/** A request given whole (--cli-input-json/yaml) in the API's JSON form: blobs base64, timestamps ISO or epoch seconds. */
function fromInput(fields: string[], input: Record<string, unknown>): KmsRequest {
  const names = new Set(fields.map((f) => f.replace(/!$/, '')));
  const req: KmsRequest = {};
  for (const [k, v] of Object.entries(input)) {
    if (!names.has(k)) throw new UsageError(`Unknown parameter in input: "${k}", must be one of: ${[...names].join(', ')}`);
    const type = FIELD_TYPES[k];
    req[k] = type === 'blob' ? parseBlob(String(v), kebab(k)) : type === 'timestamp' ? parseTimestamp(String(v), kebab(k)) : v;
  }
  return req;
}

function skeleton(fields: string[]): Record<string, unknown> {
  const blank: Record<FieldType, unknown> = {
    blob: '',
    map: { KeyName: '' },
    int: 0,
    bool: true,
    list: [''],
    structs: [{ TagKey: '', TagValue: '' }],
    struct: {},
    timestamp: '1970-01-01T00:00:00',
  };
  return Object.fromEntries(fields.map((f) => f.replace(/!$/, '')).map((f) => [f, FIELD_TYPES[f] ? blank[FIELD_TYPES[f]!] : '']));
}

export function kmsCommand(): Command {
  const kms = new Command('kms').description('AWS KMS operations against the local KMS (same names and arguments as `aws kms`)');
  for (const [op, fields] of Object.entries(KMS_COMMANDS) as [KmsOperation, string[]][]) {
    const cmd = withGlobals(new Command(kebab(op)).description(`KMS ${op}`));
    for (const spec of fields) {
      const field = spec.replace(/!$/, '');
      const flag = kebab(field);
      const type = FIELD_TYPES[field];
      if (type === 'bool') cmd.option(`--${flag}`).option(`--no-${flag}`);
      else if (type === 'list' || type === 'structs') cmd.option(`--${flag} <values...>`);
      else cmd.option(`--${flag} <value>`);
    }
    const list = PAGINATED[op];
    cliInputOptions(cmd);
    if (list) paginationOptions(cmd);
    cmd.action(async (opts: Record<string, any>, self: Command) => {
      const g = globalsOf(self);
      await OperationContext.run(op, async () => {
        if (opts.generateCliSkeleton !== undefined) return printSkeleton(skeleton(fields), opts.generateCliSkeleton);
        const req = buildRequest(fields, opts, fromInput(fields, cliInput(opts)));
        const client = openKmsClient(g);
        try {
          // The AWS CLI pages through the whole list unless told not to (--no-paginate, or the service's own --limit/--marker).
          const auto = list && opts.paginate !== false && req.Limit === undefined && req.Marker === undefined;
          const out = auto
            ? await allPages((r) => client.send(op, r) as Promise<Record<string, any>>, req, list!, opts, KMS_PAGING)
            : await client.send(op, req);
          print(out, g, op);
        } finally {
          client.close();
        }
      });
    });
    kms.addCommand(cmd);
  }
  kms.addCommand(serveCommand());
  kms.addCommand(seedCommand());
  return kms;
}
