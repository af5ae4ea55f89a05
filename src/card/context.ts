import type { Clock } from '../clock.js';
import type { Home } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import type { Ec2Context } from '../volume/context.js';
import { EventLog } from '../volume/events.js';
import type { Registry } from '../volume/registry.js';
import { reconcile } from './cleanup.js';
import { cardOps } from './images.js';

/**
 * The one builder of the volume control plane's context, used by the
 * TypeScript API (api.ts), the CLI (cli/ec2.ts) and the EC2 endpoint
 * (server/ec2/): the same registry, events, card operations and reconcile,
 * whoever calls. `kms` is the region's KMS as seen through EC2 (kms:ViaService
 * ec2.<region>.amazonaws.com), for the caller on whose behalf EC2 acts.
 */
export interface Ec2ContextOptions {
  home: Home;
  registry: Registry;
  kms: KmsClient;
  clock: Clock;
  region: string;
  account: string;
  onProgress?: (what: string, fraction: number) => void;
}

export function ec2Context(o: Ec2ContextOptions): Ec2Context {
  const ctx: Ec2Context = {
    home: o.home,
    registry: o.registry,
    kms: o.kms,
    events: new EventLog(o.home.eventLog, o.region, o.account),
    clock: o.clock,
    region: o.region,
    account: o.account,
    reconcile: (v, a) => reconcile(ctx, v, a),
    card: cardOps(o.home, o.kms),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  };
  return ctx;
}
