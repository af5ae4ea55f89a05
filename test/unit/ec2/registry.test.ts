import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { kebab } from '../../../src/cli/common.js';
import { addMemberOptions, refuseMissing, requestOf } from '../../../src/cli/ec2-options.js';
import { operationOf } from '../../../src/ec2/invoke.js';
import type { Shape } from '../../../src/ec2/members.js';
import { LOCAL_MEMBERS, MEMBERS, memberSpec } from '../../../src/ec2/members.js';
import { memberNames, requiredMembers } from '../../../src/ec2/operation.js';
import { OPERATIONS } from '../../../src/ec2/operations.js';
import { ec2Service, INPUTS } from '../../../src/server/ec2/index.js';
import { decodeRequest } from '../../../src/server/ec2/protocol.js';
import type { ServiceCall } from '../../../src/server/service.js';

/**
 * The EC2 registry's three views, without a home or a volume: the endpoint's
 * Query decoder (against botocore's own EC2 serializer), the CLI's options
 * (against the AWS CLI's own argument tables: Debian's python3-botocore and
 * awscli, the /usr/bin/aws the interop tests compare with) and its request building.
 */
const OPS = Object.keys(OPERATIONS);

function python(script: string, input: unknown): unknown {
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(input) });
  expect(r.status, r.stderr.toString()).toBe(0);
  return JSON.parse(r.stdout.toString());
}

/** A value of each shape: every member given, two items in every list. */
function sample(name: string, shape: Shape): unknown {
  if (shape === 'string') return `${name}-v`;
  if (shape === 'integer') return 7;
  if (shape === 'boolean') return true;
  if ('list' in shape) return [sample(`${name}1`, shape.list), sample(`${name}2`, shape.list)];
  return Object.fromEntries(Object.entries(shape.struct).map(([k, m]) => [k, sample(k, m.shape)]));
}

describe('the EC2 registry', () => {
  it("every member of an entry has its type in MEMBERS; kmsvol's own members (LOCAL_MEMBERS) only in an entry's local form", () => {
    for (const op of OPS) {
      expect({ op, unknown: memberNames(operationOf(op)).filter((m) => !MEMBERS[m]) }).toEqual({ op, unknown: [] });
      expect({ op, unknown: memberNames(operationOf(op, true)).filter((m) => !MEMBERS[m] && !LOCAL_MEMBERS[m]) }).toEqual({ op, unknown: [] });
    }
  });

  it("the endpoint decodes what botocore's EC2 serializer sends for every member of every operation, into the same request", () => {
    const requests = Object.fromEntries(
      OPS.map((op) => [op, { ...Object.fromEntries(memberNames(operationOf(op)).map((m) => [m, sample(m, memberSpec(m).shape)])), DryRun: true }]),
    );
    const bodies = python(
      `import json, sys
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.serialize import create_serializer
model = ServiceModel(Loader().load_service_model('ec2', 'service-2'))
s = create_serializer('ec2')
print(json.dumps({op: s.serialize_to_request(p, model.operation_model(op))['body'] for op, p in json.load(sys.stdin).items()}))`,
      requests,
    ) as Record<string, Record<string, string>>;
    for (const op of OPS) {
      const { Action, Version, ...params } = bodies[op]!;
      expect([Action, Version]).toEqual([op, '2016-11-15']);
      const p = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
      expect({ op, req: decodeRequest(INPUTS[op]!, p) }).toEqual({ op, req: requests[op] });
    }
  });

  it("every option of `kmsvol ec2 <command>` is one the AWS CLI has for that command (its own argument table), but kmsvol's own; the required ones are the AWS CLI's", () => {
    const ours = Object.fromEntries(
      OPS.map((op) => {
        const cmd = addMemberOptions(new Command(), operationOf(op, true));
        const local = memberNames(operationOf(op, true)).filter((m) => LOCAL_MEMBERS[m]);
        const aliases = Object.values(operationOf(op, true).aliases ?? {});
        const flags = cmd.options
          .map((o) => o.long!.slice(2))
          .filter((f) => !local.some((m) => f === kebab(m) || f === `no-${kebab(m)}`) && !aliases.includes(`--${f}`));
        return [kebab(op), flags];
      }),
    );
    const theirs = python(
      `import json, sys
from awscli.clidriver import create_clidriver
table = create_clidriver()._get_command_table()['ec2']._get_command_table()
print(json.dumps({c: {n: getattr(a, 'required', False) for n, a in table[c].arg_table.items()} for c in json.load(sys.stdin)}))`,
      Object.keys(ours),
    ) as Record<string, Record<string, boolean>>;
    for (const [cmd, flags] of Object.entries(ours)) expect({ cmd, notAws: flags.filter((f) => !(f in theirs[cmd]!)) }).toEqual({ cmd, notAws: [] });
    // What the AWS CLI requires, kmsvol's CLI requires too, but for what kmsvol fills in (the entry's defaults) and its own attach (a directory, on this host).
    for (const op of OPS) {
      const local = operationOf(op, true);
      const waived = [...Object.keys(operationOf(op).defaults ?? {}), ...(local !== operationOf(op) ? requiredMembers(operationOf(op)) : [])];
      const aws = Object.entries(theirs[kebab(op)]!)
        .filter(([, required]) => required)
        .map(([f]) => f);
      const expected = aws.filter((f) => !waived.some((m) => kebab(m) === f));
      expect({ op, required: requiredMembers(local).map(kebab) }).toEqual({ op, required: expect.arrayContaining(expected) });
      expect({
        op,
        extra: requiredMembers(local)
          .map(kebab)
          .filter((f) => !aws.includes(f)),
      }).toEqual({ op, extra: [] });
    }
  });

  it('the CLI reads its options into the request by the members’ types: integers, booleans both ways, lists, and shorthand structures', () => {
    const op = operationOf('CreateVolume', true);
    const cmd = addMemberOptions(new Command(), op).parse(
      ['--size', '3', '--no-encrypted', '--tag-specifications', 'ResourceType=volume,Tags=[{Key=a,Value=b},{Key=c}]', '--dry-run'],
      { from: 'user' },
    );
    expect(requestOf(op, cmd.opts())).toEqual({
      Size: 3,
      Encrypted: false,
      TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'a', Value: 'b' }, { Key: 'c' }] }],
      DryRun: true,
    });
    const describe = operationOf('DescribeVolumes', true);
    const d = addMemberOptions(new Command(), describe).parse(['--volume-id', 'vol-1', 'vol-2', '--filters', 'Name=status,Values=available'], { from: 'user' });
    expect(requestOf(describe, d.opts())).toEqual({ VolumeIds: ['vol-1', 'vol-2'], Filters: [{ Name: 'status', Values: ['available'] }] });
    expect(() => requestOf(op, addMemberOptions(new Command(), op).parse(['--size', 'x'], { from: 'user' }).opts())).toThrow(
      'Invalid value for --size: x is not an integer.',
    );
  });

  it('a required member missing from the options and from --cli-input is refused with the AWS CLI’s words; the local attach needs only --volume-id', () => {
    expect(() => refuseMissing(operationOf('CreateTags', true), { Resources: ['vol-1'] })).toThrow('the following arguments are required: --tags');
    expect(() => refuseMissing(operationOf('AttachVolume'), {})).toThrow('the following arguments are required: --device, --instance-id, --volume-id');
    expect(() => refuseMissing(operationOf('AttachVolume', true), {})).toThrow('the following arguments are required: --volume-id');
  });
});

describe('the EC2 codec', () => {
  /** A call whose context must never be built: what it checks comes before the control plane. */
  const call = (params: Record<string, string>) =>
    ({
      params: new URLSearchParams(params),
      requestId: 'r-1',
      ec2: () => {
        throw new Error('the context was asked for');
      },
    }) as unknown as ServiceCall;

  it('an unknown action, a wrong version and an unknown parameter are refused in EC2’s error document before any context is built', async () => {
    const unknown = await ec2Service.handle(call({ Action: 'RunInstances' }));
    expect([unknown.status, String(unknown.body)]).toEqual([400, expect.stringContaining('<Code>InvalidAction</Code>')]);
    const version = await ec2Service.handle(call({ Action: 'DescribeVolumes', Version: '2014-01-01' }));
    expect(String(version.body)).toContain('Version 2014-01-01 is not supported');
    const param = await ec2Service.handle(call({ Action: 'DescribeVolumes', Bogus: '1' }));
    expect(String(param.body)).toContain('<Message>The parameter Bogus is not recognized.</Message>');
  });
});
