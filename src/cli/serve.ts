import type { Worker } from 'node:cluster';
import cluster from 'node:cluster';
import { Command } from 'commander';
import { clockFromEnv } from '../clock.js';
import { UsageError } from '../errors.js';
import { createAccessKey, createRole, updateRoleMaxSessionDuration } from '../kms/iam.js';
import { Kms } from '../kms/kms.js';
import { isAwsRegion } from '../region.js';
import { parseInteger, readParamText } from './args.js';
import { globalsOf, homeOf, print, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { applySeedFile } from './seed.js';

/** The services one endpoint answers (loaded when a server starts, so other commands start faster). */
async function services() {
  const [{ kmsService }, { stsService }, { ec2Service }, { ebsService }] = await Promise.all([
    import('../server/kms.js'),
    import('../server/sts.js'),
    import('../server/ec2/index.js'),
    import('../server/ebs/index.js'),
  ]);
  return [kmsService, stsService, ec2Service, ebsService];
}

/**
 * `kmsvol serve` (and its older name `kmsvol kms serve`): the AWS APIs on
 * loopback, SigV4-verified, until SIGTERM or SIGINT. Every region is served,
 * each its own namespace, unless `--region` names the only one.
 * With `--workers N` (N > 1) the port is shared by N processes (node:cluster);
 * they share the SQLite store, whose transactions keep them consistent.
 */
export function serveCommand(): Command {
  return withGlobals(new Command('serve'))
    .description('Serve the AWS KMS, EC2 (EBS volumes) and STS APIs (SigV4-verified) for the AWS CLI and SDKs (--endpoint-url)')
    .option('--host <address>', 'address to bind (default 127.0.0.1: loopback only)', '127.0.0.1')
    .option('--port <port>', 'TCP port (default 4599)', '4599')
    .option('--workers <n>', 'server processes sharing the port (default 1)', '1')
    .option('--seed <file>', 'apply a seed file of key fixtures (YAML or JSON) before serving; see docs/cli.md')
    .option('--region-allow-any', "serve regions that are not AWS's too (by default a request scoped to an unknown region is refused, as AWS refuses it)")
    .action(async (opts: { host: string; port: string; workers: string; seed?: string; regionAllowAny?: boolean }, self: Command) => {
      const g = globalsOf(self);
      if (opts.seed && !cluster.isWorker) await OperationContext.run('Seed', async () => void (await applySeedFile(g, opts.seed!)));
      // Only an explicit --region restricts the endpoint; without it, the request's credential scope picks the region.
      const only = g.region;
      if (only !== undefined && !/^[a-z0-9-]{1,40}$/.test(only))
        throw new UsageError(`--region must be a region name such as us-east-1; got '${only}'. Leave it out to serve every region.`);
      if (only !== undefined && !opts.regionAllowAny && !isAwsRegion(only))
        throw new UsageError(`--region ${only} is not an AWS region (such as us-east-1). Name an AWS region, or add --region-allow-any to serve it anyway.`);
      const port = parseInteger(opts.port, 'port');
      if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535; got ${port}`);
      const workers = parseInteger(opts.workers, 'workers');
      if (workers < 1 || workers > 64) throw new UsageError(`--workers must be 1..64; got ${workers}`);
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      if (workers > 1 && cluster.isPrimary) {
        const pool = startWorkers(workers);
        const url = await pool.ready;
        process.stderr.write(`kmsvol listening on ${url} (${only ? `region ${only} only` : 'every region'}, ${workers} workers)\n`);
        print({ Endpoint: url, Regions: only ? [only] : 'any' }, g);
        await stopped;
        return pool.stop();
      }
      const { serveEndpoint } = await import('../server/http.js');
      const server = await serveEndpoint({
        home: homeOf(g),
        services: await services(),
        host: opts.host,
        port,
        region: only,
        regionAllowAny: opts.regionAllowAny === true,
        clock: clockFromEnv(),
      });
      if (cluster.isWorker) process.send!({ kmsvolListening: server.url });
      else {
        process.stderr.write(`kmsvol listening on ${server.url} (${only ? `region ${only} only` : 'every region'})\n`);
        print({ Endpoint: server.url, Regions: only ? [only] : 'any' }, g);
      }
      await stopped;
      // Volumes being created and cards being started finish (or fail, with an event) before the endpoint goes.
      await server.close();
      // A worker's IPC channel to the primary would keep it alive.
      if (cluster.isWorker) process.disconnect();
    });
}

/** Fork the workers (each runs this same command); resolves with their URL once all listen. */
function startWorkers(n: number): { ready: Promise<string>; stop(): Promise<void> } {
  const listening = new Set<Worker>();
  let stopping = false;
  let resolveReady!: (url: string) => void;
  const ready = new Promise<string>((r) => (resolveReady = r));
  const fork = (): void => {
    const w = cluster.fork();
    w.on('message', (m: { kmsvolListening?: string }) => {
      if (!m?.kmsvolListening) return;
      listening.add(w);
      if (listening.size === n) resolveReady(m.kmsvolListening);
    });
    // A worker that dies while serving is replaced; one that fails to start stops the server.
    w.once('exit', (code) => {
      if (stopping) return;
      if (listening.delete(w)) return fork();
      process.stderr.write(`kmsvol kms serve: a worker exited with code ${code} before it was listening\n`);
      process.exit(1);
    });
  };
  for (let i = 0; i < n; i++) fork();
  return {
    ready,
    async stop() {
      stopping = true;
      const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      await Promise.all(
        all.map(
          (w) =>
            new Promise((r) => {
              w.once('exit', r);
              w.process.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

const seconds = (v: string) => parseInteger(v, 'max-session-duration');

/** `kmsvol iam create-access-key` and `create-role`: local IAM for `kmsvol serve`. */
export function iamCommand(): Command {
  const iam = new Command('iam').description('Local IAM for `kmsvol serve`: access keys and roles');
  const withKms = async <T>(op: string, g: ReturnType<typeof globalsOf>, fn: (kms: Kms) => T) =>
    OperationContext.run(op, async () => {
      const kms = Kms.open({ home: homeOf(g), audit: false });
      try {
        print(fn(kms), g);
      } finally {
        kms.close();
      }
    });
  iam.addCommand(
    withGlobals(new Command('create-role'))
      .requiredOption('--role-name <name>')
      .requiredOption('--assume-role-policy-document <json>', 'the trust policy: who may sts:AssumeRole (JSON, or file://FILE)')
      .option('--max-session-duration <seconds>', 'the longest session AssumeRole grants: 3600 (the default) to 43200 seconds', seconds)
      .description('Create a role that the principals named by its trust policy may assume through STS')
      .action(async (opts: { roleName: string; assumeRolePolicyDocument: string; maxSessionDuration?: number }, self: Command) => {
        const g = globalsOf(self);
        await withKms('CreateRole', g, (kms) => createRole(kms.ctx, opts.roleName, readParamText(opts.assumeRolePolicyDocument), opts.maxSessionDuration));
      }),
  );
  iam.addCommand(
    withGlobals(new Command('update-role'))
      .requiredOption('--role-name <name>')
      .requiredOption('--max-session-duration <seconds>', 'the longest session AssumeRole grants from now on: 3600 to 43200 seconds', seconds)
      .description("Change a role's MaxSessionDuration (sessions already issued keep theirs)")
      .action(async (opts: { roleName: string; maxSessionDuration: number }, self: Command) => {
        const g = globalsOf(self);
        await withKms('UpdateRole', g, (kms) => updateRoleMaxSessionDuration(kms.ctx, opts.roleName, opts.maxSessionDuration));
      }),
  );
  iam.addCommand(
    withGlobals(new Command('create-access-key'))
      .requiredOption('--user-name <name>')
      .description('Create an access key (the secret is shown once)')
      .action(async (opts: { userName: string }, self: Command) => {
        const g = globalsOf(self);
        await withKms('CreateAccessKey', g, (kms) => createAccessKey(kms.ctx, opts.userName));
      }),
  );
  return iam;
}
