import { ServiceError } from '../errors.js';
import { checkText } from './text.js';

/**
 * The Availability Zones of a region: `<region>a` to `<region>f`, the most
 * any AWS region has (us-east-1). This host's instance is in `<region>a`
 * (DescribeInstances), which is also where a volume goes when CreateVolume
 * names no zone. One rule for the CLI, the TypeScript API and the endpoint:
 * CreateVolume checks its zone here before anything is recorded.
 */
const LETTERS = ['a', 'b', 'c', 'd', 'e', 'f'] as const;

export function availabilityZones(region: string): string[] {
  return LETTERS.map((l) => `${region}${l}`);
}

/** The zone a new volume goes in when none is named (the instance's). */
export function defaultZone(region: string): string {
  return `${region}a`;
}

/** Precondition: a named zone is one of the region's; otherwise InvalidZone.NotFound, in EC2's words. */
export function checkZone(region: string, zone: string | undefined): string {
  if (zone === undefined) return defaultZone(region);
  checkText('AvailabilityZone', zone);
  if (!availabilityZones(region).includes(zone))
    throw new ServiceError('InvalidZone.NotFound', `The zone '${zone}' does not exist. The zones of ${region} are ${availabilityZones(region).join(', ')}.`);
  return zone;
}
