import { cardGrantName, cardGrantRequest, viaEc2 } from '../card/grants.js';
import { ServiceError } from '../errors.js';
import { assumeRole, CARD_ROLE, userIdOf } from '../kms/iam.js';
import { QUERY_AUTH } from './query-auth.js';
import type { Service, ServiceCall, ServiceReply, WireError } from './service.js';
import { ATTRIBUTE, xmlDocument } from './xml.js';

/**
 * AWS STS over the Query protocol (form-encoded `Action=…&Version=2011-06-15`,
 * XML answers): AssumeRole for the roles of `kmsvol iam create-role` (and the
 * built-in kmsvol-card role), and GetCallerIdentity. The temporary
 * credentials work on every service of this endpoint.
 */
const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const VERSION = '2011-06-15';
function reply(status: number, doc: Record<string, unknown>): ServiceReply {
  return { status, headers: { 'Content-Type': 'text/xml' }, body: xmlDocument(doc) };
}

function result(action: string, body: object, requestId: string): ServiceReply {
  return reply(200, { [`${action}Response`]: { [`${ATTRIBUTE}xmlns`]: NS, [`${action}Result`]: body, ResponseMetadata: { RequestId: requestId } } });
}

/** AssumeRole members kmsvol does not have (session policies, MFA, tags, source identity, external id, token sizes): refused, never ignored. */
const UNSUPPORTED_MEMBERS = [
  'Policy',
  'PolicyArns.',
  'SerialNumber',
  'TokenCode',
  'SourceIdentity',
  'ExternalId',
  'Tags.',
  'TransitiveTagKeys.',
  'ProvidedContexts.',
  'MinimumSessionTokenSize',
];

/**
 * A kmsvol-card session for volume V (session name V) is issued only to a
 * principal who could make V's card grant itself, through EC2 as attach
 * does: otherwise any user could take over the grant of a volume whose key
 * denies them. The card grant must exist (attach creates it first).
 */
function mayAssumeCardRole(call: ServiceCall, session: string): boolean {
  const k = call.kms.ctx;
  const keys = k.store.grantKeysByName(call.region, cardGrantName(session));
  if (keys.length === 0) return false;
  return keys.every((keyId) => {
    try {
      call.kms.invokeAs({ principal: call.caller.arn, viaService: viaEc2(call.region) }, 'CreateGrant', {
        ...cardGrantRequest(k.keyArn(keyId), session),
        DryRun: true,
      });
    } catch (e) {
      return (e as Error).name === 'DryRunOperationException';
    }
    return false;
  });
}

/** One STS call: its XML answer, and the response it carries (for the audit log). */
function answer(call: ServiceCall, action: string): { reply: ServiceReply; response: Record<string, unknown> } {
  const p = call.params;
  if (p.get('Version') !== VERSION) throw new ServiceError('InvalidParameterValue', `Version must be ${VERSION} for STS; got '${p.get('Version') ?? ''}'.`);
  const k = call.kms.ctx;
  switch (action) {
    case 'GetCallerIdentity': {
      const s = call.caller.session;
      const response = { Arn: call.caller.arn, UserId: s ? `${s.roleId}:${s.sessionName}` : userIdOf(call.caller.arn), Account: call.caller.accountId };
      return { reply: result(action, response, call.requestId), response };
    }
    case 'AssumeRole': {
      for (const name of p.keys()) {
        const member = UNSUPPORTED_MEMBERS.find((u) => (u.endsWith('.') ? name.startsWith(u) : name === u));
        if (member)
          throw new ServiceError('InvalidParameterValue', `${member.replace(/\.$/, '')} is not supported by this endpoint's STS; assume the role without it.`);
      }
      const duration = p.get('DurationSeconds');
      const out = assumeRole(
        k,
        call.caller.arn,
        {
          RoleArn: p.get('RoleArn') ?? undefined,
          RoleSessionName: p.get('RoleSessionName') ?? undefined,
          DurationSeconds: duration === null ? undefined : /^\d+$/.test(duration) ? Number(duration) : NaN,
        },
        (role, session) => role !== CARD_ROLE || mayAssumeCardRole(call, session),
        { region: call.region, now: k.now() },
      );
      const c = out.Credentials;
      const response = {
        AssumedRoleUser: out.AssumedRoleUser,
        Credentials: {
          AccessKeyId: c.AccessKeyId,
          SecretAccessKey: c.SecretAccessKey,
          SessionToken: c.SessionToken,
          Expiration: c.Expiration.toISOString(),
        },
      };
      // The whole answer goes to the audit log, whose STS allow-list keeps the secret and the token out (audit.ts).
      return { reply: result(action, response, call.requestId), response };
    }
    default:
      throw new ServiceError(
        'InvalidAction',
        `Could not find operation ${action || '(no Action)'} for version ${VERSION}: this endpoint's STS answers AssumeRole and GetCallerIdentity.`,
      );
  }
}

/** An STS request as the audit log is handed it: every member (audit.ts records only those on its STS list), DurationSeconds as a number. */
function auditedRequest(p: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(p);
  delete out.Action;
  delete out.Version;
  const d = p.get('DurationSeconds');
  if (d !== null && /^\d{1,9}$/.test(d)) out.DurationSeconds = Number(d);
  return out;
}

export const stsService: Service = {
  name: 'sts',
  maxClockSkewMs: 15 * 60 * 1000,
  async handle(call: ServiceCall): Promise<ServiceReply> {
    const action = call.params.get('Action') ?? '';
    const audit = { op: action, caller: { principal: call.caller.arn, requestId: call.requestId }, request: auditedRequest(call.params) };
    try {
      const { reply, response } = answer(call, action);
      call.kms.auditSts({ ...audit, response });
      return reply;
    } catch (e) {
      // Like a KMS call, a refused STS call is recorded with its error (CloudTrail records AccessDenied AssumeRole events).
      call.kms.auditSts({ ...audit, error: e instanceof Error ? e : new Error(String(e)) });
      throw e;
    }
  },
  error(e: WireError, requestId: string): ServiceReply {
    const w = e.failure ? QUERY_AUTH[e.failure](e.message) : e;
    return reply(w.status, {
      ErrorResponse: {
        [`${ATTRIBUTE}xmlns`]: NS,
        Error: { Type: w.status >= 500 ? 'Receiver' : 'Sender', Code: w.name, Message: w.message },
        RequestId: requestId,
      },
    });
  },
};
