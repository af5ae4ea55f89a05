import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * Adversarial cases of the EBS direct APIs (issue 28) through boto3 and
 * botocore's own SigV4 signer, against `kmsvol serve` on loopback: one
 * pytest case of test/interop/ec2/test_ebs_breaker.py per test, each on a
 * fresh home and endpoint.
 */
function pytest(name: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('/usr/bin/python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(ROOT, `test/interop/ec2/test_ebs_breaker.py::${name}`)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function runCase(name: string) {
  const home = tempHome('kmsvol-ebs-breaker-');
  const ep = await startEndpoint(home);
  const r = await pytest(name, { ...ep.env, KMSVOL_ENDPOINT: ep.url });
  expect(r.out).toMatch(/1 passed/);
  expect(r.code, r.out).toBe(0);
}

describe('EBS direct APIs against a hostile client', () => {
  it(
    'StartSnapshot: a body sent as UNSIGNED-PAYLOAD and replaced after signing is refused (only PutSnapshotBlock has an unsigned body)',
    () => runCase('test_start_snapshot_body_is_covered_by_the_signature'),
    120_000,
  );

  it(
    'PutSnapshotBlock with UNSIGNED-PAYLOAD: an x-amz-Checksum outside SignedHeaders is refused, a swapped body not stored',
    () => runCase('test_put_snapshot_block_unsigned_payload_needs_a_signed_checksum'),
    120_000,
  );

  it(
    'a PutSnapshotBlock in flight never lands in a snapshot CompleteSnapshot completed',
    () => runCase('test_a_put_in_flight_never_lands_in_a_completed_snapshot'),
    300_000,
  );

  it('an all-zero block put counts in ChangedBlocksCount and the LINEAR aggregate', () => runCase('test_an_all_zero_block_put_counts_as_written'), 120_000);

  it(
    'a damaged block in the store is not served with a checksum computed over the damage',
    () => runCase('test_a_damaged_stored_block_is_not_served_as_good'),
    120_000,
  );

  it(
    'CompleteSnapshot refuses a snapshot EC2 is still making (CopySnapshot), one StartSnapshot did not start',
    () => runCase('test_the_write_operations_take_only_snapshots_started_by_start_snapshot'),
    180_000,
  );

  it(
    'under EBS encryption by default, StartSnapshot with an unencrypted parent is refused (ValidationException), as in AWS',
    () => runCase('test_encryption_by_default_refuses_an_unencrypted_parent'),
    120_000,
  );

  it(
    'a user with no identity policy cannot read a snapshot through the EBS direct APIs (ebs:* actions, as IAM decides them)',
    () => runCase('test_a_user_with_no_identity_policy_cannot_read_snapshots_through_ebs'),
    120_000,
  );
});
