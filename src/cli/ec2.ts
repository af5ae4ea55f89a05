import fs from 'node:fs';
import { Command, Option } from 'commander';
import { attachForeground, attachVolume, detachVolume } from '../card/attach.js';
import { ec2Context } from '../card/context.js';
import { viaEc2 } from '../card/grants.js';
import { clockFromEnv } from '../clock.js';
import { configuredAccount } from '../config.js';
import { ServiceError, UsageError } from '../errors.js';
import { DEFAULT_REGION } from '../kms/context.js';
import type { Members, Shape } from '../server/ec2/protocol.js';
import {
  getEbsDefaultKmsKeyId,
  getEbsEncryptionByDefault,
  modifyEbsDefaultKmsKeyId,
  resetEbsDefaultKmsKeyId,
  setEbsEncryptionByDefault,
} from '../volume/defaults.js';
import { EventLog } from '../volume/events.js';
import { describeVolumeAttribute, describeVolumeStatus, describeVolumesModifications, startModifyVolume } from '../volume/modify.js';
import { Registry } from '../volume/registry.js';
import { deleteSnapshot, describeSnapshots, startCopySnapshot, startCreateSnapshot } from '../volume/snapshots.js';
import type { Tag, TagSpecification } from '../volume/tags.js';
import { createTags, deleteTags, describeTags } from '../volume/tags.js';
import type { Ec2Context, Filter } from '../volume/volumes.js';
import { deleteVolume, describeVolumes, startCreateVolume } from '../volume/volumes.js';
import { parseInteger, parseShorthandList } from './args.js';
import type { GlobalOptions } from './common.js';
import { globalsOf, homeOf, openKmsClient, print, regionOf, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { cliInput, cliInputOptions, printSkeleton } from './input.js';
import { allPages, EC2_PAGING, paginationOptions } from './paging.js';

/** The volume side's context for one CLI call; closed by the caller. */
export function openEc2(g: GlobalOptions): Ec2Context & { close(): void } {
  const home = homeOf(g);
  const region = regionOf(g) ?? DEFAULT_REGION;
  const kms = openKmsClient(g, { viaService: viaEc2(region) });
  const account = configuredAccount();
  const registry = new Registry(home.registryDb);
  const ctx = ec2Context({ home, registry, kms, clock: clockFromEnv(), region, account, ...(process.stderr.isTTY ? { onProgress: progressBar } : {}) });
  return Object.assign(ctx, {
    close: () => {
      registry.close();
      kms.close();
    },
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

/**
 * One EC2 command: `build` adds its options, `request` turns them into the
 * operation's request (with AWS's member names), `run` calls the control
 * plane. `--dry-run` runs the checks the EC2 endpoint runs for the same
 * action and answers DryRunOperation (exit 254), as the AWS CLI shows it.
 */
/** The list each paginated operation pages through (the AWS CLI's paginators). */
const PAGINATED: Record<string, string> = {
  DescribeVolumes: 'Volumes',
  DescribeSnapshots: 'Snapshots',
  DescribeTags: 'Tags',
  DescribeVolumesModifications: 'VolumesModifications',
  DescribeVolumeStatus: 'VolumeStatuses',
  DescribeInstances: 'Reservations',
};

/** Every option an EC2 command declares, as commander parses it: `<value>` a string, `<values...>` a list, a flag a boolean. */
interface Opts {
  volumeId?: string;
  volumeIds?: string[];
  snapshotId?: string;
  snapshotIds?: string[];
  sourceSnapshotId?: string;
  sourceRegion?: string;
  ownerIds?: string[];
  instanceId?: string;
  instanceIds?: string[];
  resources?: string[];
  filters?: string[];
  tags?: string[];
  tagSpecifications?: string[];
  size?: string;
  iops?: string;
  throughput?: string;
  volumeType?: string;
  encrypted?: boolean;
  kmsKeyId?: string;
  availabilityZone?: string;
  clientToken?: string;
  multiAttachEnabled?: boolean;
  description?: string;
  device?: string;
  attribute?: string;
  loop?: boolean;
  foreground?: boolean;
  force?: boolean;
  maxResults?: string;
  nextToken?: string;
  dryRun?: boolean;
  paginate?: boolean;
  pageSize?: string;
  maxItems?: string;
  startingToken?: string;
  generateCliSkeleton?: string | true;
  cliInputJson?: string;
  cliInputYaml?: string;
}

/**
 * `request` builds the operation's request from the options; `run` reads it
 * as that same type. A request given whole (--cli-input-json/yaml) is merged
 * under the options and taken as that type too: the control plane checks
 * every member it reads, as it does for the endpoint.
 */
function op<Req extends object>(
  name: string,
  awsName: string,
  build: (c: Command) => Command,
  request: (o: Opts) => Req,
  run: (ctx: Ec2Context & { close(): void }, req: Req, g: GlobalOptions) => Promise<unknown>,
): Command {
  const list = PAGINATED[awsName];
  const cmd = build(withGlobals(new Command(name).description(`EC2 ${awsName}`)))
    .option('--dry-run', 'check the request and permissions without doing it (DryRunOperation when it would succeed)')
    .option('--no-dry-run');
  cliInputOptions(cmd);
  if (list) paginationOptions(cmd);
  // commander's required options would refuse a request given whole by --cli-input-json or a skeleton request.
  const required = cmd.options.filter((o) => o.mandatory);
  for (const o of required) o.makeOptionMandatory(false);
  cmd.action(async (opts: Opts, self: Command) => {
    const g = globalsOf(self);
    await OperationContext.run(awsName, async () => {
      if (opts.generateCliSkeleton !== undefined) {
        const { ec2Operations } = await import('../server/ec2/index.js');
        printSkeleton(skeletonOf(ec2Operations[awsName]!.input), opts.generateCliSkeleton);
        return;
      }
      const given = Object.fromEntries(Object.entries(request(opts)).filter(([, v]) => v !== undefined));
      const req: Record<string, unknown> = { ...cliInput(opts), ...given };
      const missing = required.filter(
        (o) => req[memberOf(o.attributeName())] === undefined && (opts as Record<string, unknown>)[o.attributeName()] === undefined,
      );
      if (missing.length) throw new UsageError(`the following arguments are required: ${missing.map((o) => o.long).join(', ')}`);
      if (opts.dryRun || req.DryRun) {
        const ctx = openEc2(g);
        try {
          const { ec2Operations } = await import('../server/ec2/index.js');
          await ec2Operations[awsName]!.check(ctx, req, undefined as never);
        } finally {
          ctx.close();
        }
        throw new ServiceError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
      }
      const ctx = openEc2(g);
      try {
        // The AWS CLI pages through the whole list unless told not to (--no-paginate, or the service's own --max-results/--next-token).
        const auto = list && opts.paginate !== false && req.MaxResults === undefined && req.NextToken === undefined;
        const out = auto
          ? await allPages((r) => run(ctx, r as Req, g) as Promise<Record<string, unknown>>, req, list!, opts, EC2_PAGING)
          : await run(ctx, req as Req, g);
        if (out !== undefined) print(out, g, awsName);
      } finally {
        ctx.close();
      }
    });
  });
  return cmd;
}

/** An option's attribute name (volumeId) as the AWS member name (VolumeId). */
function memberOf(attribute: string): string {
  return attribute[0]!.toUpperCase() + attribute.slice(1);
}

/** A request skeleton from the EC2 operation's members (the endpoint's own schema): empty strings, 0, false, one list item. */
function skeletonOf(members: Members): Record<string, unknown> {
  const of = (shape: Shape): unknown => {
    if (shape === 'string') return '';
    if (shape === 'integer') return 0;
    if (shape === 'boolean') return true;
    if ('list' in shape) return [of(shape.list)];
    return skeletonOf(shape.struct);
  };
  return { ...Object.fromEntries(Object.entries(members).map(([k, m]) => [k, of(m.shape)])), DryRun: true };
}

function filters(values: string[] | undefined): Filter[] | undefined {
  if (!values) return undefined;
  return parseShorthandList(values, 'filters').map((f: Record<string, unknown>) => {
    const vals = typeof f.Values === 'string' ? [f.Values] : f.Values;
    if (!f.Name || !Array.isArray(vals)) throw new UsageError(`Error parsing parameter '--filters': expected Name=NAME,Values=V1,V2 or JSON.`);
    return { Name: String(f.Name), Values: vals.map(String) };
  });
}

function tagSpecifications(values: string[] | undefined): TagSpecification[] | undefined {
  if (!values) return undefined;
  return parseShorthandList(values, 'tag-specifications').map((t: Record<string, unknown>) => ({
    ResourceType: t.ResourceType as string,
    Tags: Array.isArray(t.Tags) ? t.Tags.map((x: Record<string, unknown>) => tagOf(x)) : [],
  }));
}

function tags(values: string[] | undefined): Tag[] | undefined {
  if (!values) return undefined;
  return parseShorthandList(values, 'tags').map(tagOf);
}

function tagOf(x: Record<string, unknown>): Tag {
  return { Key: String(x.Key ?? ''), ...(x.Value !== undefined ? { Value: String(x.Value) } : {}) };
}

const int = (v: string | undefined, name: string) => (v === undefined ? undefined : parseInteger(v, name));
const paging = (c: Command) => c.option('--max-results <n>').option('--next-token <token>');
/** A required option's value: given as the option or in the --cli-input request, which op() checks before it runs. */
const required = (v: string | undefined) => v as string;
const pageOf = (o: Opts) => ({ MaxResults: int(o.maxResults, 'max-results'), NextToken: o.nextToken });

export function ec2Command(): Command {
  const ec2 = new Command('ec2').description('EBS-style volumes (same names and arguments as `aws ec2`)');
  ec2.addCommand(
    op(
      'create-volume',
      'CreateVolume',
      (c) =>
        c
          .option('--size <GiB>')
          .option('--encrypted')
          .option('--no-encrypted')
          .option('--kms-key-id <key>')
          .option('--availability-zone <zone>')
          .option('--volume-type <type>')
          .option('--snapshot-id <id>')
          .option('--iops <n>')
          .option('--throughput <MiBps>')
          .option('--tag-specifications <specs...>')
          .option('--client-token <token>')
          .option('--multi-attach-enabled')
          .option('--no-multi-attach-enabled'),
      (o) => ({
        SnapshotId: o.snapshotId,
        Size: int(o.size, 'size'),
        Encrypted: o.encrypted,
        KmsKeyId: o.kmsKeyId,
        AvailabilityZone: o.availabilityZone,
        VolumeType: o.volumeType,
        Iops: int(o.iops, 'iops'),
        Throughput: int(o.throughput, 'throughput'),
        TagSpecifications: tagSpecifications(o.tagSpecifications),
        ClientToken: o.clientToken,
        MultiAttachEnabled: o.multiAttachEnabled,
      }),
      async (ctx, req) => {
        if (req.MultiAttachEnabled)
          throw new ServiceError('InvalidParameterValue', 'Multi-Attach is not supported here: a kmsvol volume has one card, attached to this one instance.');
        // Answered as EC2 answers (creating, the key as named); kmsvol waits until the volume is available first.
        const started = await startCreateVolume(ctx, req);
        await started.done;
        return started.Volume;
      },
    ),
  );
  ec2.addCommand(
    op(
      'describe-volumes',
      'DescribeVolumes',
      (c) => paging(c.option('--volume-ids <ids...>').option('--volume-id <ids...>').option('--filters <filters...>')),
      // Here --volume-id is a list too (the AWS CLI takes it as --volume-ids).
      (o) => ({ VolumeIds: o.volumeIds ?? (o.volumeId as string[] | undefined), Filters: filters(o.filters), ...pageOf(o) }),
      (ctx, req) => describeVolumes(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'delete-volume',
      'DeleteVolume',
      (c) => c.requiredOption('--volume-id <id>'),
      (o) => ({ VolumeId: o.volumeId }),
      (ctx, req) => deleteVolume(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'attach-volume',
      'AttachVolume',
      (c) =>
        c
          .requiredOption('--volume-id <id>')
          .option('--device <dir>', 'directory where the decrypted volume file appears')
          .option('--instance-id <id>', "this host's instance id (describe-instances)")
          .option('--loop', 'also attach /dev/loopN (linked as /dev/kmsvol/<volume-id>)')
          .option('--foreground', 'run the card in this process until it is detached'),
      (o) => ({ VolumeId: required(o.volumeId), Device: o.device, InstanceId: o.instanceId, Loop: !!o.loop, foreground: !!o.foreground }),
      async (ctx, req, g) => {
        const r = { VolumeId: req.VolumeId, Device: req.Device, InstanceId: req.InstanceId, Loop: req.Loop };
        if (!req.foreground) return attachVolume(ctx, r);
        const { attachment, stopped } = await attachForeground(ctx, r);
        print(attachment, g);
        await stopped;
        return undefined;
      },
    ),
  );
  ec2.addCommand(
    op(
      'detach-volume',
      'DetachVolume',
      (c) =>
        c
          .requiredOption('--volume-id <id>')
          .option('--force')
          .option('--instance-id <id>')
          .option('--device <device>', "the attachment's Device (as describe-volumes shows it), or the directory attach-volume --device was given"),
      (o) => ({ VolumeId: required(o.volumeId), Force: !!o.force, InstanceId: o.instanceId, Device: o.device }),
      (ctx, req) => detachVolume(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'modify-volume',
      'ModifyVolume',
      (c) => c.requiredOption('--volume-id <id>').option('--size <GiB>').option('--volume-type <type>').option('--iops <n>').option('--throughput <MiBps>'),
      (o) => ({
        VolumeId: o.volumeId,
        Size: int(o.size, 'size'),
        VolumeType: o.volumeType,
        Iops: int(o.iops, 'iops'),
        Throughput: int(o.throughput, 'throughput'),
      }),
      async (ctx, req) => {
        const started = startModifyVolume(ctx, req);
        await started.done;
        return { VolumeModification: started.VolumeModification };
      },
    ),
  );
  ec2.addCommand(
    op(
      'describe-volumes-modifications',
      'DescribeVolumesModifications',
      (c) => paging(c.option('--volume-ids <ids...>').option('--filters <filters...>')),
      (o) => ({ VolumeIds: o.volumeIds, Filters: filters(o.filters), ...pageOf(o) }),
      async (ctx, req) => describeVolumesModifications(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'describe-volume-status',
      'DescribeVolumeStatus',
      (c) => paging(c.option('--volume-ids <ids...>').option('--filters <filters...>')),
      (o) => ({ VolumeIds: o.volumeIds, Filters: filters(o.filters), ...pageOf(o) }),
      async (ctx, req) => describeVolumeStatus(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'describe-volume-attribute',
      'DescribeVolumeAttribute',
      (c) => c.requiredOption('--volume-id <id>').requiredOption('--attribute <name>'),
      (o) => ({ VolumeId: o.volumeId, Attribute: o.attribute }),
      async (ctx, req) => describeVolumeAttribute(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'describe-instances',
      'DescribeInstances',
      (c) => paging(c.option('--instance-ids <ids...>').option('--filters <filters...>')),
      (o) => ({ InstanceIds: o.instanceIds, Filters: filters(o.filters), ...pageOf(o) }),
      async (ctx, req) => (await import('../server/ec2/instances.js')).describeInstances(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'create-snapshot',
      'CreateSnapshot',
      (c) => c.requiredOption('--volume-id <id>').option('--description <text>').option('--tag-specifications <specs...>'),
      (o) => ({ VolumeId: o.volumeId, Description: o.description, TagSpecifications: tagSpecifications(o.tagSpecifications) }),
      async (ctx, req) => {
        // Answered as EC2 answers (pending, Progress "", no key); kmsvol waits until it is completed first.
        const started = startCreateSnapshot(ctx, req);
        await started.done;
        const { KmsKeyId: _key, ...answer } = started.Snapshot;
        return answer;
      },
    ),
  );
  ec2.addCommand(
    op(
      'describe-snapshots',
      'DescribeSnapshots',
      (c) => paging(c.option('--snapshot-ids <ids...>').option('--owner-ids <ids...>').option('--filters <filters...>')),
      (o) => ({ SnapshotIds: o.snapshotIds, OwnerIds: o.ownerIds, Filters: filters(o.filters), ...pageOf(o) }),
      async (ctx, req) => describeSnapshots(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'delete-snapshot',
      'DeleteSnapshot',
      (c) => c.requiredOption('--snapshot-id <id>'),
      (o) => ({ SnapshotId: o.snapshotId }),
      async (ctx, req) => deleteSnapshot(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'copy-snapshot',
      'CopySnapshot',
      (c) =>
        c
          .requiredOption('--source-snapshot-id <id>')
          .option('--source-region <region>')
          .option('--encrypted')
          .option('--no-encrypted')
          .option('--kms-key-id <key>')
          .option('--description <text>')
          .option('--tag-specifications <specs...>'),
      (o) => ({
        SourceSnapshotId: o.sourceSnapshotId,
        SourceRegion: o.sourceRegion,
        Encrypted: o.encrypted,
        KmsKeyId: o.kmsKeyId,
        Description: o.description,
        TagSpecifications: tagSpecifications(o.tagSpecifications),
      }),
      async (ctx, req) => {
        // EC2 answers only the new snapshot's id; kmsvol waits until the copy is completed first.
        const started = startCopySnapshot(ctx, req);
        await started.done;
        return { SnapshotId: started.Snapshot.SnapshotId };
      },
    ),
  );
  ec2.addCommand(
    op(
      'create-tags',
      'CreateTags',
      (c) => c.requiredOption('--resources <ids...>').requiredOption('--tags <tags...>'),
      (o) => ({ Resources: o.resources, Tags: tags(o.tags) }),
      async (ctx, req) => createTags(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'delete-tags',
      'DeleteTags',
      (c) => c.requiredOption('--resources <ids...>').option('--tags <tags...>'),
      (o) => ({ Resources: o.resources, Tags: tags(o.tags) }),
      async (ctx, req) => deleteTags(ctx, req),
    ),
  );
  ec2.addCommand(
    op(
      'describe-tags',
      'DescribeTags',
      (c) => paging(c.option('--filters <filters...>')),
      (o) => ({ Filters: filters(o.filters), ...pageOf(o) }),
      async (ctx, req) => describeTags(ctx, req),
    ),
  );
  const none = () => ({});
  ec2.addCommand(
    op(
      'enable-ebs-encryption-by-default',
      'EnableEbsEncryptionByDefault',
      (c) => c,
      none,
      async (ctx) => setEbsEncryptionByDefault(ctx, true),
    ),
  );
  ec2.addCommand(
    op(
      'disable-ebs-encryption-by-default',
      'DisableEbsEncryptionByDefault',
      (c) => c,
      none,
      async (ctx) => setEbsEncryptionByDefault(ctx, false),
    ),
  );
  ec2.addCommand(
    op(
      'get-ebs-encryption-by-default',
      'GetEbsEncryptionByDefault',
      (c) => c,
      none,
      async (ctx) => getEbsEncryptionByDefault(ctx),
    ),
  );
  ec2.addCommand(
    op(
      'get-ebs-default-kms-key-id',
      'GetEbsDefaultKmsKeyId',
      (c) => c,
      none,
      async (ctx) => getEbsDefaultKmsKeyId(ctx),
    ),
  );
  ec2.addCommand(
    op(
      'modify-ebs-default-kms-key-id',
      'ModifyEbsDefaultKmsKeyId',
      (c) => c.requiredOption('--kms-key-id <key>'),
      (o) => ({ KmsKeyId: required(o.kmsKeyId) }),
      (ctx, req) => modifyEbsDefaultKmsKeyId(ctx, req.KmsKeyId),
    ),
  );
  ec2.addCommand(
    op(
      'reset-ebs-default-kms-key-id',
      'ResetEbsDefaultKmsKeyId',
      (c) => c,
      none,
      async (ctx) => resetEbsDefaultKmsKeyId(ctx),
    ),
  );
  return ec2;
}

export function eventsCommand(): Command {
  return withGlobals(new Command('events'))
    .description('Show EBS Volume Notification events (attach failures and volume changes)')
    .option('--follow', 'keep printing new events as they are recorded')
    .addOption(new Option('--volume-id <id>', 'only events of this volume'))
    .action(async (opts: { follow?: boolean; volumeId?: string }, self: Command) => {
      const g = globalsOf(self);
      const file = homeOf(g).eventLog;
      const keep = (e: { resources: string[] }) => !opts.volumeId || e.resources.some((r) => r.endsWith(`/${opts.volumeId}`));
      const events = EventLog.read(file).filter(keep);
      if (!opts.follow) return print({ Events: events }, g);
      for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
      let size = fs.existsSync(file) ? fs.statSync(file).size : 0;
      let partial = '';
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (!fs.existsSync(file)) return;
          const now = fs.statSync(file).size;
          if (now <= size) return;
          const fd = fs.openSync(file, 'r');
          const buf = Buffer.alloc(now - size);
          fs.readSync(fd, buf, 0, buf.length, size);
          fs.closeSync(fd);
          size = now;
          const lines = (partial + buf.toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const l of lines) if (l && keep(JSON.parse(l))) process.stdout.write(`${l}\n`);
        }, 200);
        process.once('SIGINT', () => {
          clearInterval(timer);
          resolve();
        });
      });
    });
}
