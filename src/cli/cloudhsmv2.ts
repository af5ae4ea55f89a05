import path from 'node:path';
import { Command } from 'commander';
import { ensureDir } from '../home.js';
import { createCluster, describeClusters } from '../kms/keystores/clusters.js';
import { Kms } from '../kms/kms.js';
import { globalsOf, homeOf, print, regionOf, withGlobals } from './common.js';
import { OperationContext } from './errors.js';

/**
 * `kmsvol cloudhsmv2`: the AWS CloudHSM clusters that AWS_CLOUDHSM custom key
 * stores use, with CloudHSM's output shape. A cluster is one PKCS#11 token:
 * by default a SoftHSM2 token made under the home's hsm/ directory, or the
 * token --token-label in the module --pkcs11-module.
 */
export function cloudhsmv2Command(): Command {
  const c = new Command('cloudhsmv2').description('AWS CloudHSM clusters (PKCS#11 tokens) for AWS_CLOUDHSM custom key stores');
  const withKms = async (op: string, self: Command, fn: (kms: Kms, hsmDir: string) => unknown) => {
    const g = globalsOf(self);
    await OperationContext.run(op, async () => {
      const home = homeOf(g);
      const kms = Kms.open({ home, region: regionOf(g), audit: false });
      try {
        print(fn(kms, path.join(home.root, 'hsm')), g);
      } finally {
        kms.close();
      }
    });
  };
  c.addCommand(
    withGlobals(new Command('create-cluster'))
      .description("Create a cluster: a PKCS#11 token whose user PIN is kmsuser's password (the custom key store's KeyStorePassword)")
      .requiredOption('--kmsuser-password <pw>', "kmsuser's password: the token's user PIN (7 to 32 characters)")
      .option('--pkcs11-module <path>', 'a PKCS#11 module of yours (default: SoftHSM2, with a token made under the home)')
      .option('--token-label <label>', 'the token in --pkcs11-module that plays the cluster')
      .action(async (opts: { kmsuserPassword: string; pkcs11Module?: string; tokenLabel?: string }, self: Command) => {
        await withKms('CreateCluster', self, (kms, hsmDir) => {
          if (opts.pkcs11Module === undefined) ensureDir(hsmDir);
          return createCluster(kms.ctx, {
            kmsuserPassword: opts.kmsuserPassword,
            softhsmDir: hsmDir,
            ...(opts.pkcs11Module !== undefined ? { pkcs11Module: path.resolve(opts.pkcs11Module) } : {}),
            ...(opts.tokenLabel !== undefined ? { tokenLabel: opts.tokenLabel } : {}),
          });
        });
      }),
  );
  c.addCommand(
    withGlobals(new Command('describe-clusters'))
      .description('Describe the clusters (Certificates.ClusterCertificate is the TrustAnchorCertificate of CreateCustomKeyStore)')
      .option('--filters <filters>', 'clusterIds=cluster-a,cluster-b')
      .action(async (opts: { filters?: string }, self: Command) => {
        const ids = opts.filters ? /^clusterIds=(.+)$/.exec(opts.filters)?.[1]?.split(',') : undefined;
        await withKms('DescribeClusters', self, (kms) => describeClusters(kms.ctx, ids));
      }),
  );
  return c;
}
