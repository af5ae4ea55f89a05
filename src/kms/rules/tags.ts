import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import type { TagRow } from '../store.js';
import { str } from '../validate.js';

type Req = Record<string, unknown>;
/** A key's tag, with AWS's field names. */
export type Tag = TagRow;

/** A request's tag list: each TagKey 1-128 characters and not aws:, each TagValue 0-256. */
export function tags(req: Req, field: string): Tag[] {
  const v = req[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw KmsErrors.validation(`${field} must be a list of {TagKey, TagValue}.`);
  return v.map((t: unknown) => {
    const tag = (t ?? {}) as Record<string, unknown>;
    const key = str(tag, 'TagKey', { required: true, max: 128 })!;
    const value = str(tag, 'TagValue', { required: true, min: 0, max: 256 })!;
    if (key.toLowerCase().startsWith('aws:')) throw KmsErrors.tag(`Tag keys beginning with "aws:" are reserved for AWS. Rename the tag ${key}.`);
    return { TagKey: key, TagValue: value };
  });
}

/** Add or overwrite tags on a key. Precondition: a key has at most 50 tags. */
export function putTags(k: KmsContext, keyId: string, list: Tag[], region = k.region): void {
  const n = k.store.putTags(region, keyId, list);
  if (n > 50) throw KmsErrors.tag(`A KMS key can have at most 50 tags; this request would give ${k.keyArn(keyId)} ${n}. Remove some with UntagResource first.`);
}
