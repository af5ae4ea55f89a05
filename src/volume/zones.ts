import { ServiceError } from '../errors.js';
import { checkText } from './text.js';

/**
 * The Availability Zones of each AWS Region, by the letters their names end
 * in (AWS's "Regions and Availability Zones" list; letters as a new account
 * sees them: us-east-1 has six, us-west-2 four, ap-northeast-1 has no `b`
 * for new accounts, us-west-1 two). A region not in the table (one served
 * only with the server's explicit allow-any) has `a` to `c`, the fewest any
 * current commercial region has. This host's instance is in the region's
 * first zone (DescribeInstances), which is also where a volume goes when
 * CreateVolume names no zone. One rule for the CLI, the TypeScript API and
 * the endpoint: CreateVolume checks its zone here before anything is recorded.
 */
const ZONE_LETTERS: Readonly<Record<string, string>> = {
  'us-east-1': 'abcdef',
  'us-east-2': 'abc',
  'us-west-1': 'bc',
  'us-west-2': 'abcd',
  'ca-central-1': 'abd',
  'ca-west-1': 'abc',
  'mx-central-1': 'abc',
  'sa-east-1': 'abc',
  'eu-west-1': 'abc',
  'eu-west-2': 'abc',
  'eu-west-3': 'abc',
  'eu-central-1': 'abc',
  'eu-central-2': 'abc',
  'eu-north-1': 'abc',
  'eu-south-1': 'abc',
  'eu-south-2': 'abc',
  'il-central-1': 'abc',
  'me-south-1': 'abc',
  'me-central-1': 'abc',
  'af-south-1': 'abc',
  'ap-east-1': 'abc',
  'ap-east-2': 'abc',
  'ap-south-1': 'abc',
  'ap-south-2': 'abc',
  'ap-northeast-1': 'acd',
  'ap-northeast-2': 'abcd',
  'ap-northeast-3': 'abc',
  'ap-southeast-1': 'abc',
  'ap-southeast-2': 'abc',
  'ap-southeast-3': 'abc',
  'ap-southeast-4': 'abc',
  'ap-southeast-5': 'abc',
  'ap-southeast-7': 'abc',
};

export function availabilityZones(region: string): string[] {
  return [...(ZONE_LETTERS[region] ?? 'abc')].map((l) => `${region}${l}`);
}

/** The zone a new volume goes in when none is named (the instance's): the region's first. */
export function defaultZone(region: string): string {
  return availabilityZones(region)[0]!;
}

/** Precondition: a named zone is one of the region's; otherwise InvalidZone.NotFound, in EC2's words. */
export function checkZone(region: string, zone: string | undefined): string {
  if (zone === undefined) return defaultZone(region);
  checkText('AvailabilityZone', zone);
  if (!availabilityZones(region).includes(zone))
    throw new ServiceError('InvalidZone.NotFound', `The zone '${zone}' does not exist. The zones of ${region} are ${availabilityZones(region).join(', ')}.`);
  return zone;
}
