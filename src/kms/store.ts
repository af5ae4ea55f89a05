import crypto from 'node:crypto';
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { insertRow, openDatabase } from '../sqlite.js';
import type {
  AliasRow,
  CustomKeyStoreRow,
  CustomStoreKeyRow,
  GrantRow,
  HsmClusterRow,
  IdentityPolicyRow,
  ImportParametersRow,
  KeyRow,
  KeyUse,
  MaterialRow,
  RoleRow,
  SessionRow,
  TagRow,
} from './schema.js';
import { MIGRATIONS, SCHEMA, SCHEMA_VERSION } from './schema.js';

// The row types live with the schema; callers import them from here too.
export type * from './schema.js';

/**
 * The KMS store: SQLite (WAL, synchronous=FULL). Several processes use it at
 * once (CLI calls, cards, the server); every mutation runs in a BEGIN IMMEDIATE
 * transaction and a generous busy timeout makes writers queue, never fail.
 */
export class KmsStore {
  readonly db: Database.Database;
  readonly storeId: Buffer;
  readonly created: boolean;
  private readonly stmts = new Map<string, Database.Statement>();
  /**
   * Read cache of key rows and materials, valid while PRAGMA data_version is
   * unchanged (no other connection committed) and cleared after our own writes.
   * One pragma per lookup replaces several queries on the hot path.
   */
  private cacheVersion = -1;
  private readonly cache = new Map<string, KeyRow | MaterialRow | undefined>();

  constructor(file: string) {
    const created = !fs.existsSync(file) || fs.statSync(file).size === 0;
    this.db = openDatabase(file);
    const refuse = (version: string | undefined) => {
      this.db.close();
      const newer = Number(version) > Number(SCHEMA_VERSION);
      return new Error(
        `The KMS store ${file} has schema version ${version}; this kmsvol reads version ${SCHEMA_VERSION}. ${newer ? 'A newer kmsvol wrote it: use that release (or a later one) with this home, or another KMSVOL_HOME.' : 'It cannot be migrated: use the kmsvol release that wrote it.'}`,
      );
    };
    const ok = this.write(() => {
      // An existing store is upgraded first (its tables predate SCHEMA); a new one just gets SCHEMA.
      const existing = this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get() !== undefined;
      // Precondition: a store from a newer kmsvol is refused before anything is written to it.
      if (existing && Number(this.getMeta('schema_version')) > Number(SCHEMA_VERSION)) return false;
      for (let v = existing ? this.getMeta('schema_version') : undefined; v && MIGRATIONS[v]; v = this.getMeta('schema_version')) {
        this.db.exec(MIGRATIONS[v]!);
        this.setMeta('schema_version', String(Number(v) + 1));
      }
      this.db.exec(SCHEMA);
      // Usage tracking (GetKeyLastUsage) starts when a store first has the table.
      if (!this.getMeta('usage_tracking_start')) this.setMeta('usage_tracking_start', String(Date.now()));
      if (!this.getMeta('store_id')) {
        this.setMeta('store_id', crypto.randomBytes(16).toString('hex'));
        this.setMeta('schema_version', SCHEMA_VERSION);
      }
      return true;
    });
    const version = this.getMeta('schema_version');
    if (!ok || version !== SCHEMA_VERSION) throw refuse(version);
    this.storeId = Buffer.from(this.getMeta('store_id')!, 'hex');
    this.created = created;
  }

  /** Run `fn` in a BEGIN IMMEDIATE transaction: writers queue on the busy timeout. */
  write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.cache.clear();
    }
  }

  /** Run `fn` in a transaction that is always rolled back (a DryRun): it sees and checks everything, and changes nothing. */
  rollback<T>(fn: () => T): T {
    const undo = Symbol('rollback');
    let out: T | undefined;
    try {
      this.db
        .transaction(() => {
          out = fn();
          throw undo;
        })
        .immediate();
    } catch (e) {
      if (e !== undo) throw e;
    } finally {
      this.cache.clear();
    }
    return out as T;
  }

  /**
   * Validate the read cache now: one PRAGMA data_version for all the lookups
   * of one KMS call (Kms.invokeAs), instead of one per lookup. The call sees
   * every commit made before it started. `endCall` returns to per-lookup checks.
   */
  beginCall(): void {
    this.validate();
    this.inCall = true;
  }

  endCall(): void {
    this.inCall = false;
  }

  private inCall = false;

  private validate(): void {
    const v = this.stmt('PRAGMA data_version').pluck().get() as number;
    if (v !== this.cacheVersion) {
      this.cache.clear();
      this.cacheVersion = v;
    }
  }

  /** Cached lookup outside transactions; inside one, always read the database. */
  private cached<T extends KeyRow | MaterialRow>(key: string, load: () => T | undefined): T | undefined {
    if (this.db.inTransaction) return load();
    if (!this.inCall) this.validate();
    if (this.cache.has(key)) return this.cache.get(key) as T | undefined;
    const row = load();
    this.cache.set(key, row);
    return row;
  }

  stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  getMeta(k: string): string | undefined {
    return (this.stmt('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  }

  setMeta(k: string, v: string): void {
    this.stmt('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(k, v);
  }

  getKey(region: string, keyId: string): KeyRow | undefined {
    return this.cached(
      `k\0${region}\0${keyId}`,
      () => this.stmt('SELECT * FROM keys WHERE region = ? AND key_id = ?').get(region, keyId) as KeyRow | undefined,
    );
  }

  insertKey(row: KeyRow): void {
    insertRow(this.db, 'keys', row);
  }

  /** Update the named columns of a key row. */
  updateKey(region: string, keyId: string, fields: Partial<KeyRow>): void {
    const cols = Object.keys(fields).sort();
    this.stmt(`UPDATE keys SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE region = @region_ AND key_id = @key_id_`).run({
      ...fields,
      region_: region,
      key_id_: keyId,
    });
  }

  regionsWithKeys(): string[] {
    return (this.stmt('SELECT DISTINCT region FROM keys').all() as { region: string }[]).map((r) => r.region);
  }

  listKeys(region: string): KeyRow[] {
    return this.stmt('SELECT * FROM keys WHERE region = ? ORDER BY creation_date, key_id').all(region) as KeyRow[];
  }

  /** Remove a key and everything that belongs to it, for good. */
  purgeKey(region: string, keyId: string, now: number): void {
    this.stmt('DELETE FROM keys WHERE region = ? AND key_id = ?').run(region, keyId);
    this.stmt('DELETE FROM aliases WHERE region = ? AND target_key_id = ?').run(region, keyId);
    this.stmt('DELETE FROM tags WHERE region = ? AND key_id = ?').run(region, keyId);
    this.stmt('DELETE FROM grants WHERE region = ? AND key_id = ?').run(region, keyId);
    this.stmt('DELETE FROM import_parameters WHERE region = ? AND key_id = ?').run(region, keyId);
    const others = this.stmt('SELECT COUNT(*) AS n FROM keys WHERE key_id = ?').get(keyId) as { n: number };
    if (others.n === 0) this.stmt('DELETE FROM materials WHERE key_id = ?').run(keyId);
    this.stmt('INSERT OR REPLACE INTO deleted_keys (region, key_id, deleted_at) VALUES (?, ?, ?)').run(region, keyId, now);
  }

  wasDeleted(region: string, keyId: string): boolean {
    return this.stmt('SELECT 1 FROM deleted_keys WHERE region = ? AND key_id = ?').get(region, keyId) !== undefined;
  }

  currentMaterial(keyId: string): MaterialRow | undefined {
    return this.cached(
      `c\0${keyId}`,
      () => this.stmt('SELECT * FROM materials WHERE key_id = ? AND pending = 0 ORDER BY seq DESC LIMIT 1').get(keyId) as MaterialRow | undefined,
    );
  }

  material(keyId: string, materialId: Buffer): MaterialRow | undefined {
    return this.cached(
      `m\0${keyId}\0${materialId.toString('hex')}`,
      () => this.stmt('SELECT * FROM materials WHERE key_id = ? AND material_id = ?').get(keyId, materialId) as MaterialRow | undefined,
    );
  }

  materials(keyId: string): MaterialRow[] {
    return this.stmt('SELECT * FROM materials WHERE key_id = ? ORDER BY seq').all(keyId) as MaterialRow[];
  }

  insertMaterial(row: Omit<MaterialRow, 'seq' | 'pending' | 'description'> & { pending?: number; description?: string | null }): void {
    const next = this.stmt('SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM materials WHERE key_id = ?').get(row.key_id) as { s: number };
    this.stmt(
      'INSERT INTO materials (key_id, material_id, sealed, created, rotation_type, seq, pending, description) VALUES (@key_id, @material_id, @sealed, @created, @rotation_type, @seq, @pending, @description)',
    ).run({ pending: 0, description: null, ...row, seq: next.s });
  }

  /** A pending imported material becomes the current one (RotateKeyOnDemand): last in order, rotated now. */
  completePendingRotation(keyId: string, materialId: Buffer, at: number): void {
    const next = this.stmt('SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM materials WHERE key_id = ?').get(keyId) as { s: number };
    this.stmt("UPDATE materials SET pending = 0, seq = ?, created = ?, rotation_type = 'ON_DEMAND' WHERE key_id = ? AND material_id = ?").run(
      next.s,
      at,
      keyId,
      materialId,
    );
  }

  setMaterialDescription(keyId: string, materialId: Buffer, description: string): void {
    this.stmt('UPDATE materials SET description = ? WHERE key_id = ? AND material_id = ?').run(description, keyId, materialId);
  }

  deleteMaterial(keyId: string, materialId: Buffer): void {
    this.stmt('DELETE FROM materials WHERE key_id = ? AND material_id = ?').run(keyId, materialId);
  }

  deleteMaterials(keyId: string): void {
    this.stmt('DELETE FROM materials WHERE key_id = ?').run(keyId);
  }

  /** Grants on a key, oldest first. */
  grants(region: string, keyId: string): GrantRow[] {
    return this.stmt('SELECT * FROM grants WHERE region = ? AND key_id = ? ORDER BY creation_date, grant_id').all(region, keyId) as GrantRow[];
  }

  /** One grant of a key, or undefined. */
  grant(region: string, keyId: string, grantId: string): GrantRow | undefined {
    return this.stmt('SELECT * FROM grants WHERE region = ? AND key_id = ? AND grant_id = ?').get(region, keyId, grantId) as GrantRow | undefined;
  }

  /** A region's grant by id alone (grant ids are unique in a region), or undefined. */
  grantInRegion(region: string, grantId: string): GrantRow | undefined {
    return this.stmt('SELECT * FROM grants WHERE region = ? AND grant_id = ?').get(region, grantId) as GrantRow | undefined;
  }

  /** A region's grants that this principal may retire, oldest first. */
  retirableGrants(region: string, retiringPrincipal: string): GrantRow[] {
    return this.stmt('SELECT * FROM grants WHERE region = ? AND retiring_principal = ? ORDER BY creation_date, grant_id').all(
      region,
      retiringPrincipal,
    ) as GrantRow[];
  }

  insertGrant(row: GrantRow): void {
    insertRow(this.db, 'grants', row);
  }

  deleteGrant(region: string, grantId: string): void {
    this.stmt('DELETE FROM grants WHERE region = ? AND grant_id = ?').run(region, grantId);
  }

  /** A key's tags, by tag key. */
  tags(region: string, keyId: string): TagRow[] {
    return this.stmt('SELECT tag_key AS TagKey, tag_value AS TagValue FROM tags WHERE region = ? AND key_id = ? ORDER BY tag_key').all(
      region,
      keyId,
    ) as TagRow[];
  }

  /** Add or overwrite tags; returns how many tags the key has now. */
  putTags(region: string, keyId: string, list: readonly TagRow[]): number {
    const ins = this.stmt('INSERT INTO tags (region, key_id, tag_key, tag_value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET tag_value = excluded.tag_value');
    for (const t of list) ins.run(region, keyId, t.TagKey, t.TagValue);
    return (this.stmt('SELECT COUNT(*) AS n FROM tags WHERE region = ? AND key_id = ?').get(region, keyId) as { n: number }).n;
  }

  deleteTags(region: string, keyId: string, tagKeys: readonly string[]): void {
    const del = this.stmt('DELETE FROM tags WHERE region = ? AND key_id = ? AND tag_key = ?');
    for (const t of tagKeys) del.run(region, keyId, t);
  }

  /** The regions holding a row of this (multi-Region) key id, sorted. */
  keyRegions(keyId: string): string[] {
    return (this.stmt('SELECT region FROM keys WHERE key_id = ? ORDER BY region').all(keyId) as { region: string }[]).map((r) => r.region);
  }

  /** Make `region` the primary of a multi-Region key on every one of its rows. */
  setPrimaryRegion(keyId: string, region: string): void {
    this.stmt('UPDATE keys SET primary_region = ? WHERE key_id = ?').run(region, keyId);
  }

  importParameters(tokenId: Buffer): ImportParametersRow | undefined {
    return this.stmt('SELECT * FROM import_parameters WHERE token_id = ?').get(tokenId) as ImportParametersRow | undefined;
  }

  insertImportParameters(row: ImportParametersRow): void {
    insertRow(this.db, 'import_parameters', row);
  }

  /** Forget import parameters that expired before `now`. */
  deleteImportParametersBefore(now: number): void {
    this.stmt('DELETE FROM import_parameters WHERE valid_to <= ?').run(now);
  }

  insertAlias(region: string, name: string, keyId: string, now: number): void {
    this.stmt('INSERT INTO aliases (region, alias_name, target_key_id, creation_date, last_updated_date) VALUES (?, ?, ?, ?, ?)').run(
      region,
      name,
      keyId,
      now,
      now,
    );
  }

  /** Point an existing alias at another key. */
  updateAlias(region: string, name: string, keyId: string, now: number): void {
    this.stmt('UPDATE aliases SET target_key_id = ?, last_updated_date = ? WHERE region = ? AND alias_name = ?').run(keyId, now, region, name);
  }

  deleteAlias(region: string, name: string): void {
    this.stmt('DELETE FROM aliases WHERE region = ? AND alias_name = ?').run(region, name);
  }

  /** The key ids of a region's grants with this name (a grant's name is not unique across keys). */
  grantKeysByName(region: string, name: string): string[] {
    return (this.stmt('SELECT DISTINCT key_id FROM grants WHERE region = ? AND name = ?').all(region, name) as { key_id: string }[]).map((r) => r.key_id);
  }

  getAlias(region: string, name: string): AliasRow | undefined {
    return this.stmt('SELECT * FROM aliases WHERE region = ? AND alias_name = ?').get(region, name) as AliasRow | undefined;
  }

  listAliases(region: string, keyId?: string): AliasRow[] {
    return (
      keyId
        ? this.stmt('SELECT * FROM aliases WHERE region = ? AND target_key_id = ? ORDER BY alias_name').all(region, keyId)
        : this.stmt('SELECT * FROM aliases WHERE region = ? ORDER BY alias_name').all(region)
    ) as AliasRow[];
  }

  insertHsmCluster(row: HsmClusterRow): void {
    insertRow(this.db, 'hsm_clusters', row);
  }

  hsmCluster(region: string, clusterId: string): HsmClusterRow | undefined {
    return this.stmt('SELECT * FROM hsm_clusters WHERE region = ? AND cluster_id = ?').get(region, clusterId) as HsmClusterRow | undefined;
  }

  hsmClusters(region: string): HsmClusterRow[] {
    return this.stmt('SELECT * FROM hsm_clusters WHERE region = ? ORDER BY created, cluster_id').all(region) as HsmClusterRow[];
  }

  insertCustomKeyStore(row: CustomKeyStoreRow): void {
    insertRow(this.db, 'custom_key_stores', row);
  }

  customKeyStore(region: string, storeId: string): CustomKeyStoreRow | undefined {
    return this.stmt('SELECT * FROM custom_key_stores WHERE region = ? AND store_id = ?').get(region, storeId) as CustomKeyStoreRow | undefined;
  }

  customKeyStores(region: string): CustomKeyStoreRow[] {
    return this.stmt('SELECT * FROM custom_key_stores WHERE region = ? ORDER BY created, store_id').all(region) as CustomKeyStoreRow[];
  }

  /** Update the named columns of a custom key store row. */
  updateCustomKeyStore(region: string, storeId: string, fields: Partial<CustomKeyStoreRow>): void {
    const cols = Object.keys(fields).sort();
    this.stmt(`UPDATE custom_key_stores SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE region = @region_ AND store_id = @store_id_`).run({
      ...fields,
      region_: region,
      store_id_: storeId,
    });
  }

  deleteCustomKeyStore(region: string, storeId: string): void {
    this.stmt('DELETE FROM custom_key_stores WHERE region = ? AND store_id = ?').run(region, storeId);
  }

  insertCustomStoreKey(row: CustomStoreKeyRow): void {
    insertRow(this.db, 'custom_store_keys', row);
  }

  customStoreKey(region: string, keyId: string): CustomStoreKeyRow | undefined {
    return this.stmt('SELECT * FROM custom_store_keys WHERE region = ? AND key_id = ?').get(region, keyId) as CustomStoreKeyRow | undefined;
  }

  /** The KMS key (in any state) of an external key store that uses this external key, if any. */
  keyOfXksKey(region: string, storeId: string, xksKeyId: string): string | undefined {
    return this.stmt(
      'SELECT c.key_id FROM custom_store_keys c JOIN keys k ON k.region = c.region AND k.key_id = c.key_id WHERE c.region = ? AND c.store_id = ? AND c.xks_key_id = ?',
    )
      .pluck()
      .get(region, storeId, xksKeyId) as string | undefined;
  }

  /** How many KMS keys (in any state) a custom key store holds. */
  customStoreKeyCount(region: string, storeId: string): number {
    return this.stmt(
      'SELECT count(*) FROM custom_store_keys c JOIN keys k ON k.region = c.region AND k.key_id = c.key_id WHERE c.region = ? AND c.store_id = ?',
    )
      .pluck()
      .get(region, storeId) as number;
  }

  // IAM and STS (iam.ts): access keys, roles and sessions; secrets sealed, session tokens kept as their SHA-256.

  insertAccessKey(r: { access_key_id: string; user_name: string; sealed_secret: Buffer; created: number }): void {
    this.stmt(
      'INSERT INTO iam_access_keys (access_key_id, user_name, sealed_secret, created) VALUES (@access_key_id, @user_name, @sealed_secret, @created)',
    ).run(r);
  }

  accessKey(accessKeyId: string): { user_name: string; sealed_secret: Buffer } | undefined {
    return this.stmt('SELECT user_name, sealed_secret FROM iam_access_keys WHERE access_key_id = ?').get(accessKeyId) as
      | { user_name: string; sealed_secret: Buffer }
      | undefined;
  }

  /** A session's credentials with its role's unique id. */
  session(accessKeyId: string): SessionRow | undefined {
    return this.stmt(
      'SELECT s.sealed_secret, s.token_hash, s.role_name, s.session_name, s.expires, r.role_id FROM iam_sessions s JOIN iam_roles r ON r.role_name = s.role_name WHERE s.access_key_id = ?',
    ).get(accessKeyId) as SessionRow | undefined;
  }

  /** A new session; sessions that expired more than a day ago are dropped on the way. */
  insertSession(r: Omit<SessionRow, 'role_id'> & { access_key_id: string }, expiredBefore: number): void {
    this.stmt('DELETE FROM iam_sessions WHERE expires < ?').run(expiredBefore);
    this.stmt(
      'INSERT INTO iam_sessions (access_key_id, sealed_secret, token_hash, role_name, session_name, expires) VALUES (@access_key_id, @sealed_secret, @token_hash, @role_name, @session_name, @expires)',
    ).run(r);
  }

  role(name: string): RoleRow | undefined {
    return this.stmt('SELECT role_id, trust_policy, created, max_session_duration, description FROM iam_roles WHERE role_name = ?').get(name) as
      | RoleRow
      | undefined;
  }

  /** Set a role's MaxSessionDuration; false when there is no such role. */
  setRoleMaxSessionDuration(name: string, seconds: number): boolean {
    return this.stmt('UPDATE iam_roles SET max_session_duration = ? WHERE role_name = ?').run(seconds, name).changes === 1;
  }

  /** Insert a role; false when one of that name exists, in any case (IAM names are unique without regard to case; it is left as it is). */
  insertRole(r: {
    role_name: string;
    role_id: string;
    trust_policy: string;
    created: number;
    max_session_duration?: number;
    description?: string | null;
  }): boolean {
    return (
      this.stmt(
        'INSERT OR IGNORE INTO iam_roles (role_name, role_id, trust_policy, created, max_session_duration, description) SELECT @role_name, @role_id, @trust_policy, @created, @max_session_duration, @description WHERE NOT EXISTS (SELECT 1 FROM iam_roles WHERE role_name = @role_name COLLATE NOCASE)',
      ).run({ max_session_duration: 3600, description: null, ...r }).changes === 1
    );
  }

  user(name: string): { user_id: string; created: number } | undefined {
    return this.stmt('SELECT user_id, created FROM iam_users WHERE user_name = ?').get(name) as { user_id: string; created: number } | undefined;
  }

  /** The name a user was created with, found without regard to case (IAM names are case-insensitive for uniqueness, case-preserving). */
  userName(name: string): string | undefined {
    return (this.stmt('SELECT user_name FROM iam_users WHERE user_name = ? COLLATE NOCASE').get(name) as { user_name: string } | undefined)?.user_name;
  }

  /** The name a role was created with, found without regard to case. */
  roleName(name: string): string | undefined {
    return (this.stmt('SELECT role_name FROM iam_roles WHERE role_name = ? COLLATE NOCASE').get(name) as { role_name: string } | undefined)?.role_name;
  }

  /** Insert a user; false when one of that name exists, in any case (IAM names are unique without regard to case). */
  insertUser(r: { user_name: string; user_id: string; created: number }): boolean {
    return (
      this.stmt(
        'INSERT OR IGNORE INTO iam_users (user_name, user_id, created) SELECT @user_name, @user_id, @created WHERE NOT EXISTS (SELECT 1 FROM iam_users WHERE user_name = @user_name COLLATE NOCASE)',
      ).run(r).changes === 1
    );
  }

  /** The inline policies of a user or role, by name. */
  identityPolicies(kind: 'user' | 'role', owner: string): IdentityPolicyRow[] {
    return this.stmt('SELECT * FROM iam_policies WHERE kind = ? AND owner = ? ORDER BY policy_name').all(kind, owner) as IdentityPolicyRow[];
  }

  /** Add or replace an inline policy. */
  putIdentityPolicy(r: IdentityPolicyRow): void {
    this.stmt(
      'INSERT INTO iam_policies (kind, owner, policy_name, document) VALUES (@kind, @owner, @policy_name, @document) ON CONFLICT DO UPDATE SET document = excluded.document',
    ).run(r);
  }

  /** Delete an inline policy; false when there was none of that name. */
  deleteIdentityPolicy(kind: 'user' | 'role', owner: string, name: string): boolean {
    return this.stmt('DELETE FROM iam_policies WHERE kind = ? AND owner = ? AND policy_name = ?').run(kind, owner, name).changes === 1;
  }

  // Key last usage (usage.ts).

  /** Record uses of keys; a newer use already in the store (from another process) is kept. */
  putKeyUses(uses: readonly KeyUse[]): void {
    const put = this.stmt(
      `INSERT INTO key_last_usage (region, key_id, operation, ts, event_id, request_id) VALUES (@region, @key_id, @operation, @ts, @event_id, @request_id)
       ON CONFLICT (region, key_id) DO UPDATE SET operation = excluded.operation, ts = excluded.ts, event_id = excluded.event_id, request_id = excluded.request_id
       WHERE excluded.ts >= key_last_usage.ts`,
    );
    for (const u of uses) put.run(u);
  }

  keyUse(region: string, keyId: string): KeyUse | undefined {
    return this.stmt('SELECT * FROM key_last_usage WHERE region = ? AND key_id = ?').get(region, keyId) as KeyUse | undefined;
  }

  close(): void {
    this.db.close();
  }
}
