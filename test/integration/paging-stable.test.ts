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

describe('paging tokens are positions, and only ours are accepted', () => {
  it('KMS ListKeys: a key deleted between pages does not hide a key not yet listed', () => {
    const home = tempHome('kmsvol-paging-');
    const all: string[] = [];
    for (let i = 0; i < 5; i++) all.push(kmsvol(home, ['kms', 'create-key']).json.KeyMetadata.KeyId);
    const first = kmsvol(home, ['kms', 'list-keys', '--limit', '3']).json;
    const seen: string[] = first.Keys.map((k: { KeyId: string }) => k.KeyId);
    expect(first.Truncated).toBe(true);
    // The first key listed is deleted: scheduled, then read 8 days on (KMSVOL_NOW), past its 7-day window.
    expect(kmsvol(home, ['kms', 'schedule-key-deletion', '--key-id', seen[0]!, '--pending-window-in-days', '7']).code).toBe(0);
    const later = { KMSVOL_NOW: new Date(Date.now() + 8 * 86_400_000).toISOString() };
    const next = kmsvol(home, ['kms', 'list-keys', '--limit', '3', '--marker', first.NextMarker], later).json;
    expect(next.Keys.map((k: { KeyId: string }) => k.KeyId).sort()).toEqual(all.filter((k) => !seen.includes(k)).sort());
  });

  it('a forged or foreign token is the service error: EC2 InvalidParameterValue, KMS InvalidMarkerException', () => {
    const home = tempHome('kmsvol-paging-');
    for (let i = 0; i < 6; i++) kmsvol(home, ['ec2', 'create-volume', '--size', '1']);
    const offset = Buffer.from(JSON.stringify({ op: 'DescribeVolumes', at: 5 })).toString('base64url');
    const snapshotsToken = Buffer.from(JSON.stringify({ list: 'DescribeSnapshots', after: [0, 'snap-0'] })).toString('base64url');
    for (const token of [offset, snapshotsToken, 'not-a-token']) {
      const r = kmsvol(home, ['ec2', 'describe-volumes', '--max-results', '5', '--next-token', token]);
      expect(r.code).toBe(254);
      expect(r.stderr).toContain('(InvalidParameterValue)');
    }
    for (let i = 0; i < 3; i++) kmsvol(home, ['kms', 'create-key']);
    for (const marker of [Buffer.from('kv1:2').toString('base64'), 'bm90IGEgbWFya2Vy']) {
      const r = kmsvol(home, ['kms', 'list-keys', '--limit', '2', '--marker', marker]);
      expect(r.code).toBe(254);
      expect(r.stderr).toContain('(InvalidMarkerException)');
    }
  });
});
