import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_REGION } from '../config.js';
import { exportBundle } from '../ebs/bundle.js';
import { EbsSource } from '../ebs/source.js';
import { importBundle, importFromEndpoint } from '../ebs/transfer.js';
import { UsageError } from '../errors.js';
import { RemoteKmsClient } from '../kms/client/remote.js';
import { snapshotShape } from '../volume/snapshots.js';
import { globalsOf, print, regionOf, withGlobals } from './common.js';
import { openEc2 } from './ec2.js';
import { OperationContext } from './errors.js';

/**
 * `kmsvol ebs export-snapshot` and `kmsvol ebs import-snapshot`: a snapshot
 * moved to another home or host (docs/ebs-direct-apis.md, "Snapshots that
 * leave the machine"). Export writes a bundle of the stored ciphertext; import
 * takes a bundle, or reads a snapshot through another endpoint's EBS direct
 * APIs (--source-endpoint-url, credentials as the AWS CLI finds them).
 */
interface ImportOpts {
  bundle?: string;
  sourceEndpointUrl?: string;
  sourceSnapshotId?: string;
  kmsKeyId?: string;
  description?: string;
}

function exportCommand(): Command {
  return withGlobals(new Command('export-snapshot'))
    .description('Write a completed snapshot, as stored (ciphertext, wrapped key), into a new bundle directory')
    .requiredOption('--snapshot-id <id>', 'the snapshot')
    .requiredOption('--output-dir <dir>', 'the bundle directory to create (must not exist)')
    .action(async (opts: { snapshotId: string; outputDir: string }, self: Command) => {
      const g = globalsOf(self);
      await OperationContext.run('ExportSnapshot', async () => {
        const ctx = openEc2(g);
        try {
          const m = exportBundle(ctx, opts.snapshotId, path.resolve(opts.outputDir));
          print(
            {
              SnapshotId: m.SnapshotId,
              Bundle: path.resolve(opts.outputDir),
              Encrypted: m.Encrypted,
              KmsKeyArn: m.KmsKeyArn,
              BlockCount: m.Blocks.length,
              Aggregate: m.Aggregate,
            },
            g,
          );
        } finally {
          ctx.close();
        }
      });
    });
}

function importCommand(): Command {
  return withGlobals(new Command('import-snapshot'))
    .description('Register a snapshot from a bundle (--bundle) or from another endpoint (--source-endpoint-url with --source-snapshot-id)')
    .option('--bundle <dir>', 'a bundle made by export-snapshot')
    .option('--source-endpoint-url <url>', "the source's endpoint: its EBS direct APIs (with --source-snapshot-id), or its KMS (with --bundle)")
    .option('--source-snapshot-id <id>', 'the snapshot to read through --source-endpoint-url')
    .option('--kms-key-id <key>', 're-encrypt every block under a new data key wrapped by this key')
    .option('--description <text>', 'the new snapshot description')
    .action(async (opts: ImportOpts, self: Command) => {
      const g = globalsOf(self);
      if (!opts.bundle === !opts.sourceSnapshotId) throw new UsageError('import-snapshot needs exactly one of --bundle and --source-snapshot-id.');
      if (opts.sourceSnapshotId && !opts.sourceEndpointUrl) throw new UsageError('--source-snapshot-id needs --source-endpoint-url.');
      await OperationContext.run('ImportSnapshot', async () => {
        const ctx = openEc2(g);
        const region = regionOf(g) ?? DEFAULT_REGION;
        const common = { ...(opts.kmsKeyId ? { kmsKeyId: opts.kmsKeyId } : {}), ...(opts.description !== undefined ? { description: opts.description } : {}) };
        try {
          const row = opts.bundle
            ? await importBundle(ctx, path.resolve(opts.bundle), {
                ...common,
                ...(opts.sourceEndpointUrl ? { sourceKms: new RemoteKmsClient({ endpoint: opts.sourceEndpointUrl, region, credentials: 'standard' }) } : {}),
              })
            : await importFromEndpoint(ctx, new EbsSource(opts.sourceEndpointUrl!, region), opts.sourceSnapshotId!, common);
          print(snapshotShape(ctx, row), g);
        } finally {
          ctx.close();
        }
      });
    });
}

/** `kmsvol ebs export-snapshot` and `import-snapshot`, by name (added to `kmsvol ebs` beside the six operations). */
export const TRANSFER_COMMANDS: Readonly<Record<string, () => Command>> = { 'export-snapshot': exportCommand, 'import-snapshot': importCommand };
