import fs from 'node:fs';
import { Command, Option } from 'commander';
import { attachForeground, attachVolume, detachVolume } from '../card/attach.js';
import { ec2Context } from '../card/context.js';
import { viaEc2 } from '../card/grants.js';
import { clockFromEnv } from '../clock.js';
import { UsageError } from '../errors.js';
import { DEFAULT_ACCOUNT, DEFAULT_REGION } from '../kms/context.js';
import { getEbsDefaultKmsKeyId, getEbsEncryptionByDefault, modifyEbsDefaultKmsKeyId, resetEbsDefaultKmsKeyId, setEbsEncryptionByDefault } from '../volume/defaults.js';
import { EventLog } from '../volume/events.js';
import { copySnapshot, createSnapshot, deleteSnapshot, describeSnapshots } from '../volume/snapshots.js';
import { Registry } from '../volume/registry.js';
import { createVolume, deleteVolume, describeVolumes } from '../volume/volumes.js';
import type { Ec2Context, Filter } from '../volume/volumes.js';
import { parseInteger, parseStructList } from './args.js';
import { globalsOf, homeOf, openKmsClient, print, regionOf, withGlobals } from './common.js';
import type { GlobalOptions } from './common.js';
import { OperationContext } from './errors.js';

/** The volume side's context for one CLI call; closed by the caller. */
export function openEc2(g: GlobalOptions): Ec2Context & { close(): void } {
  const home = homeOf(g);
  const region = regionOf(g) ?? DEFAULT_REGION;
  const kms = openKmsClient(g, { viaService: viaEc2(region) });
  const account = process.env.KMSVOL_ACCOUNT_ID ?? DEFAULT_ACCOUNT;
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

function op(name: string, awsName: string, build: (c: Command) => Command, run: (ctx: Ec2Context & { close(): void }, opts: any, g: GlobalOptions) => Promise<unknown>): Command {
  const cmd = build(withGlobals(new Command(name).description(`EC2 ${awsName}`)));
  cmd.action(async (opts: Record<string, unknown>, self: Command) => {
    const g = globalsOf(self);
    await OperationContext.run(awsName, async () => {
      const ctx = openEc2(g);
      try {
        const out = await run(ctx, opts, g);
        if (out !== undefined) print(out, g);
      } finally {
        ctx.close();
      }
    });
  });
  return cmd;
}

function filters(values: string[] | undefined): Filter[] | undefined {
  if (!values) return undefined;
  return parseStructList(values, 'filters').map((f: Record<string, any>) => {
    const vals = typeof f.Values === 'string' ? f.Values.split(',') : f.Values;
    if (!f.Name || !Array.isArray(vals)) throw new UsageError(`Error parsing parameter '--filters': expected Name=NAME,Values=V1,V2 or JSON.`);
    return { Name: String(f.Name), Values: vals.map(String) };
  });
}

export function ec2Command(): Command {
  const ec2 = new Command('ec2').description('EBS-style volumes (same names and arguments as `aws ec2`)');
  ec2.addCommand(
    op('create-volume', 'CreateVolume', (c) =>
      c.option('--size <GiB>').option('--encrypted').option('--no-encrypted').option('--kms-key-id <key>').option('--availability-zone <zone>').option('--volume-type <type>').option('--snapshot-id <id>'),
      (ctx, o) => createVolume(ctx, { SnapshotId: o.snapshotId, Size: o.size === undefined ? undefined : parseInteger(o.size, 'size'), Encrypted: o.encrypted, KmsKeyId: o.kmsKeyId, AvailabilityZone: o.availabilityZone, VolumeType: o.volumeType })),
  );
  ec2.addCommand(
    op('describe-volumes', 'DescribeVolumes', (c) => c.option('--volume-ids <ids...>').option('--volume-id <ids...>').option('--filters <filters...>'),
      (ctx, o) => describeVolumes(ctx, { VolumeIds: o.volumeIds ?? o.volumeId, Filters: filters(o.filters) })),
  );
  ec2.addCommand(op('delete-volume', 'DeleteVolume', (c) => c.requiredOption('--volume-id <id>'), (ctx, o) => deleteVolume(ctx, { VolumeId: o.volumeId })));
  ec2.addCommand(
    op('attach-volume', 'AttachVolume', (c) =>
      c.requiredOption('--volume-id <id>').option('--device <dir>', 'directory where the decrypted volume file appears').option('--instance-id <id>', 'accepted for AWS CLI compatibility').option('--loop', 'also attach /dev/loopN').option('--foreground', 'run the card in this process until it is detached'),
      async (ctx, o, g) => {
        if (!o.foreground) return attachVolume(ctx, { VolumeId: o.volumeId, Device: o.device, Loop: !!o.loop });
        const { attachment, stopped } = await attachForeground(ctx, { VolumeId: o.volumeId, Device: o.device, Loop: !!o.loop });
        print(attachment, g);
        await stopped;
        return undefined;
      }),
  );
  ec2.addCommand(
    op('detach-volume', 'DetachVolume', (c) => c.requiredOption('--volume-id <id>').option('--force').option('--instance-id <id>').option('--device <dir>'),
      (ctx, o) => detachVolume(ctx, { VolumeId: o.volumeId, Force: !!o.force })),
  );
  ec2.addCommand(op('create-snapshot', 'CreateSnapshot', (c) => c.requiredOption('--volume-id <id>').option('--description <text>'), (ctx, o) => createSnapshot(ctx, { VolumeId: o.volumeId, Description: o.description })));
  ec2.addCommand(
    op('describe-snapshots', 'DescribeSnapshots', (c) => c.option('--snapshot-ids <ids...>').option('--owner-ids <ids...>', 'accepted for AWS CLI compatibility').option('--filters <filters...>'),
      async (ctx, o) => describeSnapshots(ctx, { SnapshotIds: o.snapshotIds, Filters: filters(o.filters) })),
  );
  ec2.addCommand(op('delete-snapshot', 'DeleteSnapshot', (c) => c.requiredOption('--snapshot-id <id>'), async (ctx, o) => deleteSnapshot(ctx, { SnapshotId: o.snapshotId })));
  ec2.addCommand(
    op('copy-snapshot', 'CopySnapshot', (c) =>
      c.requiredOption('--source-snapshot-id <id>').option('--source-region <region>', 'accepted; copies stay in this region').option('--encrypted').option('--no-encrypted').option('--kms-key-id <key>').option('--description <text>'),
      (ctx, o) => copySnapshot(ctx, { SourceSnapshotId: o.sourceSnapshotId, Encrypted: o.encrypted, KmsKeyId: o.kmsKeyId, Description: o.description })),
  );
  ec2.addCommand(op('enable-ebs-encryption-by-default', 'EnableEbsEncryptionByDefault', (c) => c, async (ctx) => setEbsEncryptionByDefault(ctx, true)));
  ec2.addCommand(op('disable-ebs-encryption-by-default', 'DisableEbsEncryptionByDefault', (c) => c, async (ctx) => setEbsEncryptionByDefault(ctx, false)));
  ec2.addCommand(op('get-ebs-encryption-by-default', 'GetEbsEncryptionByDefault', (c) => c, async (ctx) => getEbsEncryptionByDefault(ctx)));
  ec2.addCommand(op('get-ebs-default-kms-key-id', 'GetEbsDefaultKmsKeyId', (c) => c, async (ctx) => getEbsDefaultKmsKeyId(ctx)));
  ec2.addCommand(op('modify-ebs-default-kms-key-id', 'ModifyEbsDefaultKmsKeyId', (c) => c.requiredOption('--kms-key-id <key>'), (ctx, o) => modifyEbsDefaultKmsKeyId(ctx, o.kmsKeyId)));
  ec2.addCommand(op('reset-ebs-default-kms-key-id', 'ResetEbsDefaultKmsKeyId', (c) => c, async (ctx) => resetEbsDefaultKmsKeyId(ctx)));
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
      for (const e of events) process.stdout.write(JSON.stringify(e) + '\n');
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
          for (const l of lines) if (l && keep(JSON.parse(l))) process.stdout.write(l + '\n');
        }, 200);
        process.once('SIGINT', () => {
          clearInterval(timer);
          resolve();
        });
      });
    });
}
