import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol, ROOT } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * Issue 24, finding 3, as the tester ran it: CreateVolume with the zone
 * $'us-east-1a\x01', the zone us-east-1q and a tag value holding \x01, through
 * boto3 and the AWS CLI v2 (Debian's, nobody here wrote them) and kmsvol's
 * own CLI; then DescribeVolumes must still parse in both clients. A tag
 * stored before the rule (written into the registry directly) must not break
 * them either.
 */
function run(cmd: string, args: string[], env: Record<string, string>): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('control characters and unknown zones (finding 3)', () => {
  it("boto3, the AWS CLI and kmsvol's CLI get InvalidParameterValue for $'us-east-1a\\x01' and a \\x01 tag value, InvalidZone.NotFound for us-east-1q; DescribeVolumes then parses in boto3 and the AWS CLI, also over a tag stored before the rule", async () => {
    const home = tempHome('kmsvol-ec2-text-');
    const ep = await startEndpoint(home);
    const env = { ...ep.env, KMSVOL_ENDPOINT: ep.url };
    const boto = (step: string) => {
      const r = run('/usr/bin/python3', [path.join(ROOT, 'test/interop/ec2/input_text.py'), step], env);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out);
    };

    // boto3
    const tried = boto('bad-inputs');
    expect(tried['zone-control']).toMatchObject({ code: 'InvalidParameterValue', message: expect.stringContaining('parameter AvailabilityZone') });
    expect(tried['zone-unknown']).toMatchObject({ code: 'InvalidZone.NotFound', message: expect.stringMatching(/^The zone 'us-east-1q' does not exist\./) });
    expect(tried['tag-control']).toMatchObject({ code: 'InvalidParameterValue', message: expect.stringContaining('parameter TagSpecification.1.Tag.1.Value') });
    expect(tried.good.created).toMatch(/^vol-[0-9a-f]{17}$/);

    // The AWS CLI v2
    const aws = (args: string[]) => run('/usr/bin/aws', ['--endpoint-url', ep.url, '--output', 'json', 'ec2', ...args], { ...env, AWS_ENDPOINT_URL: '' });
    const cliZone = aws(['create-volume', '--size', '1', '--availability-zone', 'us-east-1a\u0001']);
    expect(cliZone.code).toBe(254);
    expect(cliZone.err).toMatch(/\(InvalidParameterValue\) when calling the CreateVolume operation: .*parameter AvailabilityZone/);
    const cliUnknown = aws(['create-volume', '--size', '1', '--availability-zone', 'us-east-1q']);
    expect(cliUnknown.err).toMatch(/\(InvalidZone\.NotFound\) when calling the CreateVolume operation: The zone 'us-east-1q' does not exist\./);
    const cliTag = aws([
      'create-volume',
      '--size',
      '1',
      '--availability-zone',
      'us-east-1a',
      // JSON (with its \\u0001 escape): the AWS CLI's shorthand parser cannot take a control character itself.
      '--tag-specifications',
      '[{"ResourceType":"volume","Tags":[{"Key":"k","Value":"v\\u0001"}]}]',
    ]);
    expect(cliTag.err).toMatch(/\(InvalidParameterValue\) when calling the CreateVolume operation: .*TagSpecification\.1\.Tag\.1\.Value/);

    // kmsvol's own CLI (no endpoint: the control plane's rule)
    const own = (args: string[]) => kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--region', 'us-east-1', ...args]);
    const ownZone = own(['--availability-zone', 'us-east-1q']);
    expect({ code: ownZone.code, err: ownZone.stderr }).toMatchObject({ code: 254, err: expect.stringContaining('(InvalidZone.NotFound)') });
    const ownTag = own(['--tag-specifications', 'ResourceType=volume,Tags=[{Key=k,Value=v\u0001}]']);
    expect({ code: ownTag.code, err: ownTag.stderr }).toMatchObject({ code: 254, err: expect.stringContaining('(InvalidParameterValue)') });

    // A tag stored before the rule existed: the answer still parses (the writer puts U+FFFD in its place).
    const registry = new Registry(path.join(home, 'ec2.db'));
    try {
      registry.write(() => registry.putTag({ resource_id: tried.good.created, key: 'old', value: 'stored\u0001before' }));
    } finally {
      registry.close();
    }

    const described = boto('describe');
    expect(described.unparsed).toBeUndefined();
    expect(described.volumes).toHaveLength(1);
    expect(described.volumes[0]).toMatchObject({ id: tried.good.created, zone: 'us-east-1b' });
    expect(described.volumes[0].tags).toEqual(
      expect.arrayContaining([
        { Key: 'k', Value: 'fine' },
        { Key: 'old', Value: 'stored\ufffdbefore' },
      ]),
    );
    const listed = aws(['describe-volumes']);
    expect(listed.code, listed.err).toBe(0);
    expect(JSON.parse(listed.out).Volumes.map((v: { VolumeId: string }) => v.VolumeId)).toEqual([tried.good.created]);
  }, 240_000);
});
