import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * The EBS direct APIs through clients nobody here wrote, against kmsvol's
 * endpoint: boto3 (pytest, test/interop/ec2/test_ebs_boto3.py), the AWS CLI
 * (`aws ebs …`) and @aws-sdk/client-ebs (test/interop/ebs-sdk.test.ts).
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

describe('EBS direct APIs through boto3', () => {
  it('round trips with checksums both ways, a corrupted checksum, a disabled key, changed blocks and shared-block frees, ext4 from PutSnapshotBlock mounted, an EC2 snapshot read back', async () => {
    const home = tempHome('kmsvol-ebs-');
    const ep = await startEndpoint(home);
    const r = await run(
      '/usr/bin/python3',
      ['-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', '-x', path.join(ROOT, 'test/interop/ec2/test_ebs_boto3.py')],
      { ...ep.env, KMSVOL_ENDPOINT: ep.url },
    );
    expect(r.out).toMatch(/7 passed/);
    expect(r.code, r.out).toBe(0);
  }, 600_000);
});

function aws(args: string[], env: Record<string, string>) {
  const r = spawnSync('/usr/bin/aws', ['--endpoint-url', env.AWS_ENDPOINT_URL!, '--output', 'json', ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr, json: r.status === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

const BLOCK = 512 * 1024;
const b64sha = (d: Buffer) => crypto.createHash('sha256').update(d).digest('base64');

describe('EBS direct APIs through the AWS CLI (aws ebs …)', () => {
  it('a snapshot written with put-snapshot-block, completed with the LINEAR checksum, read back with get-snapshot-block, checksums both ways; a corrupted checksum is refused', async () => {
    const home = tempHome('kmsvol-ebs-cli-');
    const ep = await startEndpoint(home);
    const dir = tempHome('kmsvol-ebs-cli-files-');
    const blocks = new Map<number, Buffer>([0, 3, 4, 2047].map((i) => [i, crypto.randomBytes(BLOCK)]));
    const sid = aws(['ebs', 'start-snapshot', '--volume-size', '1', '--description', 'aws cli'], ep.env).json.SnapshotId as string;
    expect(sid).toMatch(/^snap-[0-9a-f]{17}$/);
    for (const [i, data] of blocks) {
      const f = path.join(dir, `b${i}`);
      fs.writeFileSync(f, data);
      const put = aws(
        [
          'ebs',
          'put-snapshot-block',
          '--snapshot-id',
          sid,
          '--block-index',
          String(i),
          '--block-data',
          f,
          '--data-length',
          String(BLOCK),
          '--checksum',
          b64sha(data),
          '--checksum-algorithm',
          'SHA256',
        ],
        ep.env,
      );
      expect(put.code, put.err).toBe(0);
      expect(put.json).toEqual({ Checksum: b64sha(data), ChecksumAlgorithm: 'SHA256' });
    }
    const bad = crypto.randomBytes(BLOCK);
    fs.writeFileSync(path.join(dir, 'bad'), bad);
    const refused = aws(
      [
        'ebs',
        'put-snapshot-block',
        '--snapshot-id',
        sid,
        '--block-index',
        '9',
        '--block-data',
        path.join(dir, 'bad'),
        '--data-length',
        String(BLOCK),
        '--checksum',
        b64sha(blocks.get(0)!),
        '--checksum-algorithm',
        'SHA256',
      ],
      ep.env,
    );
    expect(refused.code).toBe(254);
    expect(refused.err).toContain('An error occurred (ValidationException) when calling the PutSnapshotBlock operation');
    const agg = crypto.createHash('sha256');
    for (const i of [...blocks.keys()].sort((a, b) => a - b)) agg.update(crypto.createHash('sha256').update(blocks.get(i)!).digest());
    const done = aws(
      [
        'ebs',
        'complete-snapshot',
        '--snapshot-id',
        sid,
        '--changed-blocks-count',
        String(blocks.size),
        '--checksum',
        agg.digest('base64'),
        '--checksum-algorithm',
        'SHA256',
        '--checksum-aggregation-method',
        'LINEAR',
      ],
      ep.env,
    );
    expect(done.json).toEqual({ Status: 'completed' });
    const listed = aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', sid], ep.env).json;
    expect(listed.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual([0, 3, 4, 2047]); // 9 was refused: absent
    expect(listed).toMatchObject({ VolumeSize: 1, BlockSize: BLOCK });
    for (const b of listed.Blocks as { BlockIndex: number; BlockToken: string }[]) {
      const out = path.join(dir, `got${b.BlockIndex}`);
      const got = aws(['ebs', 'get-snapshot-block', '--snapshot-id', sid, '--block-index', String(b.BlockIndex), '--block-token', b.BlockToken, out], ep.env);
      expect(got.code, got.err).toBe(0);
      expect(got.json).toMatchObject({ Checksum: b64sha(blocks.get(b.BlockIndex)!), ChecksumAlgorithm: 'SHA256' });
      expect(Number(got.json.DataLength)).toBe(BLOCK); // the AWS CLI shows this header member as it came, a string
      expect(fs.readFileSync(out).equals(blocks.get(b.BlockIndex)!)).toBe(true);
    }
  }, 600_000);
});
