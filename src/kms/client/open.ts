import type { Clock } from '../../clock.js';
import type { Home } from '../../home.js';
import type { Caller } from '../authz.js';
import { DEFAULT_REGION } from '../context.js';
import { InProcessKmsClient } from './index.js';
import type { KmsClient } from './index.js';
import { kmsEndpointFromEnv, RemoteKmsClient } from './remote.js';

/**
 * The KMS the volume side talks to: the remote one when an endpoint is
 * configured (AWS_ENDPOINT_URL_KMS or KMSVOL_KMS_ENDPOINT), else the embedded
 * KMS on the home. `caller` names who calls and through which service.
 */
export function openKmsClient(o: { home: Home; region?: string; clock?: Clock; caller?: Partial<Caller> }): KmsClient {
  const endpoint = kmsEndpointFromEnv();
  if (endpoint) return new RemoteKmsClient({ endpoint, region: o.region ?? DEFAULT_REGION, viaService: o.caller?.viaService });
  return InProcessKmsClient.open({ home: o.home, region: o.region, clock: o.clock, caller: o.caller });
}
