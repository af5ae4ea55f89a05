import { EbsError } from '../../ebs/errors.js';
import type { EbsOperation } from '../../ebs/operations.js';
import { OPERATIONS } from '../../ebs/operations.js';
import { ServiceError } from '../../errors.js';
import { requireIdentityAllow } from '../../kms/identity.js';
import { createLogger } from '../../log.js';
import type { Service, ServiceCall, ServiceReply, WireError } from '../service.js';
import { decodeRequest, encodeError, encodeResponse, routeOf } from './protocol.js';

/**
 * The EBS direct APIs (service `ebs`, REST-JSON) on the one endpoint: the
 * route names the operation (botocore's requestUri), the codec decodes its
 * members, the registry's handler runs it in the caller's EC2 context (so
 * the KMS authorizes each block of an encrypted snapshot as the caller), and
 * errors carry their Reason. PutSnapshotBlock's body alone may be sent as
 * UNSIGNED-PAYLOAD, with its checksum headers signed.
 */
const log = createLogger('ebs');

function reply(r: ReturnType<typeof encodeResponse>, requestId: string): ServiceReply {
  return { status: r.status, headers: { ...r.headers, 'x-amzn-RequestId': requestId }, body: r.body };
}

function fail(e: unknown, requestId: string): ServiceReply {
  if (e instanceof EbsError) return reply(encodeError(e.name, e.message, e.httpStatus, e.reason), requestId);
  if (e instanceof ServiceError && e.httpStatus < 500)
    return reply(encodeError('ValidationException', `(${e.name}) ${e.message}`, 400, 'INVALID_PARAMETER_VALUE'), requestId);
  log.error({ requestId, error: (e as Error)?.name, message: (e as Error)?.message, stack: (e as Error)?.stack }, 'internal error');
  return reply(encodeError('InternalServerException', 'An internal error occurred. Retry; if it persists, see the server log.', 500), requestId);
}

/**
 * Precondition of every EBS direct API call: the caller's identity policies allow `ebs:<Operation>` on the snapshot
 * (the account root may do anything; a user or role session only what its policies allow, docs/iam.md). The KMS
 * still decides each block of an encrypted snapshot.
 */
function authorize(call: ServiceCall, operation: string, snapshotId: string | undefined): void {
  const k = call.kms.ctx;
  try {
    requireIdentityAllow(k.store, k.account, call.caller.arn, `ebs:${operation}`, `arn:aws:ec2:${call.region}::snapshot/${snapshotId ?? '*'}`, {
      region: call.region,
      now: k.now(),
    });
  } catch (e) {
    throw new EbsError('AccessDeniedException', (e as Error).message, 403, 'UNAUTHORIZED_ACCOUNT');
  }
}

export const ebsService: Service = {
  name: 'ebs',
  unsignedPayload(method: string, url: string) {
    const route = routeOf(OPERATIONS, method, url.split('?', 1)[0]!);
    return route ? (OPERATIONS[route.name as keyof typeof OPERATIONS] as EbsOperation).unsignedBody : undefined;
  },

  async handle(call: ServiceCall): Promise<ServiceReply> {
    try {
      const [path, q = ''] = call.url.split('?', 2) as [string, string?];
      const route = routeOf(OPERATIONS, call.method, path);
      if (!route) throw new EbsError('ValidationException', `No EBS direct API operation is ${call.method} ${path}.`, 400, 'INVALID_PARAMETER_VALUE');
      const op = OPERATIONS[route.name as keyof typeof OPERATIONS];
      const req = decodeRequest(op, route.labels, new URLSearchParams(q), call.headers, call.body);
      authorize(call, route.name, (req.SnapshotId ?? req.SecondSnapshotId) as string | undefined);
      const answer = (await op.run(call.ec2(), req)) as Record<string, unknown>;
      return reply(encodeResponse(op, answer), call.requestId);
    } catch (e) {
      return fail(e, call.requestId);
    }
  },

  error(e: WireError, requestId: string): ServiceReply {
    // Authentication failures keep their names (as the KMS's JSON answers them); the body is REST-JSON's.
    return reply(encodeError(e.name, e.message, e.status), requestId);
  },
};
