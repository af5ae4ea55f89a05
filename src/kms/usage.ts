import type { KeyUse, KmsStore } from './store.js';

export type { KeyUse } from './store.js';

/**
 * Key last usage (GetKeyLastUsage): the last successful cryptographic
 * operation of each key, with its time and audit event id. Recording every
 * use as its own durable write would put an fsync on every Decrypt, so uses
 * are kept in memory and written in one transaction at most once a second,
 * before a GetKeyLastUsage of this process reads them, and at close. Another
 * process sees a use within that second. Which operations are a use is the
 * registry's `tracked` (operations.ts).
 */
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
    this.store.write(() => this.store.putKeyUses(uses));
  }

  lastUse(region: string, keyId: string): KeyUse | undefined {
    this.flush();
    return this.store.keyUse(region, keyId);
  }
}
