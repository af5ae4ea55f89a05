import { invokeInBackground, isEc2Operation, operationOf } from '../../ec2/invoke.js';
import type { Members } from '../../ec2/members.js';
import { memberSpec } from '../../ec2/members.js';
import { memberNames } from '../../ec2/operation.js';
import { OPERATIONS } from '../../ec2/operations.js';
import { createLogger } from '../../log.js';
import type { Service, ServiceCall, ServiceReply, WireError } from '../service.js';
import { invalidAction, toWireError } from './errors.js';
import { decodeRequest, EC2_VERSION, encodeError, encodeResponse } from './protocol.js';

/**
 * The EC2 Query protocol for the EBS side: `Action`, `Version=2016-11-15`,
 * form parameters in, XML out, EC2's error documents, DryRun. A pure codec
 * over the EC2 registry (src/ec2/operations.ts): the request is decoded by
 * the entry's member types, run by the registry's one invoke (as kmsvol's
 * CLI and API run it), and answered by the entry's output shape. The context
 * comes whole with the call (`call.ec2()`), as the KMS comes with it.
 */
export const EC2_ACTIONS = Object.keys(OPERATIONS);

/** Each operation's members as the decoder takes them: type and wire name, from the registry. */
export const INPUTS: Readonly<Record<string, Members>> = Object.fromEntries(
  EC2_ACTIONS.map((name) => [name, Object.fromEntries(memberNames(operationOf(name)).map((m) => [m, memberSpec(m)]))]),
);

const log = createLogger('ec2');

function xml(status: number, body: string, requestId: string): ServiceReply {
  return { status, headers: { 'Content-Type': 'text/xml;charset=UTF-8', 'x-amzn-RequestId': requestId }, body };
}

function fail(e: unknown, requestId: string): ServiceReply {
  const w = toWireError(e);
  if (w.status >= 500) log.error({ requestId, error: (e as Error)?.name, message: (e as Error)?.message, stack: (e as Error)?.stack }, 'internal error');
  return xml(w.status, encodeError(w.code, w.message, requestId), requestId);
}

export const ec2Service: Service = {
  name: 'ec2',

  async handle(call: ServiceCall): Promise<ServiceReply> {
    const action = call.params.get('Action') ?? '';
    try {
      if (!isEc2Operation(action)) throw invalidAction(action);
      const version = call.params.get('Version');
      if (version !== null && version !== EC2_VERSION)
        throw Object.assign(invalidAction(action), { message: `Version ${version} is not supported; this EC2 endpoint speaks ${EC2_VERSION}.` });
      const op = operationOf(action);
      const req = decodeRequest(INPUTS[action]!, call.params);
      const answer = await invokeInBackground(call.ec2(), action, req);
      return xml(200, encodeResponse(action, call.requestId, op.output === null ? undefined : (answer as Record<string, unknown>), op.rename), call.requestId);
    } catch (e) {
      return fail(e, call.requestId);
    }
  },

  error(e: WireError, requestId: string): ServiceReply {
    return xml(e.status, encodeError(e.name, e.message, requestId), requestId);
  },
};
