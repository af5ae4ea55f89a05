import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

describe('CLI input errors (finding 7 of issue 13)', () => {
  it.each(['-3', '0', 'abc', '1.5'])('audit --max-results %s is a usage error (252), not everything with exit 0', (n) => {
    const home = tempHome();
    const r = kmsvol(home, ['audit', '--max-results', n]);
    expect(r.code).toBe(252);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`kmsvol: error: Invalid value for --max-results: ${n}`);
  });

  it('audit --max-results 1 gives the last record', () => {
    const home = tempHome();
    kmsvol(home, ['kms', 'create-key']);
    kmsvol(home, ['kms', 'list-keys']);
    const r = kmsvol(home, ['audit', '--max-results', '1']);
    expect(r.code).toBe(0);
    expect(r.json.Events.map((e: { eventName: string }) => e.eventName)).toEqual(['ListKeys']);
  });

  it("create-volume --kms-key-id '' is refused (254) instead of meaning the default key, and makes no volume", () => {
    const home = tempHome();
    const r = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', '']);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(
      "An error occurred (InvalidParameterValue) when calling the CreateVolume operation: Value ('') for parameter KmsKeyId is invalid.",
    );
    expect(kmsvol(home, ['ec2', 'describe-volumes']).json.Volumes).toEqual([]);
    // Also where it used to pass silently: with --no-encrypted, and for copy-snapshot.
    const plain = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted', '--kms-key-id', '']);
    expect(plain.code).toBe(254);
    expect(plain.stderr).toContain('(InvalidParameterValue)');
    const vol = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId;
    const snap = kmsvol(home, ['ec2', 'create-snapshot', '--volume-id', vol]).json.SnapshotId;
    const copy = kmsvol(home, ['ec2', 'copy-snapshot', '--source-snapshot-id', snap, '--encrypted', '--kms-key-id', '']);
    expect(copy.code).toBe(254);
    expect(copy.stderr).toContain("(InvalidParameterValue) when calling the CopySnapshot operation: Value ('') for parameter KmsKeyId is invalid.");
  });
});
