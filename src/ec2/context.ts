import { ec2Context } from '../card/context.js';
import { viaEc2 } from '../card/grants.js';
import type { Clock } from '../clock.js';
import { clockFromEnv } from '../clock.js';
import type { Home } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import { InProcessKmsClient } from '../kms/client/index.js';
import type { Kms } from '../kms/kms.js';
import type { Ec2Context } from '../volume/context.js';
import { Registry } from '../volume/registry.js';

/**
 * Where the EC2 control plane's context comes from, for each face: the
 * endpoint (one per request, for its caller and region), and kmsvol's CLI
 * and API (one per call or per `Kmsvol`). Each face hands the context down
 * whole; none assembles it from the registry, the card layer and the KMS.
 * The KMS it holds is the region's KMS as EC2 calls it (kms:ViaService
 * ec2.<region>.amazonaws.com), on behalf of the caller, as EBS calls KMS.
 */

export interface LocalContextOptions {
  home: Home;
  /** The KMS as seen through EC2 (the CLI opens it with `viaService: viaEc2(region)`; closed with the context). */
  kms: KmsClient;
  region: string;
  account: string;
  clock?: Clock;
  onProgress?: (what: string, fraction: number) => void;
}

/** A context for kmsvol's own CLI or API; `close()` closes its registry and its KMS client. */
export function openEc2Context(o: LocalContextOptions): Ec2Context & { close(): void } {
  const registry = new Registry(o.home.registryDb);
  const ctx = ec2Context({
    home: o.home,
    registry,
    kms: o.kms,
    clock: o.clock ?? clockFromEnv(),
    region: o.region,
    account: o.account,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  return Object.assign(ctx, {
    close: () => {
      registry.close();
      o.kms.close();
    },
  });
}

/** The service name a KMS call made by EC2 carries (kms:ViaService). */
export { viaEc2 };

/**
 * The endpoint's contexts: one registry per home, kept open while the
 * endpoint runs; a context per request, for the caller who signed it and the
 * KMS of the request's region.
 */
export class Ec2Contexts {
  private registry?: Registry;

  constructor(private readonly home: Home) {}

  contextFor(kms: Kms, principal: string, region: string): Ec2Context {
    if (!this.registry) {
      this.registry = new Registry(this.home.registryDb);
      // The endpoint's first use sweeps block files no snapshot names (a crash between a delete's commit and its unlinks).
      this.registry.sweepOrphanBlocks(this.home.root);
    }
    const client = new InProcessKmsClient(kms, { principal, viaService: viaEc2(region) }, false);
    return ec2Context({ home: this.home, registry: this.registry, kms: client, clock: clockFromEnv(), region, account: kms.account });
  }

  close(): void {
    this.registry?.close();
    this.registry = undefined;
  }
}
