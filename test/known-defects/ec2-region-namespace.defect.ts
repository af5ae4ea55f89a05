import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: DESIGN.md, "The region comes from the request's credential
 * scope; each region is its own namespace." EBS volumes are regional: a
 * volume made in us-east-1 is InvalidVolume.NotFound to a caller in
 * eu-west-1. Today the volume registry is one for every region: eu-west-1
 * lists us-east-1's volume (in zone us-east-1a), and may modify or delete it.
 * (No card, no loop device: the volumes are only created.)
 */
describe('EC2 volumes are regional', () => {
  it('kmsvol ec2: a volume created in us-east-1 is not found in eu-west-1, and survives a delete there', () => {
    const home = tempHome('kmsvol-ec2region-');
    const made = kmsvol(home, ['--region', 'us-east-1', 'ec2', 'create-volume', '--size', '1']);
    expect(made.code, made.stderr).toBe(0);
    const vol = made.json.VolumeId as string;
    const listed = kmsvol(home, ['--region', 'eu-west-1', 'ec2', 'describe-volumes']);
    expect(listed.json.Volumes.map((v: { VolumeId: string }) => v.VolumeId)).not.toContain(vol);
    const del = kmsvol(home, ['--region', 'eu-west-1', 'ec2', 'delete-volume', '--volume-id', vol]);
    expect(del.code).toBe(254);
    expect(del.stderr).toContain('InvalidVolume.NotFound');
    expect(kmsvol(home, ['--region', 'us-east-1', 'ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes).toHaveLength(1);
  });

  it('the endpoint (AWS CLI): a caller scoped to eu-west-1 cannot modify a us-east-1 volume', async () => {
    const home = tempHome('kmsvol-ec2region-');
    const ep = await startEndpoint(home);
    const aws = (region: string, args: string[]) =>
      spawnSync('/usr/bin/aws', ['--endpoint-url', ep.url, '--region', region, ...args], { env: { ...process.env, ...ep.env }, encoding: 'utf8' });
    const made = aws('us-east-1', ['ec2', 'create-volume', '--size', '1', '--availability-zone', 'us-east-1a', '--query', 'VolumeId', '--output', 'text']);
    expect(made.status, made.stderr).toBe(0);
    const vol = made.stdout.trim();
    const modify = aws('eu-west-1', ['ec2', 'modify-volume', '--volume-id', vol, '--volume-type', 'gp3', '--dry-run']);
    expect(modify.stderr).toContain('InvalidVolume.NotFound');
  });
});
