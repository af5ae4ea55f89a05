import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import { DAY_MS } from '../clock.js';
import type { AuthRequest, Caller, CallState } from './authz.js';
import { authorize, authorizeIamOnly, callerOf } from './authz.js';
import { MATERIAL_ID_BYTES } from './blob.js';
import { KmsErrors } from './errors.js';
import type { RootKey } from './rootkey.js';
import type { GrantRow, KeyRow, KmsStore } from './store.js';
import type { UsageTracker } from './usage.js';

/** Services that have AWS managed keys (alias/aws/<service>). */
const AWS_SERVICES = new Set([
  'ebs',
  's3',
  'rds',
  'lambda',
  'secretsmanager',
  'ssm',
  'dynamodb',
  'sns',
  'sqs',
  'backup',
  'elasticfilesystem',
  'kinesis',
  'redshift',
  'glue',
  'logs',
]);

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport';

/** How a KeyId argument may be given to an operation. */
export type KeyRefKind = 'any' | 'keyOnly';

/**
 * What every operation shares: the store, the root key, the clock, the region
 * and account, and the rules for resolving key references and moving keys
 * through time (deletion windows, due rotations, material expiry).
 */
export class KmsContext {
  /** Creates (once) and returns the id of the AWS managed key of a service; set by Kms. */
  awsManagedKeyFactory?: (service: string) => string;
  /** The call being run (its caller and authorization decisions); set by Kms.invokeAs. */
  call?: CallState;
  /** Last-usage tracking of keys (GetKeyLastUsage); set by Kms. */
  usage?: UsageTracker;

  constructor(
    readonly store: KmsStore,
    readonly rootKey: RootKey,
    readonly clock: Clock,
    readonly region: string,
    readonly account: string,
  ) {}

  now(): number {
    return this.clock.now().getTime();
  }

  keyArn(keyId: string, region = this.region): string {
    return `arn:aws:kms:${region}:${this.account}:key/${keyId}`;
  }

  aliasArn(aliasName: string): string {
    return `arn:aws:kms:${this.region}:${this.account}:${aliasName}`;
  }

  /**
   * Resolve a KeyId argument (key id, key ARN, alias name or alias ARN, as the
   * operation allows) to a key id in this region. Throws NotFoundException.
   */
  resolveKeyId(ref: string, kind: KeyRefKind = 'any'): string {
    let r = ref;
    if (r.startsWith('arn:')) {
      const m = /^arn:aws:kms:([^:]+):(\d{12}):(key\/.+|alias\/.+)$/.exec(r);
      if (!m) throw KmsErrors.notFound(`Invalid arn ${ref}`);
      if (m[1] !== this.region || m[2] !== this.account)
        throw KmsErrors.notFound(`Invalid arn ${ref}: it names region ${m[1]} and account ${m[2]}; this KMS serves ${this.region} and ${this.account}.`);
      r = m[3]!;
      if (r.startsWith('key/')) r = r.slice(4);
    }
    if (r.startsWith('alias/')) {
      if (kind === 'keyOnly') throw KmsErrors.notFound(`Invalid keyId '${ref}': this operation takes a key id or key ARN, not an alias.`);
      const alias = this.store.getAlias(this.region, r);
      if (alias) return alias.target_key_id;
      // AWS managed keys (alias/aws/<service>) come into being the first time they are named.
      const managed = /^alias\/aws\/([a-z0-9-]+)$/.exec(r);
      if (managed && AWS_SERVICES.has(managed[1]!) && this.awsManagedKeyFactory) return this.awsManagedKeyFactory(managed[1]!);
      throw KmsErrors.notFound(`Alias ${this.aliasArn(r)} is not found.`);
    }
    if (!/^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.test(r)) {
      throw KmsErrors.notFound(`Invalid keyId '${ref}'`);
    }
    return r;
  }

  /**
   * The key row, settled to "now"; NotFoundException if it does not (or no
   * longer) exist. `auth` names what the caller must be allowed on it: an
   * action (kms:DescribeKey) or a whole AuthRequest; `null` only looks the key
   * up, for an operation that then decides by its own rule (CreateGrant,
   * RetireGrant, ListAliases' KeyId filter).
   */
  key(ref: string, auth: AuthRequest | string | null, kind: KeyRefKind = 'any'): KeyRow {
    const keyId = this.resolveKeyId(ref, kind);
    const row = this.store.getKey(this.region, keyId);
    const settled = row && this.settle(row);
    if (!settled) throw KmsErrors.notFound(`Key '${this.keyArn(keyId)}' does not exist`);
    if (auth !== null) this.authorize(settled, typeof auth === 'string' ? { action: auth } : auth);
    return settled;
  }

  /** A key usable for cryptography (Enabled, of `usage`) that the caller may use for `auth`. */
  usableKey(ref: string, auth: AuthRequest, usage = 'ENCRYPT_DECRYPT'): KeyRow {
    const row = this.key(ref, auth);
    this.assertUsable(row, usage);
    return row;
  }

  /** Allow or refuse `req` on the key for the running call (refused when there is no call); the grant that allowed it, if any. */
  authorize(row: KeyRow, req: AuthRequest): { grant?: GrantRow } {
    return authorize(this.call, { policy: row.policy, arn: this.keyArn(row.key_id, row.region), grants: () => this.store.grants(row.region, row.key_id) }, req);
  }

  /** Allow or refuse an action that IAM alone controls (CreateKey, ListKeys, ...) for the running call. */
  authorizeIamOnly(action: string): void {
    authorizeIamOnly(this.call, action, `arn:aws:kms:${this.region}:${this.account}:*`);
  }

  /** The running call's caller; AccessDeniedException when there is none. */
  caller(action: string, resource: string): Caller {
    return callerOf(this.call, action, resource);
  }

  assertUsable(row: KeyRow, usage = 'ENCRYPT_DECRYPT'): void {
    const arn = this.keyArn(row.key_id);
    // Precondition: a key in any state but Enabled refuses cryptographic operations.
    if (row.key_state === 'Disabled') throw KmsErrors.disabled(arn);
    if (row.key_state !== 'Enabled') throw KmsErrors.invalidState(arn, row.key_state);
    // Precondition: a key is used only for its KeyUsage.
    if (row.key_usage !== usage) throw KmsErrors.invalidKeyUsage(`${arn} key usage is ${row.key_usage} which is not valid for this operation.`);
  }

  /** Run `fn` with the key's current material unsealed (zeroed afterwards). */
  withCurrentMaterial<T>(row: KeyRow, fn: (material: Buffer, materialId: Buffer) => T): T {
    const mat = this.store.currentMaterial(row.key_id);
    if (!mat) throw KmsErrors.invalidState(this.keyArn(row.key_id), 'PendingImport');
    return this.withBackingKey(row.key_id, mat.material_id, mat.sealed, (m) => fn(m, mat.material_id));
  }

  /**
   * Bring a key up to "now": purge it when its deletion window has passed, rotate
   * it when rotation is due, expire imported material. Returns undefined when the
   * key is gone. Reads take no write lock unless a transition is actually due.
   */
  settle(row: KeyRow): KeyRow | undefined {
    const now = this.now();
    if (!transitionDue(row, now)) return row;
    const apply = () => {
      const cur = this.store.getKey(row.region, row.key_id);
      if (!cur) return undefined;
      return this.applyTransitions(cur, now);
    };
    return this.store.db.inTransaction ? apply() : this.store.write(apply);
  }

  private applyTransitions(row: KeyRow, now: number): KeyRow | undefined {
    if (row.key_state === 'PendingDeletion' && row.deletion_date !== null && now >= row.deletion_date) {
      this.store.purgeKey(row.region, row.key_id, now);
      return undefined;
    }
    if (row.valid_to !== null && now >= row.valid_to && row.key_state !== 'PendingImport') {
      // Imported material expired: AWS deletes it; the key waits for re-import.
      this.store.deleteMaterials(row.key_id);
      const fields: Partial<KeyRow> = { valid_to: null };
      if (row.key_state !== 'PendingDeletion') fields.key_state = 'PendingImport';
      this.store.updateKey(row.region, row.key_id, fields);
      return this.store.getKey(row.region, row.key_id);
    }
    if (rotationDue(row, now)) {
      let next = row.next_rotation_date!;
      const period = row.rotation_period_days! * DAY_MS;
      // Rotations that fell due while the key was Enabled happened on schedule.
      for (let i = 0; next <= now && i < 1000; i++) {
        this.newMaterial(row.key_id, next, 'AUTOMATIC');
        next += period;
      }
      this.store.updateKey(row.region, row.key_id, { next_rotation_date: next });
      return this.store.getKey(row.region, row.key_id);
    }
    return row;
  }

  /** Create and seal fresh backing material; it becomes the current material (or, `pending`, waits for RotateKeyOnDemand). */
  newMaterial(
    keyId: string,
    at: number,
    rotationType: 'AUTOMATIC' | 'ON_DEMAND' | null,
    material?: Buffer,
    materialId: Buffer = crypto.randomBytes(MATERIAL_ID_BYTES),
    extra: { pending?: boolean; description?: string } = {},
  ): Buffer {
    const key = material ?? crypto.randomBytes(32);
    try {
      const sealed = this.rootKey.seal(keyId, materialId, key);
      this.store.insertMaterial({
        key_id: keyId,
        material_id: materialId,
        sealed,
        created: at,
        rotation_type: rotationType,
        pending: extra.pending ? 1 : 0,
        description: extra.description ?? null,
      });
    } finally {
      key.fill(0);
    }
    return materialId;
  }

  /** Run `fn` with the unsealed backing key, zeroing it afterwards. */
  withBackingKey<T>(keyId: string, materialId: Buffer, sealed: Buffer, fn: (key: Buffer) => T): T {
    const key = this.rootKey.unseal(keyId, materialId, sealed);
    try {
      return fn(key);
    } finally {
      key.fill(0);
    }
  }
}

export function rotationDue(row: KeyRow, now: number): boolean {
  return row.key_state === 'Enabled' && row.rotation_enabled === 1 && row.next_rotation_date !== null && now >= row.next_rotation_date;
}

export function transitionDue(row: KeyRow, now: number): boolean {
  if (row.key_state === 'PendingDeletion' && row.deletion_date !== null && now >= row.deletion_date) return true;
  if (row.valid_to !== null && now >= row.valid_to && row.key_state !== 'PendingImport') return true;
  return rotationDue(row, now);
}
