import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: a NextToken is an offset ({"op":"DescribeVolumes","at":5}), so a
 * volume deleted from a page already read shifts the rest by one and the next
 * page skips a volume that exists (the AWS CLI's paginator, following the
 * tokens, never lists it). EC2's tokens resume after the last item given.
 * Reproduction: 7 volumes, a page of 5, delete the first of it, read the next
 * page: it has 1 volume; the 2 not yet seen both exist.
 */
describe('DescribeVolumes paging while volumes are deleted', () => {
  it('the page after a token lists every volume not yet seen that still exists', () => {
    const home = tempHome('kmsvol-paging-');
    const all: string[] = [];
    for (let i = 0; i < 7; i++) all.push(kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId);
    const first = kmsvol(home, ['ec2', 'describe-volumes', '--max-results', '5']).json;
    const seen: string[] = first.Volumes.map((v: { VolumeId: string }) => v.VolumeId);
    expect(seen).toHaveLength(5);
    expect(kmsvol(home, ['ec2', 'delete-volume', '--volume-id', seen[0]!]).code).toBe(0);
    const next = kmsvol(home, ['ec2', 'describe-volumes', '--max-results', '5', '--next-token', first.NextToken]).json;
    const rest = all.filter((v) => !seen.includes(v));
    expect(next.Volumes.map((v: { VolumeId: string }) => v.VolumeId).sort()).toEqual(rest.sort());
  });
});
