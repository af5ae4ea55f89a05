import crypto from 'node:crypto';
import fs from 'node:fs';
import { openPrivate } from '../home.js';
import { readJsonLines } from '../jsonl.js';
import type { AuthDecision } from './authz.js';
import { AUDITED_REQUEST_MEMBERS, AUDITED_RESPONSE_FIELDS } from './members.js';

/**
 * The CloudTrail-style audit log: one JSON line per KMS call and per STS call
 * of the endpoint (eventSource kms.amazonaws.com or sts.amazonaws.com, as
 * CloudTrail tells them apart), appended with O_APPEND so several processes
 * can share it. Only allow-listed fields are recorded — for KMS each request
 * member's audit decision in MEMBERS (members.ts) and AUDITED_RESPONSE_FIELDS
 * (Plaintext and CiphertextBlob never are); for STS the lists below (the
 * secret access key, the session token, MFA codes and session policies never
 * are).
 */
export type AuditedService = 'kms' | 'sts';

/** STS request members recorded: which role, which session name, how long. */
const STS_REQUEST_MEMBERS = ['RoleArn', 'RoleSessionName', 'DurationSeconds'] as const;
/** STS response fields recorded, by structure: the session's identity and its access key id, never its secret or token. */
const STS_RESPONSE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  AssumedRoleUser: ['AssumedRoleId', 'Arn'],
  Credentials: ['AccessKeyId', 'Expiration'],
};
export interface AuditRecord {
  eventVersion: '1.08';
  eventTime: string;
  eventSource: 'kms.amazonaws.com' | 'sts.amazonaws.com';
  eventName: string;
  awsRegion: string;
  userIdentity: { type: string; arn: string; invokedBy?: string };
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  errorCode?: string;
  errorMessage?: string;
  /** Every policy and grant decision of the call, in order. */
  additionalEventData?: { authorization: AuthDecision[] };
  requestID: string;
  eventID: string;
}

function pick(obj: unknown, fields: readonly string[]): Record<string, unknown> | null {
  if (!obj || typeof obj !== 'object') return null;
  const src = obj as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of fields) if (src[f] !== undefined) out[lowerFirst(f)] = src[f];
  const md = src.KeyMetadata as Record<string, unknown> | undefined;
  if (md) out.keyMetadata = { keyId: md.KeyId, keyState: md.KeyState };
  return Object.keys(out).length ? out : null;
}

/** The STS response fields of STS_RESPONSE_FIELDS, nothing else (names lower-cased first, as CloudTrail writes them). */
function pickSts(obj: unknown): Record<string, unknown> | null {
  if (!obj || typeof obj !== 'object') return null;
  const src = obj as Record<string, Record<string, unknown> | undefined>;
  const out: Record<string, unknown> = {};
  for (const [struct, fields] of Object.entries(STS_RESPONSE_FIELDS)) {
    const part = src[struct];
    if (part && typeof part === 'object') out[lowerFirst(struct)] = pick(part, fields);
  }
  return Object.keys(out).length ? out : null;
}

function identityType(principal: string): string {
  if (principal.endsWith(':root')) return 'Root';
  if (principal.includes(':assumed-role/')) return 'AssumedRole';
  if (principal.endsWith('.amazonaws.com')) return 'AWSService';
  return 'IAMUser';
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** Logs with records still to write at exit: one listener for all of them (a server keeps one per region). */
const open = new Set<AuditLog>();
process.on('exit', () => {
  for (const log of open) log.flush();
});

/**
 * Records are buffered and appended in one write per event-loop turn (or per
 * 64 KiB), as whole lines with O_APPEND so processes sharing the log never
 * interleave within a line. close() and process exit flush what is left.
 */
export class AuditLog {
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  constructor(private readonly file: string | undefined) {
    if (!file) return;
    // Precondition: the log is ours and not a link; checked before any operation runs, not at exit.
    this.fd = openPrivate(file, 'a', true);
    open.add(this);
  }

  record(p: {
    time: Date;
    /** The service called (default kms). */
    service?: AuditedService;
    op: string;
    region: string;
    principal: string;
    viaService?: string;
    request: unknown;
    response?: unknown;
    error?: Error;
    requestId?: string;
    eventId?: string;
    decisions?: AuthDecision[];
  }): void {
    if (!this.file) return;
    const sts = p.service === 'sts';
    const rec: AuditRecord = {
      eventVersion: '1.08',
      eventTime: p.time.toISOString(),
      eventSource: sts ? 'sts.amazonaws.com' : 'kms.amazonaws.com',
      eventName: p.op,
      awsRegion: p.region,
      userIdentity: { type: identityType(p.principal), arn: p.principal, ...(p.viaService ? { invokedBy: p.viaService } : {}) },
      requestParameters: pick(p.request, sts ? STS_REQUEST_MEMBERS : AUDITED_REQUEST_MEMBERS),
      responseElements: p.error ? null : sts ? pickSts(p.response) : pick(p.response, AUDITED_RESPONSE_FIELDS),
      ...(p.error ? { errorCode: p.error.name, errorMessage: p.error.message } : {}),
      ...(p.decisions?.length ? { additionalEventData: { authorization: p.decisions } } : {}),
      requestID: p.requestId ?? crypto.randomUUID(),
      eventID: p.eventId ?? crypto.randomUUID(),
    };
    let line: string;
    try {
      line = `${JSON.stringify(rec)}\n`;
    } catch {
      // A request the operation never read can still be unrecordable (nested past the stack); the call is recorded without it.
      line = `${JSON.stringify({ ...rec, requestParameters: { unrecordable: true } })}\n`;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush()).unref();
    }
  }

  flush(): void {
    this.scheduled = false;
    if (!this.file || this.pending.length === 0) return;
    if (this.fd === undefined) this.fd = openPrivate(this.file, 'a', true);
    const data = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    fs.writeSync(this.fd, data);
  }

  close(): void {
    this.flush();
    open.delete(this);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  static read(file: string): AuditRecord[] {
    return readJsonLines<AuditRecord>(file);
  }
}
