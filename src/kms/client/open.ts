import type { Clock } from '../../clock.js';
import { DEFAULT_REGION } from '../../config.js';
import { UsageError } from '../../errors.js';
import type { Home } from '../../home.js';
import type { Caller } from '../authz.js';
import type { KmsClient } from './index.js';
import { InProcessKmsClient } from './index.js';
import { kmsEndpointFromEnv, RemoteKmsClient } from './remote.js';

/**
 * The KMS the volume side talks to:
 * - KMSVOL_KMS=aws (`--kms aws`): AWS KMS itself, with the SDK's standard
 *   credential chain (and its endpoint, unless AWS_ENDPOINT_URL_KMS says otherwise);
 * - an endpoint (KMSVOL_KMS_ENDPOINT, `--kms-endpoint`, or AWS_ENDPOINT_URL_KMS):
 *   a `kmsvol kms serve`, with credentials from the environment;
 * - otherwise the embedded KMS on the home.
 * `caller` names who calls and through which service; `kms` and `endpoint`
 * (the CLI's --kms and --kms-endpoint) come before the variables.
 */
export function openKmsClient(o: { home: Home; region?: string; clock?: Clock; caller?: Partial<Caller>; kms?: string; endpoint?: string }): KmsClient {
  const endpoint = o.endpoint ?? kmsEndpointFromEnv();
  const where = o.kms ?? (process.env.KMSVOL_KMS || 'embedded');
  if (where === 'aws') {
    const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('--kms aws needs a region: pass --region or set AWS_REGION.');
    return new RemoteKmsClient({ endpoint, region, credentials: 'standard', viaService: o.caller?.viaService });
  }
  if (where !== 'embedded')
    throw new UsageError(`KMSVOL_KMS=${where} is not a KMS kmsvol knows: use "embedded" or "aws" (or set KMSVOL_KMS_ENDPOINT for a kmsvol kms serve).`);
  if (endpoint) return new RemoteKmsClient({ endpoint, region: o.region ?? DEFAULT_REGION, viaService: o.caller?.viaService });
  return InProcessKmsClient.open({ home: o.home, region: o.region, clock: o.clock, caller: o.caller });
}
