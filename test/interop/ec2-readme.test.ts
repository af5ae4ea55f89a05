import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/** The README's "Point your AWS tools at kmsvol" examples, run as written (only the endpoint's port differs). */
function example(name: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example:${name} `);
  expect(at, `README has the ${name} example`).toBeGreaterThan(0);
  const open = readme.indexOf('```', at);
  const body = readme.indexOf('\n', open) + 1;
  return readme.slice(body, readme.indexOf('\n```', body) + 1);
}

describe('README: Point your AWS tools at kmsvol', () => {
  it('the AWS CLI example runs: attach answers attaching, the disabled key fails the attach with an event', async () => {
    const home = tempHome('kmsvol-readme-');
    const ep = await startEndpoint(home, 'us-east-1');
    const bin = fs.mkdtempSync(path.join(home, 'bin-'));
    fs.symlinkSync(BIN, path.join(bin, 'kmsvol'));
    const script = example('aws-cli').replaceAll('http://127.0.0.1:4599', ep.url);
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      env: { ...process.env, ...ep.env, AWS_ENDPOINT_URL: '', PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
      timeout: 170_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/"State": "attaching"/g)).toHaveLength(2);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^DisabledException: arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f-]{36} is disabled\.$/);
  }, 180_000);

  it('the boto3 example runs: the volume is snapshotted while attached and grown to 2 GiB', async () => {
    const home = tempHome('kmsvol-readme-');
    const ep = await startEndpoint(home, 'us-east-1');
    const code = `${example('boto3').replaceAll('http://127.0.0.1:4599', ep.url)}print(vol, snap)\n`;
    const r = spawnSync('/usr/bin/python3', ['-c', code], { env: { ...process.env, ...ep.env }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const [vol, snap] = r.stdout.trim().split(' ');
    const check = `import boto3, time
ec2 = boto3.client("ec2", endpoint_url="${ep.url}")
for _ in range(300):
    m = ec2.describe_volumes_modifications(VolumeIds=["${vol}"])["VolumesModifications"][0]
    if m["ModificationState"] == "completed": break
    time.sleep(0.2)
v = ec2.describe_volumes(VolumeIds=["${vol}"])["Volumes"][0]
s = ec2.describe_snapshots(SnapshotIds=["${snap}"])["Snapshots"][0]
print(v["Size"], v["Attachments"][0]["Device"], s["State"], s["VolumeId"] == "${vol}")
`;
    const c = spawnSync('/usr/bin/python3', ['-c', check], { env: { ...process.env, ...ep.env }, encoding: 'utf8', timeout: 120_000 });
    expect(c.stdout.trim(), c.stderr).toBe('2 /dev/sdf completed True');
  }, 180_000);
});
