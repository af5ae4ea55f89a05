import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { putTags, tags } from '../rules/tags.js';
import { LIMITS, paginate, reqStr, strList } from '../validate.js';

/** TagResource, UntagResource and ListResourceTags. */
type Req = Record<string, unknown>;

export function tagResource(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const list = tags(req, 'Tags');
  k.store.write(() => {
    const row = k.key(ref, 'kms:TagResource', 'keyOnly');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    putTags(k, row.key_id, list);
  });
  return {};
}

export function untagResource(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const keys = strList(req, 'TagKeys', { required: true, max: 50 })!;
  k.store.write(() => {
    const row = k.key(ref, 'kms:UntagResource', 'keyOnly');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    k.store.deleteTags(k.region, row.key_id, keys);
  });
  return {};
}

export function listResourceTags(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'kms:ListResourceTags', 'keyOnly');
  const all = k.store.tags(k.region, row.key_id);
  const { page, ...more } = paginate(req, all, LIMITS.ListResourceTags, 'ListResourceTags', (t) => [t.TagKey]);
  return { Tags: page, ...more };
}
