import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: this host's instance was launched once; DescribeInstances computed
 * its LaunchTime on every call as now minus the uptime, so it moved by a few
 * milliseconds from one call to the next (23:45:55.161, .167, .166 through
 * the AWS CLI), and a client that compares instances across calls (Terraform,
 * a script caching it) sees the instance change.
 */
describe('DescribeInstances: the LaunchTime is the same on every call', () => {
  it('four calls, one LaunchTime', () => {
    const home = tempHome('kmsvol-launch-');
    const times = new Set<string>();
    for (let i = 0; i < 4; i++) times.add(kmsvol(home, ['ec2', 'describe-instances']).json.Reservations[0].Instances[0].LaunchTime);
    expect([...times]).toHaveLength(1);
  });
});
