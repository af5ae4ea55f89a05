import { Command } from 'commander';
import { configuredAccount, DEFAULT_REGION } from '../config.js';
import { openEc2Context, viaEc2 } from '../ec2/context.js';
import { invoke, operationOf } from '../ec2/invoke.js';
import { OPERATIONS } from '../ec2/operations.js';
import { SUMMARIES } from '../ec2/summaries.js';
import type { Ec2Context } from '../volume/context.js';
import type { GlobalOptions } from './common.js';
import { globalsOf, homeOf, kebab, namedIn, openKmsClient, print, regionOf, withGlobals } from './common.js';
import { addMemberOptions, refuseMissing, requestOf, skeletonOf } from './ec2-options.js';
import { OperationContext } from './errors.js';
import { cliInput, cliInputOptions, printSkeleton } from './input.js';
import { allPages, EC2_PAGING, paginationOptions } from './paging.js';

/**
 * `kmsvol ec2 <operation>`: one command per entry of the EC2 registry
 * (src/ec2/operations.ts), in kmsvol's own form where the entry has one
 * (attach-volume: a directory, --loop, --foreground). Its options are the
 * entry's members as the AWS CLI spells them (ec2-options.ts), paged as the
 * AWS CLI pages the entry's list. `--dry-run` runs the entry's dry-run check
 * and answers DryRunOperation (exit 254), as the AWS CLI shows it. kmsvol
 * waits for the work EC2 answers before (a volume `creating` is available
 * when the command returns) and prints EC2's answer; with --wait
 * (create-volume, detach-volume) it prints the state the AWS CLI's waiters
 * wait for instead.
 */

/** `--wait`: once the work is done, what to print instead of EC2's first answer. */
const WAITED: Record<string, { help: string; final(ctx: Ec2Context, answer: Record<string, unknown>): Promise<unknown> }> = {
  CreateVolume: {
    help: 'wait until the volume is available and print it as describe-volumes does (as `aws ec2 wait volume-available` would)',
    async final(ctx, answer) {
      const r = (await invoke(ctx, 'DescribeVolumes', { VolumeIds: [answer.VolumeId] })).answer as { Volumes: unknown[] };
      return r.Volumes[0];
    },
  },
  DetachVolume: {
    help: 'wait until the volume is detached (available) and print the attachment as detached',
    final: async (_ctx, answer) => ({ ...answer, State: 'detached' }),
  },
};

/** The volume side's context for one CLI call; closed by the caller. */
export function openEc2(g: GlobalOptions): Ec2Context & { close(): void } {
  const region = regionOf(g) ?? DEFAULT_REGION;
  return openEc2Context({
    home: homeOf(g),
    kms: openKmsClient(g, { viaService: viaEc2(region) }),
    region,
    account: configuredAccount(),
    ...(process.stderr.isTTY ? { onProgress: progressBar } : {}),
  });
}

/** A one-line progress bar on stderr (only when it is a terminal), redrawn when the percentage changes. */
let lastBar = '';
function progressBar(what: string, fraction: number): void {
  const pct = Math.floor(fraction * 100);
  const key = `${what} ${pct}`;
  if (key === lastBar) return;
  lastBar = key;
  const filled = Math.round((pct / 100) * 30);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${String(pct).padStart(3)}% ${what}${pct >= 100 ? '\n' : ''}`);
}

function command(name: string): Command {
  const op = operationOf(name, true);
  const cmd = addMemberOptions(withGlobals(new Command(kebab(name)).description(SUMMARIES[name] ?? `EC2 ${name}`)), op);
  const waited = WAITED[name];
  if (waited) cmd.option('--wait', waited.help);
  cliInputOptions(cmd);
  if (op.pages) paginationOptions(cmd);
  return cmd.action(async (opts: Record<string, unknown>, self: Command) => {
    const g = globalsOf(self);
    await OperationContext.run(name, async () => {
      if (opts.generateCliSkeleton !== undefined) return printSkeleton(skeletonOf(op), opts.generateCliSkeleton as string | true);
      // A request given whole (--cli-input-json/yaml) is merged under the options; the control plane checks every member it reads.
      const given = requestOf(op, opts);
      const req: Record<string, unknown> = { ...cliInput(opts), ...given };
      refuseMissing(op, req);
      const ctx = openEc2(g);
      try {
        const call = (r: Record<string, unknown>) => invoke(ctx, name, r, { local: true });
        // The AWS CLI pages through the whole list unless told not to (--no-paginate, or the service's own --max-results/--next-token).
        const list = req.DryRun !== true && op.pages && opts.paginate !== false && req.MaxResults === undefined && req.NextToken === undefined;
        if (list) return print(await allPages(async (r) => (await call(r)).answer as Record<string, unknown>, req, op.pages!, opts, EC2_PAGING), g, name);
        const { answer, done, early } = await call(req);
        if (early) print(answer, g);
        await done;
        if (waited && opts.wait === true && req.DryRun !== true) print(await waited.final(ctx, answer as Record<string, unknown>), g, name);
        else if (!early && answer !== undefined) print(answer, g, name);
      } finally {
        ctx.close();
      }
    });
  });
}

/** `kmsvol ec2`, with the subcommands `args` (the user's words) name, or all of them (namedIn). */
export function ec2Command(args?: readonly string[]): Command {
  const ec2 = new Command('ec2').description('EBS-style volumes (same names and arguments as `aws ec2`)');
  const names = Object.keys(OPERATIONS);
  const wanted = namedIn(args, names.map(kebab));
  for (const name of names) if (wanted(kebab(name))) ec2.addCommand(command(name));
  return ec2;
}
