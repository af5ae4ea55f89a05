import type { Command } from 'commander';
import type { Shape, StructKind } from '../ec2/members.js';
import { memberSpec } from '../ec2/members.js';
import type { Ec2Operation } from '../ec2/operation.js';
import { memberNames, requiredMembers } from '../ec2/operation.js';
import { UsageError } from '../errors.js';
import { parseInteger, parseShorthandList } from './args.js';
import { kebab } from './common.js';

/**
 * An EC2 registry entry's members as the AWS CLI's options: `--kebab-name`,
 * a string `<value>`, an integer parsed as one, a boolean `--x`/`--no-x`, a
 * list `<values...>`, a list of structures in JSON or the AWS CLI's
 * shorthand (`Name=status,Values=available`), and DryRun for every one.
 */
export function addMemberOptions(cmd: Command, op: Ec2Operation): Command {
  const required = requiredMembers(op);
  for (const m of [...memberNames(op), 'DryRun']) {
    const spec = memberSpec(m);
    const help = [op.help?.[m] ?? spec.help, required.includes(m) ? '(required)' : undefined].filter(Boolean).join(' ') || undefined;
    const flags = [`--${kebab(m)}`, op.aliases?.[m]].filter(Boolean).map((f) => (spec.shape === 'boolean' ? f : `${f} ${placeholder(spec.shape)}`));
    for (const f of flags) cmd.option(f!, help);
    if (spec.shape === 'boolean') cmd.option(`--no-${kebab(m)}`);
  }
  return cmd;
}

const placeholder = (shape: Shape) => (typeof shape === 'object' && 'list' in shape ? '<values...>' : '<value>');

/** commander's name for an option's value: --volume-ids is volumeIds. */
const attribute = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The request the options give (AWS's member names; only those given). */
export function requestOf(op: Ec2Operation, opts: Record<string, unknown>): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  for (const m of [...memberNames(op), 'DryRun']) {
    const spec = memberSpec(m);
    const flag = kebab(m);
    const alias = op.aliases?.[m];
    const v = opts[attribute(`--${flag}`)] ?? (alias ? opts[attribute(alias)] : undefined);
    if (v === undefined) continue;
    if (spec.shape === 'integer') req[m] = parseInteger(v as string, flag);
    else if (spec.kind) req[m] = STRUCTS[spec.kind](parseShorthandList(v as string[], flag));
    else req[m] = v;
  }
  return req;
}

/** Members the entry requires that neither the options nor --cli-input gave: the AWS CLI refuses them (exit 252). */
export function refuseMissing(op: Ec2Operation, req: Record<string, unknown>): void {
  const missing = requiredMembers(op).filter((m) => req[m] === undefined);
  if (missing.length) throw new UsageError(`the following arguments are required: ${missing.map((m) => `--${kebab(m)}`).join(', ')}`);
}

/** A request skeleton from the entry's members: empty strings, 0, true, one list item. */
export function skeletonOf(op: Ec2Operation): Record<string, unknown> {
  const of = (shape: Shape): unknown => {
    if (shape === 'string') return '';
    if (shape === 'integer') return 0;
    if (shape === 'boolean') return true;
    if ('list' in shape) return [of(shape.list)];
    return Object.fromEntries(Object.entries(shape.struct).map(([k, m]) => [k, of(m.shape)]));
  };
  return Object.fromEntries([...memberNames(op), 'DryRun'].map((m) => [m, of(memberSpec(m).shape)]));
}

type Struct = Record<string, unknown>;

const tagOf = (x: Struct) => ({ Key: String(x.Key ?? ''), ...(x.Value !== undefined ? { Value: String(x.Value) } : {}) });

/** Each kind of structure the shorthand gives, as the request's members. */
const STRUCTS: Record<StructKind, (items: Struct[]) => Struct[]> = {
  filter: (items) =>
    items.map((f) => {
      const vals = typeof f.Values === 'string' ? [f.Values] : f.Values;
      if (!f.Name || !Array.isArray(vals)) throw new UsageError(`Error parsing parameter '--filters': expected Name=NAME,Values=V1,V2 or JSON.`);
      return { Name: String(f.Name), Values: vals.map(String) };
    }),
  tag: (items) => items.map(tagOf),
  tagSpecification: (items) =>
    items.map((t) => ({ ResourceType: t.ResourceType as string, Tags: Array.isArray(t.Tags) ? t.Tags.map((x: Struct) => tagOf(x)) : [] })),
};
