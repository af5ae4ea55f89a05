import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Home } from '../home.js';
import { openPrivate } from '../home.js';
import type { FuseServer } from '../native/index.js';
import type { ChangeRecord, TakenChanges } from '../volume/changefile.js';
import { blocksOf, changesPath, orInto, readChanges, stampOf, trustedChanges, writeChanges, writeHeader } from '../volume/changefile.js';
import { CHANGE_BLOCK } from '../volume/offsets.js';

/**
 * The card's change tracking (incremental snapshots): which CHANGE_BLOCKs of
 * the volume were written since its base snapshot. The live bitmap is the
 * FUSE server's (native/src/fuse_server.c, set by every write); this class
 * loads it from the volume's change file at attach, hands it to a snapshot
 * (take, then commit or abort), and saves it at a clean detach.
 *
 * Crash windows (the file is volume/changefile.ts's; 'all' = every block
 * counts as changed, which is always safe):
 * - attach, before the in-use header is durable: nothing is served yet, the
 *   file still describes the image;
 * - served (in use, durable before the mount): a card killed (kill -9, power
 *   cut) leaves it in use, and the next reader takes 'all', never the bits;
 * - a clean detach saves only after the FUSE server has stopped (no write can
 *   follow) and the image is fdatasynced; a crash inside writeChanges leaves
 *   an in-use header or a CRC that fails: 'all';
 * - a snapshot's take moves bits out of the live bitmap into a pending take
 *   (in memory): a card that dies before commit leaves in use ('all'); one
 *   detached cleanly before commit saves them back (an uncommitted take is
 *   aborted), and the late commit finds no card and changes nothing, so the
 *   base stays the old one with its bits a superset;
 * - commit writes the new base (still in use) durably; the base only matters
 *   once a clean detach writes the bits relative to it.
 */
export class ChangeTracker {
  private mount: FuseServer | null = null;
  /** Takes not committed yet, oldest first: each holds the bits written between the previous take and it. */
  private takes: { id: string; bits: Uint8Array }[] = [];
  private seq = 0;
  /** Take ids are this card's own: a commit meant for a card that has gone never matches a take of the next one. */
  private readonly prefix = crypto.randomBytes(8).toString('hex');

  private constructor(
    private fd: number,
    private base: string | null,
    /** Every block counts as changed since `base` (the bits loaded were not trusted, or tracking is off). */
    private all: boolean,
    /** The bits loaded at attach, merged into the FUSE server once it serves. */
    private loaded: Uint8Array,
    private bytes: number,
    /** False: the FUSE server keeps no bitmap (KMSVOL_CHANGE_TRACKING=0, for benchmarks): always 'all'. */
    readonly enabled: boolean,
  ) {}

  /**
   * Load the volume's change file and mark it in use (durably) before anything
   * is served. Precondition: the caller holds the volume's lock and `imageFd`
   * (the file is opened once, by descriptor, O_NOFOLLOW, created 0600 if missing).
   */
  static open(home: Home, volumeId: string, imageFd: number, bytes: number, enabled: boolean, log: Logger): ChangeTracker {
    const fd = openPrivate(changesPath(home, volumeId), 'r+', true);
    try {
      const rec = readChanges(fd);
      const blocks = blocksOf(bytes, CHANGE_BLOCK);
      const trusted = trustedChanges(rec, blocks, stampOf(imageFd));
      const base = 'invalid' in rec ? null : rec.base;
      const loaded = trusted === 'all' ? new Uint8Array(Math.ceil(blocks / 8)) : trusted;
      const t = new ChangeTracker(fd, base, trusted === 'all' || !enabled, loaded, bytes, enabled);
      if (trusted === 'all') {
        const why =
          'invalid' in rec
            ? rec.invalid
            : rec.state !== 'clean'
              ? 'left in use (its card died)'
              : rec.all
                ? 'all'
                : !rec.base
                  ? 'no base'
                  : 'the image changed';
        log.info({ volumeId, base, why }, 'change tracking: every block counts as changed until the next snapshot');
      }
      writeHeader(fd, t.record('in-use', stampOf(imageFd)));
      return t;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  private blocks(): number {
    return blocksOf(this.bytes, CHANGE_BLOCK);
  }

  private empty(): Uint8Array {
    return new Uint8Array(Math.ceil(this.blocks() / 8));
  }

  private record(state: ChangeRecord['state'], image: ChangeRecord['image'], bits = this.empty()): ChangeRecord {
    return { state, all: this.all, base: this.base, blocks: this.blocks(), image, bits };
  }

  /** The FUSE server now serves (started with tracking when enabled): give it the bits loaded. */
  serving(mount: FuseServer): void {
    this.mount = mount;
    if (this.enabled) mount.changes('merge', this.loaded);
  }

  /** The volume grew to `bytes` (the FUSE server's bitmap already covers it). */
  resize(bytes: number): void {
    this.bytes = bytes;
  }

  /**
   * For a snapshot, while the card is frozen: the blocks changed since the
   * base, taken out of the live bitmap (writes from here on start a new set).
   * The answer covers every take not committed yet, all relative to the base.
   */
  take(): TakenChanges {
    const bits = this.empty();
    if (this.enabled && this.mount) this.mount.changes('take', bits);
    const id = `${this.prefix}.${++this.seq}`;
    this.takes.push({ id, bits });
    const union = this.empty();
    for (const t of this.takes) orInto(union, t.bits);
    return { takeId: id, base: this.base, all: this.all, blocks: this.blocks(), bits: Buffer.from(union).toString('base64') };
  }

  /**
   * The snapshot of take `id` is durable: it is the new base, and that take
   * and every earlier one are done (the later ones hold only writes after it).
   * False when the take is unknown (already committed, or superseded): nothing changes.
   */
  commit(id: string, snapshotId: string, imageFd: number): boolean {
    const i = this.takes.findIndex((t) => t.id === id);
    if (i < 0) return false;
    this.takes.splice(0, i + 1);
    this.base = snapshotId;
    this.all = !this.enabled;
    writeHeader(this.fd, this.record('in-use', stampOf(imageFd)));
    return true;
  }

  /** The snapshot of take `id` failed: its bits go back (to the next take, or the live bitmap). */
  abort(id: string): void {
    const i = this.takes.findIndex((t) => t.id === id);
    if (i < 0) return;
    const [t] = this.takes.splice(i, 1);
    const next = this.takes[i];
    if (next) orInto(next.bits, t!.bits);
    else if (this.enabled && this.mount) this.mount.changes('merge', t!.bits);
    else orInto(this.loaded, t!.bits);
  }

  /**
   * A clean detach, once the FUSE server has stopped and the image is
   * fdatasynced: save the bits (with every uncommitted take's) and mark the
   * file clean, then close it.
   */
  save(imageFd: number): void {
    const bits = this.empty();
    if (this.enabled && this.mount) this.mount.changes('peek', bits);
    else orInto(bits, this.loaded);
    for (const t of this.takes) orInto(bits, t.bits);
    writeChanges(this.fd, this.record('clean', stampOf(imageFd), bits));
    this.release();
  }

  /** Close the file without saving (a failed detach leaves it in use: 'all'). Idempotent. */
  release(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
