import type { Ec2Context } from '../../volume/volumes.js';
import type { ServiceCall } from '../service.js';
import type { Members } from './protocol.js';

/**
 * One EC2 action: its input members (as botocore's model names them on the
 * wire), what a DryRun checks, and what it does. Handlers call the volume
 * control plane, the same functions as kmsvol's CLI and TypeScript API.
 */
export interface Operation<Req = Record<string, unknown>> {
  input: Members;
  /** Everything the action checks before it changes anything; resolves when it would succeed. */
  check(ctx: Ec2Context, req: Req, call: ServiceCall): Promise<void>;
  run(ctx: Ec2Context, req: Req, call: ServiceCall): Promise<Record<string, unknown> | undefined>;
  /** Element names particular to this action's output (where one member name has two locationNames in the model). */
  rename?: Record<string, string>;
}

/**
 * An action whose handlers read the request as `Req` (the control plane's
 * request type for it). The endpoint decodes the request from `input` alone,
 * so `Req` is this declaration's word for what `input` yields, not a check.
 */
export function action<Req>(op: Operation<Req>): Operation {
  return op as unknown as Operation;
}

/** Work that goes on after the answer (a volume being created, a card starting): settled (and its failure recorded as an event) in the background. */
const background = new Set<Promise<unknown>>();

export function inBackground(p: Promise<unknown>): void {
  const quiet = p.then(
    () => undefined,
    () => undefined,
  );
  background.add(quiet);
  void quiet.finally(() => background.delete(quiet));
}

/** Resolves once every piece of background work started so far has settled (for a clean stop, and for tests). */
export async function backgroundSettled(): Promise<void> {
  while (background.size) await Promise.all([...background]);
}

/** Can the caller use `keyRef` through EC2? A DescribeKey as the caller, through EC2, answers (AccessDenied becomes UnauthorizedOperation). */
export async function checkKey(ctx: Ec2Context, keyRef: string): Promise<void> {
  await ctx.kms.send('DescribeKey', { KeyId: keyRef });
}
