import type { Ec2Context } from '../volume/context.js';

/**
 * What one EC2 operation is, for the registry (operations.ts): the members
 * it takes, what it answers, how the AWS CLI pages it, what a DryRun checks,
 * and what it does. The endpoint's Query/XML codec, kmsvol's `ec2` commands
 * and its TypeScript API are three views of these entries.
 */
export interface Outcome {
  /** What EC2 answers (at once: a volume `creating`, an attachment `attaching`…). */
  answer: object | undefined;
  /** The work that follows the answer: the endpoint lets it finish in the background; kmsvol's CLI and API wait for it. */
  done?: Promise<unknown>;
  /** The answer is shown before `done` settles (a card run in the foreground lives until it is detached). */
  early?: boolean;
}

export interface Ec2Operation<Req = Record<string, unknown>> {
  /**
   * The request members, in the order AWS's model lists them (the CLI's
   * skeleton follows it); a trailing "!" marks one kmsvol requires (the CLI
   * refuses its absence with exit 252, as the AWS CLI does). Each has its
   * type and wire name in MEMBERS (members.ts). DryRun is every operation's.
   */
  members: readonly string[];
  /** Members AWS's model requires that kmsvol fills in when absent, and with what. */
  defaults?: Readonly<Record<string, string>>;
  /** Members whose feature kmsvol does not have: given (and true or non-empty), InvalidParameterValue with this message. */
  unsupported?: Readonly<Record<string, string>>;
  /** The output shape's members kmsvol answers; null: the model has no output (the wire answers `<return>true</return>`). */
  output: readonly string[] | null;
  /** Element names particular to this operation's output (one member name with two locationNames in the model). */
  rename?: Readonly<Record<string, string>>;
  /** The list the AWS CLI pages through (its paginator's result key); MaxResults/NextToken are the paging members. */
  pages?: string;
  /** The dry-run rule: everything the operation checks before it changes anything; resolves when it would succeed. */
  check(ctx: Ec2Context, req: Req): Promise<void>;
  /** The handler: calls the volume control plane (src/volume) or the card layer (src/card). */
  run(ctx: Ec2Context, req: Req): Promise<Outcome>;
  /** The CLI's help for members, where kmsvol has something to add. */
  help?: Readonly<Record<string, string>>;
  /** Further option names the CLI takes for a member (the AWS CLI's older spelling). */
  aliases?: Readonly<Record<string, string>>;
  /** kmsvol's own form of the operation for its CLI and API, where it differs from EC2's (members may then include LOCAL_MEMBERS). */
  local?: Ec2Operation;
}

/**
 * An operation whose handlers read the request as `Req` (the control plane's
 * request type). The codec decodes the request from `members` alone, so
 * `Req` is this declaration's word for what the members yield, not a check.
 */
export function op<Req>(o: Ec2Operation<Req>): Ec2Operation {
  return o as unknown as Ec2Operation;
}

/** The member names without the "!" of required ones. */
export const memberNames = (o: Ec2Operation): string[] => o.members.map((m) => m.replace(/!$/, ''));
export const requiredMembers = (o: Ec2Operation): string[] => o.members.filter((m) => m.endsWith('!')).map((m) => m.slice(0, -1));

/** Can the caller use `keyRef` through EC2? A DescribeKey as the caller, through EC2, answers (AccessDenied becomes UnauthorizedOperation on the wire). */
export async function checkKey(ctx: Ec2Context, keyRef: string): Promise<void> {
  await ctx.kms.send('DescribeKey', { KeyId: keyRef });
}

/** A handler whose answer is the control plane's whole result (Describe…, the account settings). */
export const answered = async (p: unknown): Promise<Outcome> => ({ answer: (await p) as object });
