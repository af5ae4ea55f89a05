import { describe, expect, it } from 'vitest';
import { encodeResponse } from '../../../src/server/ec2/protocol.js';
import { describeAvailabilityZones } from '../../../src/volume/zones.js';

describe('DescribeAvailabilityZones (throwaway)', () => {
  it('lists the region’s zones, in EC2’s element names', () => {
    const out = describeAvailabilityZones('us-east-1', {});
    expect(out.AvailabilityZones.map((z) => z.ZoneName)).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d', 'us-east-1e', 'us-east-1f']);
    const xml = encodeResponse('DescribeAvailabilityZones', 'r', describeAvailabilityZones('us-east-1', { ZoneNames: ['us-east-1b'] }), {
      AvailabilityZones: 'availabilityZoneInfo',
      State: 'zoneState',
    });
    expect(xml).toContain('<availabilityZoneInfo><item><zoneState>available</zoneState>');
  });
});
