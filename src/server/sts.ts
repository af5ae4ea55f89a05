import crypto from 'node:crypto';
import { XMLBuilder } from 'fast-xml-parser';
import { ServiceError } from '../errors.js';
import { assumeRole } from '../kms/iam.js';
import type { Service, ServiceCall, ServiceReply, WireError } from './service.js';

/**
 * AWS STS over the Query protocol (form-encoded `Action=…&Version=2011-06-15`,
 * XML answers): AssumeRole for the roles of `kmsvol iam create-role` (and the
 * built-in kmsvol-card role), and GetCallerIdentity. The temporary
 * credentials work on every service of this endpoint.
 */
const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const VERSION = '2011-06-15';
const xml = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', format: false, suppressEmptyNode: false });

function reply(status: number, doc: object): ServiceReply {
  return { status, headers: { 'Content-Type': 'text/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>${xml.build(doc)}` };
}

function result(action: string, body: object, requestId: string): ServiceReply {
  return reply(200, { [`${action}Response`]: { '@xmlns': NS, [`${action}Result`]: body, ResponseMetadata: { RequestId: requestId } } });
}

/** A stable unique id for an IAM user, in AWS's form (AIDA + 17 characters). */
function userId(arn: string): string {
  return `AIDA${crypto.createHash('sha256').update(arn).digest('hex').toUpperCase().slice(0, 17)}`;
}

/** The authentication errors of the JSON services, under the names the Query services use for them. */
const QUERY_NAMES: Record<string, { code: string; status: number }> = {
  InvalidSignatureException: { code: 'SignatureDoesNotMatch', status: 403 },
  UnrecognizedClientException: { code: 'InvalidClientTokenId', status: 403 },
  IncompleteSignatureException: { code: 'IncompleteSignature', status: 400 },
  MissingAuthenticationTokenException: { code: 'MissingAuthenticationToken', status: 403 },
  ExpiredTokenException: { code: 'ExpiredToken', status: 400 },
};

export const stsService: Service = {
  name: 'sts',
  async handle(call: ServiceCall): Promise<ServiceReply> {
    const p = call.params;
    const action = p.get('Action') ?? '';
    if (p.get('Version') !== VERSION) throw new ServiceError('InvalidParameterValue', `Version must be ${VERSION} for STS; got '${p.get('Version') ?? ''}'.`);
    const k = call.kms.ctx;
    switch (action) {
      case 'GetCallerIdentity': {
        const s = call.caller.session;
        return result(action, { Arn: call.caller.arn, UserId: s ? `${call.caller.accessKeyId}:${s.sessionName}` : userId(call.caller.arn), Account: call.caller.accountId }, call.requestId);
      }
      case 'AssumeRole': {
        for (const unsupported of ['Policy', 'PolicyArns.member.1', 'SerialNumber', 'TokenCode', 'SourceIdentity', 'Tags.member.1.Key', 'ProvidedContexts.member.1.ProviderArn']) {
          if (p.has(unsupported)) throw new ServiceError('InvalidParameterValue', `${unsupported.split('.')[0]} is not supported by this endpoint's STS; assume the role without it.`);
        }
        const duration = p.get('DurationSeconds');
        const out = assumeRole(k, call.caller.arn, {
          RoleArn: p.get('RoleArn') ?? undefined,
          RoleSessionName: p.get('RoleSessionName') ?? undefined,
          DurationSeconds: duration === null ? undefined : /^\d+$/.test(duration) ? Number(duration) : NaN,
        });
        const c = out.Credentials;
        return result(action, { AssumedRoleUser: out.AssumedRoleUser, Credentials: { AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration.toISOString() } }, call.requestId);
      }
      default:
        throw new ServiceError('InvalidAction', `Could not find operation ${action || '(no Action)'} for version ${VERSION}: this endpoint's STS answers AssumeRole and GetCallerIdentity.`);
    }
  },
  error(e: WireError, requestId: string): ServiceReply {
    const q = QUERY_NAMES[e.name];
    const status = q?.status ?? e.status;
    return reply(status, { ErrorResponse: { '@xmlns': NS, Error: { Type: status >= 500 ? 'Receiver' : 'Sender', Code: q?.code ?? e.name, Message: e.message }, RequestId: requestId } });
  },
};
