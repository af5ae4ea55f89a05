import type { KmsContext } from '../context.js';
import { reqStr } from '../validate.js';

type Req = Record<string, unknown>;

/** GetKeyLastUsage: the key's last successful cryptographic operation since tracking began (an empty KeyLastUsage if none). */
export function getKeyLastUsage(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'kms:GetKeyLastUsage', 'keyOnly');
  const use = k.usage?.lastUse(row.region, row.key_id);
  const trackingStart = Number(k.store.getMeta('usage_tracking_start') ?? 0);
  return {
    KeyId: k.keyArn(row.key_id),
    KeyLastUsage: use ? { Operation: use.operation, Timestamp: new Date(use.ts), CloudTrailEventId: use.event_id, KmsRequestId: use.request_id } : {},
    TrackingStartDate: new Date(Math.max(trackingStart, row.creation_date)),
    KeyCreationDate: new Date(row.creation_date),
  };
}
