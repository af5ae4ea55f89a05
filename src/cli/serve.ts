import { Command } from 'commander';
import { clockFromEnv } from '../clock.js';
import { UsageError } from '../errors.js';
import { createAccessKey } from '../kms/iam.js';
import { Kms } from '../kms/kms.js';
import { serveKms } from '../kms/server/server.js';
import { globalsOf, homeOf, print, regionOf, withGlobals } from './common.js';
import { OperationContext } from './errors.js';
import { parseInteger } from './args.js';

/** `kmsvol kms serve`: the AWS KMS protocol on loopback, until SIGTERM or SIGINT. */
export function serveCommand(): Command {
  return withGlobals(new Command('serve'))
    .description('Serve the AWS KMS JSON protocol (SigV4-signed) for the AWS CLI and SDKs (--endpoint-url)')
    .option('--host <address>', 'address to bind (default 127.0.0.1: loopback only)', '127.0.0.1')
    .option('--port <port>', 'TCP port (default 4599)', '4599')
    .action(async (opts: { host: string; port: string }, self: Command) => {
      const g = globalsOf(self);
      const port = parseInteger(opts.port, 'port');
      if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535; got ${port}`);
      const kms = Kms.open({ home: homeOf(g), region: regionOf(g), clock: clockFromEnv() });
      const server = await serveKms(kms, { host: opts.host, port });
      process.stderr.write(`kmsvol KMS listening on ${server.url} (region ${kms.region})\n`);
      print({ Endpoint: server.url, Region: kms.region }, g);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await server.close();
      kms.close();
    });
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
