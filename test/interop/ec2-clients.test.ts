import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * The AWS clients nobody here wrote, against kmsvol's EC2+KMS endpoint:
 * boto3 and pytest from Debian (/usr/bin/python3), the AWS CLI v2 from Debian
 * (/usr/bin/aws). Each runs as a user would, with only the endpoint URL set.
 */
function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function pytest(file: string, env: Record<string, string>) {
  return run('/usr/bin/python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-x', path.join(ROOT, 'test/interop/ec2', file)], env);
}

describe('EC2 through boto3 and the AWS CLI', () => {
  it('a user story in pytest: detach, reattach with the key disabled (attaching, then failed with an event), enable, reattach, data intact', async () => {
    const home = tempHome('kmsvol-ec2-');
    const ep = await startEndpoint(home);
    const r = await pytest('test_user_story.py', { ...ep.env, KMSVOL_ENDPOINT: ep.url });
    expect(r.out).toMatch(/1 passed/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);

  it('ModifyVolume in pytest: an attached 1 GiB ext4 volume grows to 2 GiB while mounted, resize2fs grows the filesystem, data intact, the image payload is 2 GiB', async () => {
    const home = tempHome('kmsvol-ec2-');
    const ep = await startEndpoint(home);
    const r = await pytest('test_modify_volume.py', { ...ep.env, KMSVOL_ENDPOINT: ep.url });
    expect(r.out).toMatch(/1 passed/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);

  it('conformance in pytest with boto3: types, the paginator over two pages, filters, tags, DryRun both ways, errors, the four waiters', async () => {
    const home = tempHome('kmsvol-ec2-');
    const ep = await startEndpoint(home);
    const r = await pytest('test_conformance.py', { ...ep.env, KMSVOL_ENDPOINT: ep.url, KMSVOL_BIN: BIN });
    expect(r.out).toMatch(/6 passed/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);

  it('the same story with the AWS CLI v2 (/usr/bin/aws) as a shell script', async () => {
    const home = tempHome('kmsvol-ec2-');
    const ep = await startEndpoint(home);
    const r = await run('bash', [path.join(ROOT, 'test/interop/ec2/user-story.sh')], { ...ep.env, KMSVOL_ENDPOINT: ep.url, AWS_ENDPOINT_URL: '' });
    expect(r.out).toMatch(/cli user story: ok/);
    expect(r.code, r.out).toBe(0);
  }, 240_000);
});
