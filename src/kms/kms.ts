import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import { clockFromEnv, DAY_MS } from '../clock.js';
import { configuredAccount, configuredRegion, DEFAULT_REGION } from '../config.js';
import type { Home } from '../home.js';
import { openHome } from '../home.js';
import { LEGACY_REGION } from '../region.js';
import { sqliteFault } from '../sqlite.js';
import { AuditLog } from './audit.js';
import type { Caller } from './authz.js';
import { parseBlob } from './blob.js';
import { KmsContext } from './context.js';
import { KmsError, KmsErrors } from './errors.js';
import { globalConditionKeys, identityOf } from './identity.js';
import { invokeOffThread, mayCallProxy } from './keystores/offload.js';
import { checkMembers, dryRunSucceeded } from './members.js';
import type { KmsOperation, OperationSpec } from './operations.js';
import { isKmsOperation, KMS_REGISTRY, OPERATION_FACTS } from './operations.js';
import { RootKey } from './rootkey.js';
import { checkGrantTokens } from './rules/grants.js';
import { insertKey } from './rules/keys.js';
import { KmsStore } from './store.js';
import { UsageTracker } from './usage.js';
import { checkLimit, wellFormedText } from './validate.js';

export type { KmsOperation } from './operations.js';
export { isKmsOperation } from './operations.js';

type Handlers = { [Op in KmsOperation]: (typeof KMS_REGISTRY)[Op]['handler'] };

/** Every operation's handler, by its AWS name: the library's table, derived from the registry (operations.ts). */
export const KMS_HANDLERS = Object.fromEntries(Object.entries(KMS_REGISTRY).map(([op, spec]) => [op, spec.handler])) as Handlers;

export type KmsRequest = Record<string, unknown>;
export type KmsResponse<Op extends KmsOperation> = ReturnType<Handlers[Op]>;

export interface KmsOptions {
  /** A home directory path, or an opened Home. */
  home: string | Home;
  clock?: Clock;
  region?: string;
  account?: string;
  /** The calling principal's ARN, recorded in the audit log. */
  principal?: string;
  /** Write the audit log (default true). */
  audit?: boolean;
}

/**
 * The local KMS. Operations are synchronous and run against the SQLite store;
 * `invoke` validates, runs, and appends one audit record per call.
 */
export class Kms {
  readonly ctx: KmsContext;
  readonly home: Home;
  private readonly audit: AuditLog;
  readonly principal: string;
  private readonly audited: boolean;

  private constructor(home: Home, ctx: KmsContext, audit: AuditLog, principal: string, audited: boolean) {
    this.home = home;
    this.ctx = ctx;
    this.audit = audit;
    this.principal = principal;
    this.audited = audited;
  }

  static open(opts: KmsOptions): Kms {
    const home = typeof opts.home === 'string' ? openHome(opts.home) : opts.home;
    // Precondition: a root key file that is refused leaves no KMS store behind: one that exists is checked before the store is opened or made.
    const present = RootKey.loadIfPresent(home.rootKeyFile);
    let store: KmsStore;
    try {
      store = new KmsStore(home.kmsDb);
    } catch (e) {
      present?.destroy();
      throw e;
    }
    let rootKey: RootKey;
    try {
      rootKey = present ?? RootKey.load(home.rootKeyFile, store.created || store.getMeta('root_key_check') === undefined);
      const check = store.getMeta('root_key_check');
      if (check === undefined) store.write(() => store.setMeta('root_key_check', rootKey.checkValue()));
      else if (check !== rootKey.checkValue()) {
        rootKey.destroy();
        throw KmsErrors.internal(
          `The root key ${home.rootKeyFile} does not belong to the KMS store ${home.kmsDb}. Point KMSVOL_ROOT_KEY_FILE at the store's own root key.`,
        );
      }
    } catch (e) {
      store.close();
      throw e;
    }
    // Chosen as the CLI and the Kmsvol API choose them (src/config.ts).
    const region = configuredRegion(opts.region) ?? DEFAULT_REGION;
    const account = configuredAccount(opts.account);
    const ctx = new KmsContext(store, rootKey, opts.clock ?? clockFromEnv(), region, account);
    const audit = new AuditLog(opts.audit === false ? undefined : home.auditLog);
    const kms = new Kms(home, ctx, audit, opts.principal ?? `arn:aws:iam::${account}:root`, opts.audit !== false);
    ctx.awsManagedKeyFactory = (service) => kms.awsManagedKey(service);
    ctx.usage = new UsageTracker(store);
    return kms;
  }

  get region(): string {
    return this.ctx.region;
  }

  /**
   * True when this region has no keys and the home's keys are all in region
   * `local`, where kmsvol made them before it used AWS's regions.
   */
  keysOnlyInLocalRegion(): boolean {
    if (this.region === LEGACY_REGION) return false;
    const regions = this.ctx.store.regionsWithKeys();
    return regions.length > 0 && regions.every((r) => r === LEGACY_REGION);
  }

  get account(): string {
    return this.ctx.account;
  }

  /**
   * invokeAs for a server that serves other callers meanwhile: an operation
   * that may wait for an external key store's proxy runs in a worker thread
   * (keystores/offload.ts), so that wait blocks no one else; any other runs
   * here, as invokeAs.
   */
  async invokeAsyncAs<Op extends KmsOperation>(caller: string | Caller, op: Op, req: KmsRequest = {}): Promise<KmsResponse<Op>> {
    const offload = req !== null && typeof req === 'object' && mayCallProxy(String(op), req, this.storeIsExternal, this.keyIsExternal);
    if (!offload) return this.invokeAs(caller, op, req);
    return (await invokeOffThread({
      home: this.home.root,
      region: this.region,
      account: this.account,
      audit: this.audited,
      now: this.ctx.clock.now().getTime(),
      caller,
      op: String(op),
      req,
    })) as KmsResponse<Op>;
  }

  private readonly storeIsExternal = (storeId: string): boolean => this.ctx.store.customKeyStore(this.region, storeId)?.type === 'EXTERNAL_KEY_STORE';

  /** A key reference (id, ARN, alias) or a ciphertext (the key its header names) that resolves to a key in an external key store. */
  private readonly keyIsExternal = (ref: string | Uint8Array): boolean => {
    try {
      // An alias is looked up, not resolved: resolving alias/aws/<service> would create the managed key before the call.
      const alias = typeof ref === 'string' ? /^(?:arn:aws:kms:[^:]+:\d{12}:)?(alias\/.+)$/.exec(ref)?.[1] : undefined;
      const keyId =
        typeof ref !== 'string' ? parseBlob(ref).keyId : alias ? this.ctx.store.getAlias(this.region, alias)?.target_key_id : this.ctx.resolveKeyId(ref);
      if (keyId === undefined) return false;
      return this.ctx.store.getKey(this.region, keyId)?.origin === 'EXTERNAL_KEY_STORE';
    } catch {
      return false;
    }
  };

  /** Run one operation by its AWS name. Errors are KmsError with AWS's exception name. */
  invoke<Op extends KmsOperation>(op: Op, req: KmsRequest = {}): KmsResponse<Op> {
    return this.invokeAs(this.principal, op, req);
  }

  /**
   * The same on behalf of another caller: the server's authenticated
   * principal, a card's role session, or a principal acting through a service
   * (kms:ViaService). The key policy and grants decide what it may do; the
   * audit log records the caller and every decision.
   */
  invokeAs<Op extends KmsOperation>(caller: string | Caller, op: Op, req: KmsRequest = {}): KmsResponse<Op> {
    const time = this.ctx.clock.now();
    const who: Caller = typeof caller === 'string' ? { principal: caller } : caller;
    const store = this.ctx.store;
    const account = this.account;
    const region = this.region;
    const call = {
      caller: who,
      op: String(op),
      decisions: [],
      facts: OPERATION_FACTS,
      identity: () => identityOf(store, account, who.principal),
      globals: () => globalConditionKeys(store, account, who.principal, { region, viaService: who.viaService, now: time.getTime() }),
    };
    const record = {
      time,
      op,
      region: this.region,
      principal: who.principal,
      viaService: who.viaService,
      requestId: who.requestId,
      request: req,
      decisions: call.decisions,
    };
    this.ctx.call = call;
    this.ctx.store.beginCall();
    try {
      if (!isKmsOperation(op)) throw new KmsError('UnknownOperationException', `${String(op)} is not a KMS operation this service supports.`);
      if (req === null || typeof req !== 'object' || Array.isArray(req)) throw KmsErrors.validation('The request body must be a JSON object.');
      wellFormedText(req);
      checkGrantTokens(req);
      const dryRun = checkMembers(KMS_REGISTRY[op] as OperationSpec, req);
      checkLimit(op, req);
      const handler = KMS_HANDLERS[op] as unknown as (k: KmsContext, r: KmsRequest) => KmsResponse<Op>;
      if (dryRun) {
        // Precondition: a DryRun validates, authorizes and checks key state as the real call does, and changes nothing.
        const would = this.ctx.store.rollback(() => handler(this.ctx, req)) as Record<string, unknown> | undefined;
        for (const secret of ['Plaintext', 'PrivateKeyPlaintext', 'SharedSecret']) if (Buffer.isBuffer(would?.[secret])) (would[secret] as Buffer).fill(0);
        throw dryRunSucceeded();
      }
      const res = handler(this.ctx, req);
      if (OPERATION_FACTS.tracked.has(op)) {
        const ids = { eventId: crypto.randomUUID(), requestId: who.requestId ?? crypto.randomUUID() };
        this.trackUse(op, res as Record<string, unknown>, time, ids);
        this.audit.record({ ...record, response: res, ...ids });
      } else this.audit.record({ ...record, response: res });
      return res;
    } catch (e) {
      const err = toKmsError(e);
      this.audit.record({ ...record, error: err });
      throw err;
    } finally {
      this.ctx.call = undefined;
      this.ctx.store.endCall();
    }
  }

  /**
   * The AWS managed key for a service (for example alias/aws/ebs), created the
   * first time the alias is named. Users cannot disable, delete or reschedule
   * it; it rotates yearly.
   */
  awsManagedKey(service: string): string {
    const description = `Default key that protects my ${service === 'ebs' ? 'EBS volumes' : `${service} resources`} when no other key is defined`;
    const alias = `alias/aws/${service}`;
    const existing = this.ctx.store.getAlias(this.region, alias);
    if (existing) return existing.target_key_id;
    return this.ctx.store.write(() => {
      const again = this.ctx.store.getAlias(this.region, alias);
      if (again) return again.target_key_id;
      const row = insertKey(this.ctx, { description, keyManager: 'AWS', policy: awsManagedPolicy(this.account, this.region, service) });
      this.ctx.store.updateKey(row.region, row.key_id, { rotation_enabled: 1, rotation_period_days: 365, next_rotation_date: this.ctx.now() + 365 * DAY_MS });
      this.ctx.store.insertAlias(this.region, alias, row.key_id, this.ctx.now());
      this.audit.record({
        time: this.ctx.clock.now(),
        op: 'CreateKey',
        region: this.region,
        principal: `${service}.amazonaws.com`,
        request: { Description: description },
        response: { KeyId: row.key_id },
      });
      return row.key_id;
    });
  }

  /** Audit keys created outside an operation (seed files) as CreateKey events of this KMS's principal. */
  auditCreated(keys: { KeyId: string; KeyState: string; KeySpec: string; KeyUsage: string; Origin: string; Description: string }[], source: string): void {
    const time = this.ctx.clock.now();
    for (const key of keys) {
      this.audit.record({
        time,
        op: 'CreateKey',
        region: this.region,
        principal: this.principal,
        request: { KeySpec: key.KeySpec, KeyUsage: key.KeyUsage, Origin: key.Origin, Description: key.Description },
        response: { KeyMetadata: { KeyId: key.KeyId, KeyState: key.KeyState } },
        requestId: `seed:${source}`,
      });
    }
  }

  /**
   * Record a call to the endpoint's STS in this audit log, in the KMS calls'
   * shape (eventSource sts.amazonaws.com): its caller, its request members and
   * response fields on audit.ts's STS lists (never a secret access key or
   * session token), or its error.
   */
  auditSts(p: { op: string; caller: Caller; request: Record<string, unknown>; response?: unknown; error?: Error }): void {
    this.audit.record({
      time: this.ctx.clock.now(),
      service: 'sts',
      op: p.op,
      region: this.region,
      principal: p.caller.principal,
      requestId: p.caller.requestId,
      request: p.request,
      ...(p.error ? { error: p.error } : { response: p.response }),
    });
  }

  /** Write buffered audit records now (they are otherwise written at the end of each event-loop turn). */
  flushAudit(): void {
    this.audit.flush();
  }

  /** Record the keys a successful cryptographic call used (ReEncrypt uses two). */
  private trackUse(op: string, res: Record<string, unknown>, time: Date, ids: { eventId: string; requestId: string }): void {
    for (const field of ['KeyId', 'SourceKeyId']) {
      const m = typeof res[field] === 'string' ? /^arn:aws:kms:([^:]+):\d{12}:key\/(.+)$/.exec(res[field] as string) : null;
      if (m) this.ctx.usage!.record({ region: m[1]!, key_id: m[2]!, operation: op, ts: time.getTime(), event_id: ids.eventId, request_id: ids.requestId });
    }
  }

  close(): void {
    this.ctx.usage?.flush();
    this.audit.close();
    this.ctx.rootKey.destroy();
    this.ctx.store.close();
  }
}

/**
 * The key policy of an AWS managed key, in the shape AWS gives them: the key
 * is used through its service by the account's principals (kms:ViaService,
 * kms:CallerAccount), and the account may read its metadata and revoke grants
 * directly — but not use it directly, nor change it.
 */
export function awsManagedPolicy(account: string, region: string, service: string): string {
  const via = service === 'ebs' ? 'ec2' : service;
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: `auto-${service}-1`,
      Statement: [
        {
          Sid: `Allow access through ${service.toUpperCase()} for all principals in the account that are authorized to use ${service.toUpperCase()}`,
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'],
          Resource: '*',
          Condition: { StringEquals: { 'kms:CallerAccount': account, 'kms:ViaService': `${via}.${region}.amazonaws.com` } },
        },
        {
          Sid: 'Allow direct access to key metadata to the account',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${account}:root` },
          Action: ['kms:Describe*', 'kms:Get*', 'kms:List*', 'kms:RevokeGrant'],
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

/** Anything thrown inside the KMS leaves it as a KmsError; internal faults say so without detail leaks. */
function toKmsError(e: unknown): KmsError {
  if (e instanceof KmsError) return e;
  const fault = sqliteFault(e);
  if (fault) return KmsErrors.internal(`The KMS store failed (${fault.code}). ${fault.hint}`);
  return KmsErrors.internal(`Internal error: ${(e as Error).message ?? String(e)}`);
}
