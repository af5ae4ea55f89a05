import fs from 'node:fs';
import { Command } from 'commander';
import type { EbsOperation } from '../ebs/operations.js';
import { OPERATIONS } from '../ebs/operations.js';
import { UsageError } from '../errors.js';
import { parseBlob, parseInteger, parseShorthandList, parseStreamingBlob } from './args.js';
import { globalsOf, kebab, namedIn, print, withGlobals } from './common.js';
import { TRANSFER_COMMANDS } from './ebs-transfer.js';
import { openEc2 } from './ec2.js';
import { OperationContext } from './errors.js';

/**
 * `kmsvol ebs <operation>`: one command per entry of the EBS direct APIs'
 * registry (src/ebs/operations.ts), its options the entry's members as the
 * AWS CLI spells them, run in-process on this home. get-snapshot-block takes
 * the file to write the block to, as `aws ebs get-snapshot-block` does.
 */
function command(name: string, op: EbsOperation): Command {
  const cmd = withGlobals(new Command(kebab(name)).description(`EBS direct APIs ${name}`));
  const blobOut = Object.entries(op.output).find(([, m]) => m.location === 'payload')?.[0];
  if (blobOut) cmd.argument('<outfile>', `where to write ${blobOut}`);
  for (const [member, m] of Object.entries(op.input)) {
    const flag = `--${kebab(member)}`;
    if (m.type === 'boolean') cmd.option(flag).option(`--no-${kebab(member)}`);
    else if (m.type === 'list') cmd.option(`${flag} <values...>`);
    else cmd.option(`${flag} <value>`);
  }
  return cmd.action(async (...args: unknown[]) => {
    const self = args.at(-1) as Command;
    const opts = self.opts() as Record<string, unknown>;
    const g = globalsOf(self);
    await OperationContext.run(name, async () => {
      const req: Record<string, unknown> = {};
      for (const [member, m] of Object.entries(op.input)) {
        const key = member.charAt(0).toLowerCase() + member.slice(1);
        const v = opts[key];
        if (v === undefined) continue;
        const flag = kebab(member);
        if (m.type === 'integer') req[member] = parseInteger(String(v), flag);
        else if (m.type === 'blob') req[member] = m.location === 'payload' ? parseStreamingBlob(String(v), flag) : parseBlob(String(v), flag);
        else if (m.type === 'list') req[member] = parseShorthandList(v as string[], flag);
        else req[member] = v;
      }
      for (const r of op.required) if (req[r] === undefined) throw new UsageError(`the following arguments are required: --${kebab(r)}`);
      const ctx = openEc2(g);
      try {
        const answer = (await op.run(ctx, req)) as Record<string, unknown>;
        if (blobOut) {
          fs.writeFileSync(String(args[0]), answer[blobOut] as Buffer);
          delete answer[blobOut];
        }
        print(answer, g, name);
      } finally {
        ctx.close();
      }
    });
  });
}

export function ebsCommand(args?: readonly string[]): Command {
  const ebs = new Command('ebs').description('The EBS direct APIs on snapshots of this home (same names and arguments as `aws ebs`)');
  const wanted = namedIn(args, [...Object.keys(OPERATIONS).map(kebab), ...Object.keys(TRANSFER_COMMANDS)]);
  for (const [name, op] of Object.entries(OPERATIONS)) if (wanted(kebab(name))) ebs.addCommand(command(name, op as EbsOperation));
  // Snapshots that leave the machine (ebs-transfer.ts): kmsvol's own, not operations of the service.
  for (const [name, make] of Object.entries(TRANSFER_COMMANDS)) if (wanted(name)) ebs.addCommand(make());
  return ebs;
}
