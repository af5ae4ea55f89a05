import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { Command } from 'commander';
import { clockFromEnv } from '../clock.js';
import { UsageError } from '../errors.js';
import { createAccessKey } from '../kms/iam.js';
import { Kms } from '../kms/kms.js';
import { serveKms } from '../kms/server/server.js';
import { globalsOf, homeOf, print, regionOf, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { parseInteger } from './args.js';
import { applySeedFile } from './seed.js';

/**
 * `kmsvol kms serve`: the AWS KMS protocol on loopback, until SIGTERM or SIGINT.
 * With `--workers N` (N > 1) the port is shared by N processes (node:cluster);
 * they share the SQLite store, whose transactions keep them consistent.
 */
export function serveCommand(): Command {
  return withGlobals(new Command('serve'))
    .description('Serve the AWS KMS JSON protocol (SigV4-signed) for the AWS CLI and SDKs (--endpoint-url)')
    .option('--host <address>', 'address to bind (default 127.0.0.1: loopback only)', '127.0.0.1')
    .option('--port <port>', 'TCP port (default 4599)', '4599')
    .option('--workers <n>', 'server processes sharing the port (default 1)', '1')
    .option('--seed <file>', 'apply a seed file of key fixtures (YAML or JSON) before serving; see docs/cli.md')
    .action(async (opts: { host: string; port: string; workers: string; seed?: string }, self: Command) => {
      const g = globalsOf(self);
      if (opts.seed && !cluster.isWorker) await OperationContext.run('Seed', async () => void applySeedFile(g, opts.seed!));
      const port = parseInteger(opts.port, 'port');
      if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535; got ${port}`);
      const workers = parseInteger(opts.workers, 'workers');
      if (workers < 1 || workers > 64) throw new UsageError(`--workers must be 1..64; got ${workers}`);
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      if (workers > 1 && cluster.isPrimary) {
        const region = regionOf(g) ?? process.env.KMSVOL_REGION ?? 'local';
        const pool = startWorkers(workers);
        const url = await pool.ready;
        process.stderr.write(`kmsvol KMS listening on ${url} (region ${region}, ${workers} workers)\n`);
        print({ Endpoint: url, Region: region }, g);
        await stopped;
        return pool.stop();
      }
      const kms = Kms.open({ home: homeOf(g), region: regionOf(g), clock: clockFromEnv() });
      const server = await serveKms(kms, { host: opts.host, port });
      if (cluster.isWorker) process.send!({ kmsvolListening: server.url });
      else {
        process.stderr.write(`kmsvol KMS listening on ${server.url} (region ${kms.region})\n`);
        print({ Endpoint: server.url, Region: kms.region }, g);
      }
      await stopped;
      await server.close();
      kms.close();
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
      await Promise.all(all.map((w) => new Promise((r) => (w.once('exit', r), w.process.kill('SIGTERM')))));
    },
  };
}

/** `kmsvol iam create-access-key --user-name NAME`: credentials for the KMS server. */
export function iamCommand(): Command {
  const iam = new Command('iam').description('Local credentials for `kmsvol kms serve`');
  iam.addCommand(
    withGlobals(new Command('create-access-key'))
      .requiredOption('--user-name <name>')
      .description('Create an access key (the secret is shown once)')
      .action(async (opts: { userName: string }, self: Command) => {
        const g = globalsOf(self);
        await OperationContext.run('CreateAccessKey', async () => {
          const kms = Kms.open({ home: homeOf(g), region: regionOf(g), audit: false });
          try {
            print(createAccessKey(kms.ctx, opts.userName), g);
          } finally {
            kms.close();
          }
        });
      }),
  );
  return iam;
}
