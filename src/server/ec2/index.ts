import { createLogger } from '../../log.js';
import type { Filter } from '../../volume/filters.js';
import { checkFilterLimits } from '../../volume/filters.js';
import type { Service, ServiceCall, ServiceReply, WireError } from '../service.js';
import { contextFor } from './context.js';
import { ebsDefaultOperations } from './ebs-defaults.js';
import { dryRunOperation, invalidAction, toWireError } from './errors.js';
import { instanceOperations } from './instances.js';
import { modifyOperations } from './modify.js';
import type { Operation } from './operation.js';
import { decodeRequest, EC2_VERSION, encodeError, encodeResponse } from './protocol.js';
import { snapshotOperations } from './snapshots.js';
import { volumeOperations } from './volumes.js';

export { closeContexts } from './context.js';
export { backgroundSettled } from './operation.js';

/**
 * The EC2 Query protocol for the EBS side: `Action`, `Version=2016-11-15`,
 * form parameters in, XML out, EC2's error documents, DryRun. Every action
 * calls the volume control plane (src/volume, src/card), the same functions as
 * kmsvol's CLI and TypeScript API.
 */
const OPERATIONS: Record<string, Operation> = {
  ...volumeOperations,
  ...modifyOperations,
  ...snapshotOperations,
  ...ebsDefaultOperations,
  ...instanceOperations,
};

export const EC2_ACTIONS = Object.keys(OPERATIONS);

/** The actions, for kmsvol's own CLI (its --dry-run runs the same checks). */
export const ec2Operations: Readonly<Record<string, Operation>> = OPERATIONS;

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
      const op = OPERATIONS[action];
      if (!op) throw invalidAction(action);
      const version = call.params.get('Version');
      if (version !== null && version !== EC2_VERSION)
        throw Object.assign(invalidAction(action), { message: `Version ${version} is not supported; this EC2 endpoint speaks ${EC2_VERSION}.` });
      const req = decodeRequest(op.input, call.params);
      checkFilterLimits(req.Filters as Filter[] | undefined);
      const ctx = contextFor(call);
      if (req.DryRun === true) {
        await op.check(ctx, req, call);
        throw dryRunOperation();
      }
      const out = await op.run(ctx, req, call);
      return xml(200, encodeResponse(action, call.requestId, out, op.rename), call.requestId);
    } catch (e) {
      return fail(e, call.requestId);
    }
  },

  error(e: WireError, requestId: string): ServiceReply {
    return xml(e.status, encodeError(e.name, e.message, requestId), requestId);
  },
};
