import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { insertRow, openDatabase } from '../sqlite.js';
import { convertImage } from './blockconvert.js';
import { listBlockFiles, removeTempBlocks, unlinkBlock, writeBlock } from './blocks.js';

/**
 * The volume registry (EC2's view): volumes, attachments and account settings,
 * in SQLite (WAL, synchronous=FULL) shared by the CLI and the cards.
 */
export interface VolumeRow {
  volume_id: string;
  size: number;
  state: 'creating' | 'available' | 'in-use' | 'deleting' | 'deleted' | 'error';
  encrypted: number;
  kms_key_id: string | null;
  create_time: number;
  snapshot_id: string;
  availability_zone: string;
  volume_type: string;
  iops: number | null;
  throughput: number | null;
  image: string;
}

export interface SnapshotRow {
  snapshot_id: string;
  volume_id: string;
  state: 'pending' | 'completed' | 'error';
  progress: string;
  start_time: number;
  encrypted: number;
  kms_key_id: string | null;
  volume_size: number;
  description: string;
  /** '' once the snapshot is a block map (registry version 3); before, its whole-image file. */
  image: string;
  /** The volume's previous completed snapshot (or the EBS API's ParentSnapshotId): the lineage ListChangedBlocks follows. */
  parent_id?: string | null;
  /** The image's header area (LUKS2 headers and keyslot area, trailing zeros cut); null for an unencrypted snapshot. */
  header?: Buffer | null;
  /** Where the data area starts in an image made from this snapshot (0 unencrypted). */
  payload_offset?: number;
  /** The EBS direct APIs: when a pending snapshot started with StartSnapshot turns to error (epoch ms), and its client token. */
  complete_by?: number | null;
  client_token?: string | null;
}

/** One entry of a snapshot's block map: block `block_index` (512 KiB) holds the stored block `hash`. */
export interface BlockRow {
  block_index: number;
  hash: string;
  /** 1: written in this snapshot (read from the volume, or put through the EBS API); 0: the parent's. */
  own?: number;
  /** The SHA-256 (base64) of the block's plaintext as PutSnapshotBlock was given it (the LINEAR aggregate is over these). */
  checksum?: string | null;
}

export interface AttachmentRow {
  volume_id: string;
  /** The decrypted volume file (`<mount_dir>/<volume_id>`): a file, not a device (that is loop_device); '' while attaching. */
  volume_file: string;
  mount_dir: string;
  loop_device: string | null;
  attach_time: number;
  pid: number;
  state: 'attaching' | 'attached' | 'detaching';
  /** The token of the card's KMS grant, retired at detach. */
  grant_token: string | null;
  /** The device name the EC2 caller asked for (`/dev/sdf`); null for kmsvol's own attach. */
  device_name?: string | null;
  /**
   * The decrypted volume file's st_dev and st_ino once the card serves it: they
   * name the card's FUSE mount (its anonymous device is not reused while the
   * mount exists) and are the backing inode a loop device of this attachment
   * must have before anything releases it.
   */
  served_dev?: number | null;
  served_ino?: number | null;
  /** The unique id (statx STATX_MNT_ID_UNIQUE) of the card's FUSE mount: what cleanup after a dead card releases, and nothing else. */
  served_mnt?: number | null;
}

/** The latest modification of a volume (EBS Elastic Volumes). */
export interface ModificationRow {
  volume_id: string;
  state: 'modifying' | 'optimizing' | 'completed' | 'failed';
  status_message: string;
  progress: number;
  start_time: number;
  end_time: number | null;
  original_size: number;
  target_size: number;
  original_type: string;
  target_type: string;
  original_iops: number | null;
  target_iops: number | null;
  original_throughput: number | null;
  target_throughput: number | null;
}

export interface TagRow {
  resource_id: string;
  key: string;
  value: string;
}

/** The tables as a registry of version 0 has them; MIGRATIONS bring them to REGISTRY_VERSION (a new registry too). */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS volumes (
  volume_id TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, encrypted INTEGER NOT NULL,
  kms_key_id TEXT, create_time INTEGER NOT NULL, snapshot_id TEXT NOT NULL DEFAULT '',
  availability_zone TEXT NOT NULL, volume_type TEXT NOT NULL, iops INTEGER, throughput INTEGER, image TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
  volume_id TEXT PRIMARY KEY, device TEXT NOT NULL, mount_dir TEXT NOT NULL, loop_device TEXT,
  attach_time INTEGER NOT NULL, pid INTEGER NOT NULL, state TEXT NOT NULL, grant_token TEXT
);
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags (resource_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (resource_id, key));
CREATE TABLE IF NOT EXISTS volume_modifications (
  volume_id TEXT PRIMARY KEY, state TEXT NOT NULL, status_message TEXT NOT NULL DEFAULT '', progress INTEGER NOT NULL,
  start_time INTEGER NOT NULL, end_time INTEGER,
  original_size INTEGER NOT NULL, target_size INTEGER NOT NULL, original_type TEXT NOT NULL, target_type TEXT NOT NULL,
  original_iops INTEGER, target_iops INTEGER, original_throughput INTEGER, target_throughput INTEGER
);
CREATE TABLE IF NOT EXISTS client_tokens (token TEXT PRIMARY KEY, operation TEXT NOT NULL, request TEXT NOT NULL, resource_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
  snapshot_id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, state TEXT NOT NULL, progress TEXT NOT NULL,
  start_time INTEGER NOT NULL, encrypted INTEGER NOT NULL, kms_key_id TEXT, volume_size INTEGER NOT NULL,
  description TEXT NOT NULL DEFAULT '', image TEXT NOT NULL
);
`;

/**
 * The version of the registry's schema, kept in the file as PRAGMA
 * user_version: a new registry gets it, an older one is migrated up to it
 * (MIGRATIONS[n] takes version n to n + 1), a newer one is refused.
 */
export const REGISTRY_VERSION = 3;

/** What a migration may need besides the database: the home it lives in, and work to do once it has committed. */
interface MigrationEnv {
  root: string;
  afterCommit: (() => void)[];
}

const MIGRATIONS: readonly ((db: Database.Database, env: MigrationEnv) => void)[] = [
  // 0 -> 1: registries from before the schema was versioned, of any age: the columns attachments gained since.
  (db) => {
    const cols = new Set((db.prepare('PRAGMA table_info(attachments)').all() as { name: string }[]).map((c) => c.name));
    for (const [col, type] of [
      ['grant_token', 'TEXT'], // grants
      ['device_name', 'TEXT'], // the EC2 endpoint
      ['served_dev', 'INTEGER'], // served files identified by inode and mount
      ['served_ino', 'INTEGER'],
      ['served_mnt', 'INTEGER'],
    ])
      if (!cols.has(col!)) db.exec(`ALTER TABLE attachments ADD COLUMN ${col} ${type}`);
  },
  // 1 -> 2: the attachment's decrypted volume file was a column named device; it is a file, not a device.
  (db) => db.exec('ALTER TABLE attachments RENAME COLUMN device TO volume_file'),
  // 2 -> 3: snapshots become block maps over the content-addressed block store; each whole-image snapshot is converted
  // (its blocks stored, its header kept), and its image file is removed once the migration has committed.
  (db, env) => {
    db.exec(`
      ALTER TABLE snapshots ADD COLUMN parent_id TEXT;
      ALTER TABLE snapshots ADD COLUMN header BLOB;
      ALTER TABLE snapshots ADD COLUMN payload_offset INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE snapshots ADD COLUMN complete_by INTEGER;
      ALTER TABLE snapshots ADD COLUMN client_token TEXT;
      CREATE TABLE snapshot_blocks (
        snapshot_id TEXT NOT NULL, block_index INTEGER NOT NULL, hash TEXT NOT NULL,
        own INTEGER NOT NULL DEFAULT 1, checksum TEXT, PRIMARY KEY (snapshot_id, block_index)
      );
      CREATE INDEX snapshot_blocks_hash ON snapshot_blocks (hash);
    `);
    const put = db.prepare('INSERT INTO snapshot_blocks (snapshot_id, block_index, hash) VALUES (?, ?, ?)');
    const rows = db.prepare("SELECT snapshot_id, encrypted, volume_size, image FROM snapshots WHERE image != ''").all() as SnapshotRow[];
    for (const s of rows) {
      const file = path.resolve(env.root, s.image);
      const made = convertImage(env.root, file, s.encrypted === 1, s.volume_size);
      // A snapshot whose image is missing keeps its row as it was (CreateVolume from it fails, naming the file).
      if (!made) continue;
      for (const b of made.blocks) put.run(s.snapshot_id, b.block_index, b.hash);
      db.prepare("UPDATE snapshots SET header = ?, payload_offset = ?, image = '' WHERE snapshot_id = ?").run(made.header, made.payloadOffset, s.snapshot_id);
      env.afterCommit.push(() => fs.rmSync(file, { force: true }));
    }
  },
];

export class Registry {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = openDatabase(file);
    const refuseNewer = (version: number) => {
      // Precondition: a registry from a newer kmsvol is refused, before anything is written to it.
      if (version > REGISTRY_VERSION)
        throw new Error(
          `The volume registry ${file} has schema version ${version}; this kmsvol reads versions up to ${REGISTRY_VERSION}. A newer kmsvol wrote it: use that release (or a later one) with this home, or another KMSVOL_HOME.`,
        );
    };
    const env: MigrationEnv = { root: path.dirname(path.resolve(file)), afterCommit: [] };
    try {
      refuseNewer(this.schemaVersion());
      if (this.schemaVersion() === REGISTRY_VERSION) return;
      // A new registry, or an older one: made or migrated once, by whichever process takes the write lock first.
      this.write(() => {
        const version = this.schemaVersion();
        refuseNewer(version);
        if (version === REGISTRY_VERSION) return;
        this.db.exec(SCHEMA);
        for (let v = version; v < REGISTRY_VERSION; v++) MIGRATIONS[v]!(this.db, env);
        this.db.pragma(`user_version = ${REGISTRY_VERSION}`);
      });
      for (const f of env.afterCommit) f();
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /** The schema version the registry's file carries (SQLite's user_version; 0 before kmsvol versioned it). */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  getVolume(id: string): VolumeRow | undefined {
    return this.db.prepare('SELECT * FROM volumes WHERE volume_id = ?').get(id) as VolumeRow | undefined;
  }

  listVolumes(): VolumeRow[] {
    return this.db.prepare("SELECT * FROM volumes WHERE state != 'deleted' ORDER BY create_time, volume_id").all() as VolumeRow[];
  }

  insertVolume(v: VolumeRow): void {
    insertRow(this.db, 'volumes', v);
  }

  setVolumeState(id: string, state: VolumeRow['state']): void {
    this.db.prepare('UPDATE volumes SET state = ? WHERE volume_id = ?').run(state, id);
  }

  /** Change some of a volume's columns (ModifyVolume's new size and type, a new volume's state and key). */
  updateVolume(id: string, fields: Partial<Omit<VolumeRow, 'volume_id'>>): void {
    const cols = Object.keys(fields);
    this.db.prepare(`UPDATE volumes SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE volume_id = @id_`).run({ ...fields, id_: id });
  }

  deleteVolume(id: string): void {
    this.db.prepare('DELETE FROM volumes WHERE volume_id = ?').run(id);
  }

  getAttachment(id: string): AttachmentRow | undefined {
    return this.db.prepare('SELECT * FROM attachments WHERE volume_id = ?').get(id) as AttachmentRow | undefined;
  }

  /** Insert or update an attachment; a device name already recorded (by the attach request) is kept unless one is given. */
  putAttachment(a: AttachmentRow): void {
    this.db
      .prepare(
        `INSERT INTO attachments (volume_id, volume_file, mount_dir, loop_device, attach_time, pid, state, grant_token, device_name, served_dev, served_ino, served_mnt)
         VALUES (@volume_id, @volume_file, @mount_dir, @loop_device, @attach_time, @pid, @state, @grant_token, @device_name, @served_dev, @served_ino, @served_mnt)
         ON CONFLICT(volume_id) DO UPDATE SET volume_file = excluded.volume_file, mount_dir = excluded.mount_dir, loop_device = excluded.loop_device,
           attach_time = excluded.attach_time, pid = excluded.pid, state = excluded.state, grant_token = excluded.grant_token,
           device_name = COALESCE(excluded.device_name, attachments.device_name), served_dev = excluded.served_dev, served_ino = excluded.served_ino, served_mnt = excluded.served_mnt`,
      )
      .run({ device_name: null, served_dev: null, served_ino: null, served_mnt: null, ...a });
  }

  /**
   * The card's FUSE mount, recorded on the attach's row as soon as it exists
   * (before the loop device and readiness): a card killed in between leaves a
   * mount that cleanup can then identify and release.
   */
  recordServed(id: string, s: { served_dev: number; served_mnt: number | null }): void {
    this.db.prepare('UPDATE attachments SET served_dev = @served_dev, served_mnt = @served_mnt WHERE volume_id = @id').run({ id, ...s });
  }

  /** Record an attach in progress, unless the volume already has an attachment; false when it has. */
  claimAttachment(a: AttachmentRow): boolean {
    return (
      this.db
        .prepare(
          'INSERT OR IGNORE INTO attachments (volume_id, volume_file, mount_dir, loop_device, attach_time, pid, state, grant_token, device_name) VALUES (@volume_id, @volume_file, @mount_dir, @loop_device, @attach_time, @pid, @state, @grant_token, @device_name)',
        )
        .run({ device_name: null, ...a }).changes === 1
    );
  }

  setAttachmentState(id: string, state: AttachmentRow['state']): void {
    this.db.prepare('UPDATE attachments SET state = ? WHERE volume_id = ?').run(state, id);
  }

  /**
   * A card that has stopped serving its volume: the attachment stays, `detaching`
   * with no loop device, until whoever finishes the detach has retired the card's
   * grant (card/cleanup.ts); only then is the volume available again.
   */
  markCardGone(id: string, pid: number): void {
    this.db.prepare("UPDATE attachments SET state = 'detaching', loop_device = NULL WHERE volume_id = ? AND pid = ?").run(id, pid);
  }

  deleteAttachment(id: string): void {
    this.db.prepare('DELETE FROM attachments WHERE volume_id = ?').run(id);
  }

  getSnapshot(id: string): SnapshotRow | undefined {
    return this.db.prepare('SELECT * FROM snapshots WHERE snapshot_id = ?').get(id) as SnapshotRow | undefined;
  }

  listSnapshots(): SnapshotRow[] {
    return this.db.prepare('SELECT * FROM snapshots ORDER BY start_time, snapshot_id').all() as SnapshotRow[];
  }

  insertSnapshot(r: SnapshotRow): void {
    insertRow(this.db, 'snapshots', r);
  }

  updateSnapshot(id: string, fields: Partial<SnapshotRow>): void {
    const cols = Object.keys(fields);
    this.db.prepare(`UPDATE snapshots SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE snapshot_id = @id_`).run({ ...fields, id_: id });
  }

  /** Snapshots the EBS direct APIs started and nobody completed within their Timeout turn to error. */
  expireSnapshots(now: number): void {
    this.db
      .prepare("UPDATE snapshots SET state = 'error', complete_by = NULL WHERE state = 'pending' AND complete_by IS NOT NULL AND complete_by < ?")
      .run(now);
  }

  deleteSnapshot(id: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE snapshot_id = ?').run(id);
  }

  // The block store. Rule: a block file is written (if absent or damaged) and its map row inserted in one write
  // transaction, and unlinked only in a write transaction that finds no map row naming it; so a block some
  // map names always has its file, whichever processes store and free blocks at once.

  /** Set block `index` of a pending snapshot to `data` (stored under `hash` unless already stored); replaces what was there. */
  putBlock(root: string, snapshotId: string, index: number, hash: string, data: Uint8Array, checksum: string | null = null, guard?: () => void): string[] {
    return this.write(() => {
      guard?.(); // the caller's precondition, checked again under the write lock (e.g. the snapshot is still open)
      // Written even if some map names it: writeBlock keeps a sound file and replaces a damaged one with `data`.
      writeBlock(root, hash, data);
      const old = this.blockAt(snapshotId, index);
      this.db
        .prepare('INSERT OR REPLACE INTO snapshot_blocks (snapshot_id, block_index, hash, own, checksum) VALUES (?, ?, ?, 1, ?)')
        .run(snapshotId, index, hash, checksum);
      return old && old !== hash ? this.unlinkUnused(root, [old]) : [];
    });
  }

  /** Set block `index` of a snapshot to a block already in the store (as a parent's map names it). */
  shareBlock(snapshotId: string, index: number, hash: string): void {
    this.db.prepare('INSERT OR REPLACE INTO snapshot_blocks (snapshot_id, block_index, hash, own) VALUES (?, ?, ?, 0)').run(snapshotId, index, hash);
  }

  /** Block `index` of a snapshot becomes a hole again. */
  clearBlock(root: string, snapshotId: string, index: number): void {
    this.write(() => {
      const old = this.blockAt(snapshotId, index);
      this.db.prepare('DELETE FROM snapshot_blocks WHERE snapshot_id = ? AND block_index = ?').run(snapshotId, index);
      if (old) this.unlinkUnused(root, [old]);
    });
  }

  blockAt(snapshotId: string, index: number): string | undefined {
    return (
      this.db.prepare('SELECT hash FROM snapshot_blocks WHERE snapshot_id = ? AND block_index = ?').get(snapshotId, index) as { hash: string } | undefined
    )?.hash;
  }

  /** A snapshot's block map in block order, from block `start`, at most `limit` entries. */
  blockMap(snapshotId: string, start = 0, limit = -1): BlockRow[] {
    return this.db
      .prepare('SELECT block_index, hash, own, checksum FROM snapshot_blocks WHERE snapshot_id = ? AND block_index >= ? ORDER BY block_index LIMIT ?')
      .all(snapshotId, start, limit) as BlockRow[];
  }

  /** Give snapshot `to` the whole block map of `from` (an unencrypted copy shares every block). */
  copyBlockMap(from: string, to: string): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO snapshot_blocks (snapshot_id, block_index, hash, own) SELECT ?, block_index, hash, 0 FROM snapshot_blocks WHERE snapshot_id = ?',
      )
      .run(to, from);
  }

  /** Drop a snapshot's block map (in the caller's write transaction); returns the blocks it named, for unlinkUnused after commit. */
  dropBlockMap(snapshotId: string): string[] {
    const hashes = (this.db.prepare('SELECT DISTINCT hash FROM snapshot_blocks WHERE snapshot_id = ?').all(snapshotId) as { hash: string }[]).map(
      (r) => r.hash,
    );
    this.db.prepare('DELETE FROM snapshot_blocks WHERE snapshot_id = ?').run(snapshotId);
    return hashes;
  }

  /** How many map entries name a block (its reference count). */
  blockRefs(hash: string): number {
    return (this.db.prepare('SELECT count(*) AS n FROM snapshot_blocks WHERE hash = ?').get(hash) as { n: number }).n;
  }

  /** Unlink those of `hashes` that no map names any more; returns the ones unlinked. */
  unlinkUnused(root: string, hashes: string[]): string[] {
    return this.write(() => {
      const gone = hashes.filter((h) => this.blockRefs(h) === 0);
      for (const h of gone) unlinkBlock(root, h);
      return gone;
    });
  }

  /**
   * Unlink the block files only snapshot `snapshotId` names, its map left as
   * it is; returns them. For a snapshot that failed before it completed: on a
   * full disk, its rows cannot be deleted until its blocks have given back
   * their room. Under the write lock, so no other snapshot starts naming them.
   */
  unlinkOnlyNamedBy(root: string, snapshotId: string): string[] {
    return this.write(() => {
      const only = (
        this.db
          .prepare('SELECT DISTINCT hash FROM snapshot_blocks WHERE snapshot_id = ? AND hash NOT IN (SELECT hash FROM snapshot_blocks WHERE snapshot_id != ?)')
          .all(snapshotId, snapshotId) as { hash: string }[]
      ).map((r) => r.hash);
      for (const h of only) unlinkBlock(root, h);
      return only;
    });
  }

  /**
   * The sweep of orphans: block files no map names (a crash between a delete's commit and its unlinks), and the
   * temporary files of writers killed inside writeBlock (safe under the write lock: every writer holds it while it
   * writes a block, so none of them is live). Returns the names removed.
   */
  sweepOrphanBlocks(root: string): string[] {
    return this.write(() => [...removeTempBlocks(root), ...this.unlinkUnused(root, listBlockFiles(root))]);
  }

  tagsOf(resourceId: string): TagRow[] {
    return this.db.prepare('SELECT * FROM tags WHERE resource_id = ? ORDER BY key').all(resourceId) as TagRow[];
  }

  allTags(): TagRow[] {
    return this.db.prepare('SELECT * FROM tags ORDER BY resource_id, key').all() as TagRow[];
  }

  putTag(t: TagRow): void {
    this.db
      .prepare(
        'INSERT INTO tags (resource_id, key, value) VALUES (@resource_id, @key, @value) ON CONFLICT(resource_id, key) DO UPDATE SET value = excluded.value',
      )
      .run(t);
  }

  deleteTag(resourceId: string, key: string, value?: string): void {
    if (value === undefined) this.db.prepare('DELETE FROM tags WHERE resource_id = ? AND key = ?').run(resourceId, key);
    else this.db.prepare('DELETE FROM tags WHERE resource_id = ? AND key = ? AND value = ?').run(resourceId, key, value);
  }

  deleteTagsOf(resourceId: string): void {
    this.db.prepare('DELETE FROM tags WHERE resource_id = ?').run(resourceId);
  }

  getModification(id: string): ModificationRow | undefined {
    return this.db.prepare('SELECT * FROM volume_modifications WHERE volume_id = ?').get(id) as ModificationRow | undefined;
  }

  listModifications(): ModificationRow[] {
    return this.db.prepare('SELECT * FROM volume_modifications ORDER BY start_time, volume_id').all() as ModificationRow[];
  }

  putModification(m: ModificationRow): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO volume_modifications (volume_id, state, status_message, progress, start_time, end_time, original_size, target_size, original_type, target_type, original_iops, target_iops, original_throughput, target_throughput) VALUES (@volume_id, @state, @status_message, @progress, @start_time, @end_time, @original_size, @target_size, @original_type, @target_type, @original_iops, @target_iops, @original_throughput, @target_throughput)',
      )
      .run(m);
  }

  getClientToken(token: string): { token: string; operation: string; request: string; resource_id: string } | undefined {
    return this.db.prepare('SELECT * FROM client_tokens WHERE token = ?').get(token) as
      | { token: string; operation: string; request: string; resource_id: string }
      | undefined;
  }

  putClientToken(token: string, operation: string, request: string, resourceId: string): void {
    this.db.prepare('INSERT INTO client_tokens (token, operation, request, resource_id) VALUES (?, ?, ?, ?)').run(token, operation, request, resourceId);
  }

  /** This host's EC2 instance id (i- and 17 hex digits), made once and kept in the home. */
  instanceId(): string {
    const id = this.getSetting('instance_id');
    if (id) return id;
    return this.write(() => {
      const again = this.getSetting('instance_id');
      if (again) return again;
      const made = newId('i');
      this.setSetting('instance_id', made);
      return made;
    });
  }

  getSetting(k: string): string | undefined {
    return (this.db.prepare('SELECT v FROM settings WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  }

  setSetting(k: string, v: string | undefined): void {
    if (v === undefined) this.db.prepare('DELETE FROM settings WHERE k = ?').run(k);
    else this.db.prepare('INSERT INTO settings (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(k, v);
  }

  /** Drop the settings whose key starts with `prefix` and whose value, a JSON list of times, ends at or before `before` (ModifyVolume's rate records). */
  dropTimeSettingsBefore(prefix: string, before: number): void {
    this.db.prepare("DELETE FROM settings WHERE substr(k, 1, length(@prefix)) = @prefix AND json_extract(v, '$[#-1]') <= @before").run({ prefix, before });
  }

  close(): void {
    this.db.close();
  }
}

/** EC2-style ids: a prefix and 17 hex digits. */
export function newId(prefix: 'vol' | 'snap' | 'i'): string {
  return `${prefix}-${crypto.randomBytes(9).toString('hex').slice(0, 17)}`;
}
