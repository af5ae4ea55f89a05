import { ServiceError } from '../errors.js';
import type { Ec2Context } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import type { Filter } from '../volume/filters.js';
import { checkFilterLimits } from '../volume/filters.js';
import type { Ec2Operation, Outcome } from './operation.js';
import { requiredMembers } from './operation.js';
import { OPERATIONS } from './operations.js';

/**
 * One EC2 call, the same for every face: the registry entry's unsupported
 * members and filter limits, then its dry-run check (DryRunOperation when it
 * would succeed) or its handler. How the work after the answer is waited for
 * is the face's: EC2 answers at once and finishes in the background (the
 * endpoint); kmsvol's CLI and API wait for it.
 */
export const dryRunOperation = () => new ServiceError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);

export function isEc2Operation(name: string): name is keyof typeof OPERATIONS {
  return Object.hasOwn(OPERATIONS, name);
}

/** The registry entry (`local`: kmsvol's own form of it, for its CLI and API, where it has one). */
export function operationOf(name: string, local = false): Ec2Operation {
  const op = OPERATIONS[name as keyof typeof OPERATIONS] as Ec2Operation;
  return (local && op.local) || op;
}

export async function invoke(ctx: Ec2Context, name: string, req: Record<string, unknown>, opts: { local?: boolean } = {}): Promise<Outcome> {
  const op = operationOf(name, opts.local);
  for (const [member, why] of Object.entries(op.unsupported ?? {})) if (req[member]) throw new ServiceError('InvalidParameterValue', why);
  checkFilterLimits(req.Filters as Filter[] | undefined);
  if (req.DryRun === true) {
    // EC2 checks the required members before DryRun (those kmsvol fills in when absent aside).
    for (const m of requiredMembers(op))
      if (req[m] === undefined && !Object.hasOwn(op.defaults ?? {}, m)) throw Ec2Errors.missingParameter(`The request must contain the parameter ${m}`);
    await op.check(ctx, req);
    throw dryRunOperation();
  }
  return op.run(ctx, req);
}

/** Work that goes on after the answer (a volume being created, a card starting): settled (and its failure recorded as an event) in the background. */
const background = new Set<Promise<unknown>>();

/** The endpoint's way: the answer now, the rest in the background. */
export async function invokeInBackground(ctx: Ec2Context, name: string, req: Record<string, unknown>): Promise<object | undefined> {
  const { answer, done } = await invoke(ctx, name, req);
  if (done) {
    const quiet = done.then(
      () => undefined,
      () => undefined,
    );
    background.add(quiet);
    void quiet.finally(() => background.delete(quiet));
  }
  return answer;
}

/** Resolves once every piece of background work started so far has settled (for a clean stop, and for tests). */
export async function backgroundSettled(): Promise<void> {
  while (background.size) await Promise.all([...background]);
}
