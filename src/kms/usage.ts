import type { KmsStore } from './store.js';

/**
 * Key last usage (GetKeyLastUsage): the last successful cryptographic
 * operation of each key, with its time and audit event id. Recording every
 * use as its own durable write would put an fsync on every Decrypt, so uses
 * are kept in memory and written in one transaction at most once a second,
 * before a GetKeyLastUsage of this process reads them, and at close. Another
 * process sees a use within that second.
 */
export const TRACKED_OPERATIONS = new Set([
  'Decrypt',
  'DeriveSharedSecret',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateMac',
  'ReEncrypt',
  'Sign',
  'Verify',
  'VerifyMac',
]);

export interface KeyUse {
  region: string;
  key_id: string;
  operation: string;
  ts: number;
  event_id: string;
  request_id: string;
}

const FLUSH_MS = 1000;

export class UsageTracker {
  private pending = new Map<string, KeyUse>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: KmsStore) {}

  /** Record a use (the latest per key wins). */
  record(use: KeyUse): void {
    const id = `${use.region}\0${use.key_id}`;
    const prev = this.pending.get(id);
    if (!prev || prev.ts <= use.ts) this.pending.set(id, use);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Write pending uses; a newer use already in the store (from another process) is kept. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0 || !this.store.db.open) return;
    const uses = [...this.pending.values()];
    this.pending.clear();
    const put = this.store.stmt(
      `INSERT INTO key_last_usage (region, key_id, operation, ts, event_id, request_id) VALUES (@region, @key_id, @operation, @ts, @event_id, @request_id)
       ON CONFLICT (region, key_id) DO UPDATE SET operation = excluded.operation, ts = excluded.ts, event_id = excluded.event_id, request_id = excluded.request_id
       WHERE excluded.ts >= key_last_usage.ts`,
    );
    this.store.write(() => {
      for (const u of uses) put.run(u);
    });
  }

  lastUse(region: string, keyId: string): KeyUse | undefined {
    this.flush();
    return this.store.stmt('SELECT * FROM key_last_usage WHERE region = ? AND key_id = ?').get(region, keyId) as KeyUse | undefined;
  }
}
