import { ec2Context } from '../../card/context.js';
import { viaEc2 } from '../../card/grants.js';
import { clockFromEnv } from '../../clock.js';
import type { Home } from '../../home.js';
import { InProcessKmsClient } from '../../kms/client/index.js';
import { Registry } from '../../volume/registry.js';
import type { Ec2Context } from '../../volume/volumes.js';
import type { ServiceCall } from '../service.js';

/**
 * The control plane's context for one EC2 call: the region's KMS, called
 * through EC2 (kms:ViaService ec2.<region>.amazonaws.com) on behalf of the
 * caller, as EBS calls KMS; the home's registry (one per home, kept open).
 */
const registries = new Map<string, Registry>();

function registryOf(home: Home): Registry {
  let r = registries.get(home.root);
  if (!r) {
    r = new Registry(home.registryDb);
    registries.set(home.root, r);
  }
  return r;
}

export function contextFor(call: ServiceCall): Ec2Context {
  const kms = new InProcessKmsClient(call.kms, { principal: call.caller.arn, viaService: viaEc2(call.region) }, false);
  return ec2Context({ home: call.home, registry: registryOf(call.home), kms, clock: clockFromEnv(), region: call.region, account: call.kms.account });
}

/** Close the registries (the endpoint is stopping). */
export function closeContexts(): void {
  for (const r of registries.values()) r.close();
  registries.clear();
}
