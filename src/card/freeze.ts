import fs from 'node:fs';
import type { Logger } from 'pino';
import type { FuseServer } from '../native/index.js';
import { freezeFileSystem } from '../native/loop.js';
import { Ec2Errors } from '../volume/errors.js';
import type { HeldLoop } from './loop.js';

/**
 * A card's freezes for point-in-time snapshots (the control socket's freeze,
 * renew and thaw): leases on one frozen window of what the card serves.
 */
export class Freezes {
  constructor(
    private readonly volumeId: string,
    /** What the card serves now (both are null once it has stopped). */
    private readonly served: () => { mount: FuseServer | null; loop: HeldLoop | null },
    private readonly log: Logger,
  ) {}

  private frozen: { fsFd?: number; timer: NodeJS.Timeout; holders: Set<number> } | null = null;
  private freezing: Promise<void> | null = null;
  private count = 0;

  /**
   * Quiesce for a point-in-time snapshot: freeze the filesystem mounted on the
   * loop device (so it is consistent, not just crash-consistent), then hold
   * writes back in the FUSE server and fdatasync. Resolves with the freeze's
   * id, for `renew` and `thaw`.
   *
   * Precondition: snapshots taken at once (EC2 allows several per volume)
   * share one frozen window: a freeze while frozen, or while another is being
   * made, joins it, and the window ends with the last holder's thaw.
   * A freeze is a lease: nobody renewing it for `leaseMs` (a snapshotter that
   * died) thaws it, and its holders' thaw then fails (see thaw).
   */
  async freeze(leaseMs: number): Promise<number> {
    while (this.freezing) await this.freezing.catch(() => undefined);
    const { mount, loop } = this.served();
    if (!mount) throw Ec2Errors.incorrectState(`Volume ${this.volumeId} is not being served.`);
    const id = ++this.count;
    const expire = () => setTimeout(() => void this.thaw(), leaseMs);
    if (this.frozen) {
      this.frozen.holders.add(id);
      clearTimeout(this.frozen.timer);
      this.frozen.timer = expire();
      return id;
    }
    this.freezing = (async () => {
      const fsFd = loop?.openFileSystem();
      try {
        if (fsFd !== undefined) freezeFileSystem(fsFd, true);
        mount.freeze(true);
      } catch (e) {
        if (fsFd !== undefined) fs.closeSync(fsFd);
        throw e;
      }
      this.frozen = { fsFd, holders: new Set([id]), timer: expire() };
      this.log.info({ volumeId: this.volumeId, fileSystem: fsFd !== undefined }, 'frozen for a snapshot');
    })();
    try {
      await this.freezing;
    } finally {
      this.freezing = null;
    }
    return id;
  }

  /** True while writes are held back (a take of the change bitmap is point-in-time only then). */
  get active(): boolean {
    return this.frozen !== null;
  }

  /** Keep freeze `id` for another lease; false when it has already ended. */
  renew(id: number, leaseMs: number): boolean {
    const f = this.frozen;
    if (!f?.holders.has(id)) return false;
    clearTimeout(f.timer);
    f.timer = setTimeout(() => void this.thaw(), leaseMs);
    return true;
  }

  /**
   * End freeze `id` (none: every freeze, for an expired lease and detach); the
   * last holder's end lets writes continue. Postcondition: false when freeze
   * `id` had already ended, so writes went on while its holder copied.
   */
  async thaw(id?: number): Promise<boolean> {
    while (this.freezing) await this.freezing.catch(() => undefined);
    const f = this.frozen;
    if (id !== undefined && !f?.holders.delete(id)) return false;
    if (!f || (id !== undefined && f.holders.size > 0)) return true;
    this.frozen = null;
    clearTimeout(f.timer);
    this.served().mount?.freeze(false);
    if (f.fsFd !== undefined) {
      try {
        freezeFileSystem(f.fsFd, false);
      } catch {
        /* thawed already (fsfreeze --unfreeze by hand) */
      } finally {
        fs.closeSync(f.fsFd);
      }
    }
    this.log.info({ volumeId: this.volumeId, expired: id === undefined }, 'thawed');
    return true;
  }
}
