import crypto from 'node:crypto';
import fs from 'node:fs';
import { DAY_MS } from '../clock.js';
import { yaml } from '../lazy.js';
import { MATERIAL_ID_BYTES } from './blob.js';
import { KmsContext } from './context.js';
import { KmsError, KmsErrors } from './errors.js';
import { checkSpecUsage, KEY_SPECS, kindOf, materialProblem, specInfo } from './keyspec.js';
import type { Kms } from './kms.js';
import { KeyPolicy } from './policy.js';
import { defaultPolicy, insertKey } from './rules/keys.js';
import type { Tag } from './rules/tags.js';

/**
 * Key fixtures for reproducible tests (`kmsvol kms seed FILE`, `serve --seed
 * FILE`): keys with given ids, specs, descriptions, tags, aliases, policies,
 * states and optionally given material, from YAML or JSON. Applying a file
 * is idempotent: what already matches is left alone; anything in the store
 * that differs from the file is a conflict that names the key and the field,
 * and nothing of the file is applied.
 */
export interface SeedKey {
  KeyId: string;
  Region?: string;
  KeySpec?: string;
  KeyUsage?: string;
  Description?: string;
  KeyState?: 'Enabled' | 'Disabled' | 'PendingDeletion';
  PendingWindowInDays?: number;
  Policy?: string | object;
  Tags?: Tag[] | Record<string, string>;
  Aliases?: string[];
  /** For tests only: base64 bytes (SYMMETRIC_DEFAULT, HMAC) or a PEM private key (RSA, ECC). The key is Origin EXTERNAL. */
  KeyMaterial?: string;
}

export interface SeedResult {
  Created: string[];
  Unchanged: string[];
  AliasesCreated: string[];
}

const FIELDS = new Set([
  'KeyId',
  'Region',
  'KeySpec',
  'KeyUsage',
  'Description',
  'KeyState',
  'PendingWindowInDays',
  'Policy',
  'Tags',
  'Aliases',
  'KeyMaterial',
]);
const ID_RE = /^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const REGION_RE = /^[a-z][a-z0-9-]{1,31}$/;
const ALIAS_RE = /^alias\/[a-zA-Z0-9/_-]+$/;

const seedError = (message: string) => new KmsError('ValidationException', message);
const conflict = (message: string) => new KmsError('SeedConflictException', message);

/** Parse a seed file (YAML, of which JSON is a subset) into its key list. */
export function readSeedFile(file: string): SeedKey[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw seedError(`Cannot read the seed file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
  }
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (e) {
    throw seedError(`The seed file ${file} is not valid YAML or JSON: ${(e as Error).message}`);
  }
  const keys = (doc as { Keys?: unknown } | null)?.Keys;
  if (!doc || typeof doc !== 'object' || !Array.isArray(keys))
    throw seedError(`The seed file ${file} must have a top-level Keys list (see docs/cli.md, "Seed files").`);
  return keys.map((k, i) => checkEntry(k, i));
}

function checkEntry(v: unknown, i: number): SeedKey {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw seedError(`Keys[${i}] must be a mapping of fields.`);
  const e = v as Record<string, unknown>;
  const at = `Keys[${i}]${typeof e.KeyId === 'string' ? ` (${e.KeyId})` : ''}`;
  for (const f of Object.keys(e)) if (!FIELDS.has(f)) throw seedError(`${at}: unknown field ${f}; the fields are ${[...FIELDS].join(', ')}.`);
  if (typeof e.KeyId !== 'string' || !ID_RE.test(e.KeyId))
    throw seedError(`${at}: KeyId must be a key id (a UUID, or mrk- and 32 hex digits for multi-Region keys).`);
  if (e.Region !== undefined && (typeof e.Region !== 'string' || !REGION_RE.test(e.Region))) throw seedError(`${at}: Region must be a region name.`);
  if (e.KeySpec !== undefined && !(KEY_SPECS as readonly unknown[]).includes(e.KeySpec))
    throw seedError(`${at}: KeySpec must be one of ${KEY_SPECS.join(', ')}.`);
  for (const f of ['KeyUsage', 'Description', 'KeyMaterial'] as const)
    if (e[f] !== undefined && typeof e[f] !== 'string') throw seedError(`${at}: ${f} must be a string.`);
  if (e.KeyState !== undefined && !['Enabled', 'Disabled', 'PendingDeletion'].includes(e.KeyState as string))
    throw seedError(`${at}: KeyState must be Enabled, Disabled or PendingDeletion.`);
  if (
    e.PendingWindowInDays !== undefined &&
    (!Number.isInteger(e.PendingWindowInDays) || (e.PendingWindowInDays as number) < 7 || (e.PendingWindowInDays as number) > 30)
  )
    throw seedError(`${at}: PendingWindowInDays must be 7 to 30.`);
  if (
    e.Aliases !== undefined &&
    (!Array.isArray(e.Aliases) || e.Aliases.some((a) => typeof a !== 'string' || !ALIAS_RE.test(a) || a.startsWith('alias/aws/')))
  ) {
    throw seedError(`${at}: Aliases must be a list of alias names (alias/ then letters, digits, /, _ or -; not alias/aws/).`);
  }
  return e as unknown as SeedKey;
}

function tagsOf(e: SeedKey): Tag[] {
  if (e.Tags === undefined) return [];
  const list = Array.isArray(e.Tags) ? e.Tags : Object.entries(e.Tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
  for (const t of list)
    if (typeof t?.TagKey !== 'string' || typeof t.TagValue !== 'string')
      throw seedError(`${e.KeyId}: Tags must be {TagKey, TagValue} items or a map of strings.`);
  return list.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue }));
}

function policyOf(e: SeedKey, account: string): string {
  if (e.Policy === undefined) return defaultPolicy(account);
  const text = typeof e.Policy === 'string' ? e.Policy : JSON.stringify(e.Policy, null, 2);
  try {
    KeyPolicy.parse(text);
  } catch (err) {
    throw seedError(`${e.KeyId}: Policy is not a valid key policy: ${(err as Error).message}`);
  }
  return text;
}

/** The given material as the store keeps it (PKCS#8 DER, or raw bytes). The caller zeroes it. */
function materialOf(e: SeedKey, spec: string): Buffer | undefined {
  if (e.KeyMaterial === undefined) return undefined;
  const kind = kindOf(spec);
  let material: Buffer;
  if (kind === 'rsa' || kind === 'ec' || kind === 'ed') {
    try {
      material = crypto.createPrivateKey(e.KeyMaterial).export({ type: 'pkcs8', format: 'der' });
    } catch {
      throw seedError(`${e.KeyId}: KeyMaterial for a ${spec} key is a PEM private key (PKCS#8 or traditional), and this one does not parse.`);
    }
  } else {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(e.KeyMaterial.trim())) throw seedError(`${e.KeyId}: KeyMaterial for a ${spec} key is base64 bytes.`);
    material = Buffer.from(e.KeyMaterial.trim(), 'base64');
  }
  const problem = materialProblem(spec, material);
  if (problem) {
    material.fill(0);
    throw seedError(`${e.KeyId}: ${problem}`);
  }
  return material;
}

function sameTags(a: Tag[], b: Tag[]): boolean {
  const norm = (l: Tag[]) => JSON.stringify([...l].sort((x, y) => x.TagKey.localeCompare(y.TagKey)));
  return norm(a) === norm(b);
}

/** Apply a seed file's keys to the store, all or nothing. */
export function applySeed(kms: Kms, keys: SeedKey[], source = 'seed'): SeedResult {
  const base = kms.ctx;
  const result: SeedResult = { Created: [], Unchanged: [], AliasesCreated: [] };
  const created: Parameters<Kms['auditCreated']>[0] = [];
  base.store.write(() => {
    for (const e of keys) {
      const k = e.Region && e.Region !== base.region ? new KmsContext(base.store, base.rootKey, base.clock, e.Region, base.account) : base;
      const spec = e.KeySpec ?? 'SYMMETRIC_DEFAULT';
      const info = specInfo(spec);
      const defaultUsage = Object.keys(info.usages).length === 1 ? Object.keys(info.usages)[0] : undefined;
      let usage: string;
      try {
        usage = checkSpecUsage(spec, e.KeyUsage ?? defaultUsage);
      } catch (err) {
        throw seedError(`${e.KeyId}: ${(err as Error).message}`);
      }
      const description = e.Description ?? '';
      const policy = policyOf(e, k.account);
      const tags = tagsOf(e);
      const state = e.KeyState ?? 'Enabled';
      const material = materialOf(e, spec);
      const arn = k.keyArn(e.KeyId);
      try {
        const existing = k.store.getKey(k.region, e.KeyId);
        if (existing) {
          // Precondition: a key already in the store matches the file, field by field.
          const differs = (field: string, have: unknown, want: unknown) => {
            if (have !== want)
              throw conflict(
                `Seed conflict for key ${arn}: field ${field} is ${JSON.stringify(have)} in the store but ${JSON.stringify(want)} in the seed file. Change the file, or use a fresh home.`,
              );
          };
          differs('KeySpec', existing.key_spec, spec);
          differs('KeyUsage', existing.key_usage, usage);
          differs('Description', existing.description, description);
          differs('KeyState', existing.key_state, state);
          differs('Policy', JSON.stringify(JSON.parse(existing.policy)), JSON.stringify(JSON.parse(policy)));
          const have = k.store.tags(k.region, e.KeyId);
          if (!sameTags(have, tags)) differs('Tags', have, tags);
          if (material) {
            const id = k.rootKey.importedMaterialId(e.KeyId, material, MATERIAL_ID_BYTES);
            if (!existing.imported_material_id?.equals(id))
              throw conflict(`Seed conflict for key ${arn}: field KeyMaterial differs from the material in the store. Change the file, or use a fresh home.`);
          }
          result.Unchanged.push(arn);
        } else {
          if (k.store.wasDeleted(k.region, e.KeyId))
            throw conflict(
              `Seed conflict for key ${arn}: field KeyId names a key that was deleted from this store; key ids are never reused. Use a fresh home.`,
            );
          insertKey(k, {
            keyId: e.KeyId,
            keySpec: spec,
            keyUsage: usage,
            description,
            policy,
            tags,
            origin: material ? 'EXTERNAL' : 'AWS_KMS',
            multiRegion: e.KeyId.startsWith('mrk-'),
            ...(material ? { material } : {}),
          });
          if (state === 'Disabled') k.store.updateKey(k.region, e.KeyId, { key_state: 'Disabled' });
          if (state === 'PendingDeletion') {
            const days = e.PendingWindowInDays ?? 30;
            k.store.updateKey(k.region, e.KeyId, { key_state: 'PendingDeletion', pending_window_days: days, deletion_date: k.now() + days * DAY_MS });
          }
          result.Created.push(arn);
          created.push({
            KeyId: e.KeyId,
            KeyState: state,
            KeySpec: spec,
            KeyUsage: usage,
            Origin: material ? 'EXTERNAL' : 'AWS_KMS',
            Description: description,
          });
        }
        for (const alias of e.Aliases ?? []) {
          const a = k.store.getAlias(k.region, alias);
          if (a && a.target_key_id !== e.KeyId)
            throw conflict(
              `Seed conflict for alias ${k.aliasArn(alias)}: field TargetKeyId is ${a.target_key_id} in the store but ${e.KeyId} in the seed file.`,
            );
          if (!a) {
            k.store.insertAlias(k.region, alias, e.KeyId, k.now());
            result.AliasesCreated.push(k.aliasArn(alias));
          }
        }
      } finally {
        material?.fill(0);
      }
    }
  });
  kms.auditCreated(created, source);
  return result;
}

export function seedFromFile(kms: Kms, file: string): SeedResult {
  try {
    return applySeed(kms, readSeedFile(file), file);
  } catch (e) {
    if (e instanceof KmsError) throw e;
    throw KmsErrors.internal(`Seeding from ${file} failed: ${(e as Error).message}`);
  }
}
