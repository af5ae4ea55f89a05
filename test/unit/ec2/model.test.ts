import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Shape } from '../../../src/ec2/members.js';
import { MEMBERS } from '../../../src/ec2/members.js';
import type { Ec2Operation } from '../../../src/ec2/operation.js';
import { memberNames, requiredMembers } from '../../../src/ec2/operation.js';
import { OPERATIONS } from '../../../src/ec2/operations.js';
import { LOCATION } from '../../../src/server/ec2/protocol.js';

/**
 * The EC2 registry (src/ec2/operations.ts, src/ec2/members.ts) against AWS's
 * own model: botocore's EC2 service-2.json and paginators-1.json, from
 * Debian's python3-botocore (scripts/ensure-system-deps.sh). The operation
 * names, every member's name, type and Query wire name, the required
 * members, the output members and the paginators must be AWS's.
 */
const DIR = '/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15';
const model = JSON.parse(fs.readFileSync(`${DIR}/service-2.json`, 'utf8'));
const paginators = JSON.parse(fs.readFileSync(`${DIR}/paginators-1.json`, 'utf8')).pagination;
const OPS = Object.entries(OPERATIONS) as [string, Ec2Operation][];

interface ModelMember {
  shape: string;
  locationName?: string;
  queryName?: string;
}
interface ModelShape {
  type: string;
  members?: Record<string, ModelMember>;
  member?: ModelMember;
  required?: string[];
}
const shapeOf = (name: string): ModelShape => model.shapes[name];
const inputOf = (op: string): ModelShape => shapeOf(model.operations[op].input.shape);
const outputOf = (op: string): ModelShape | undefined => (model.operations[op].output ? shapeOf(model.operations[op].output.shape) : undefined);

/** The Query wire name botocore's ec2 serializer uses: queryName, else locationName capitalized, else the member name. */
const wireOf = (name: string, m: ModelMember) => m.queryName ?? (m.locationName ? m.locationName[0]!.toUpperCase() + m.locationName.slice(1) : name);

/** Where our shape differs from the model's member (its type, its wire name, recursively); none: []. */
function differences(path: string, ours: { shape: Shape; wire?: string }, name: string, theirs: ModelMember): string[] {
  const out: string[] = [];
  const wire = ours.wire ?? name;
  if (wire !== wireOf(name, theirs)) out.push(`${path}: wire name ${wire}, model ${wireOf(name, theirs)}`);
  out.push(...shapeDifferences(path, ours.shape, shapeOf(theirs.shape)));
  return out;
}

function shapeDifferences(path: string, ours: Shape, theirs: ModelShape): string[] {
  if (typeof ours === 'string') return ours === theirs.type ? [] : [`${path}: ${ours}, model ${theirs.type}`];
  if ('list' in ours)
    return theirs.type === 'list' ? shapeDifferences(`${path}[]`, ours.list, shapeOf(theirs.member!.shape)) : [`${path}: list, model ${theirs.type}`];
  if (theirs.type !== 'structure') return [`${path}: structure, model ${theirs.type}`];
  return Object.entries(ours.struct).flatMap(([k, m]) =>
    theirs.members?.[k] ? differences(`${path}.${k}`, m, k, theirs.members[k]!) : [`${path}.${k}: not in the model`],
  );
}

describe('the EC2 registry against botocore’s EC2 model', () => {
  it('every operation is one of the model’s, and its command is the AWS CLI’s name for it (botocore’s xform_name)', () => {
    for (const [op] of OPS) expect(model.operations[op], op).toBeDefined();
    const py = `import json, sys\nfrom botocore import xform_name\nprint(json.dumps([xform_name(o).replace('_', '-') for o in json.load(sys.stdin)]))`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify(OPS.map(([op]) => op)) });
    const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
    expect(JSON.parse(r.stdout.toString())).toEqual(OPS.map(([op]) => kebab(op)));
  });

  it('every member an operation takes is in its input with the same type and Query wire name, down to the structures’ members', () => {
    const found = OPS.flatMap(([op, entry]) =>
      memberNames(entry).flatMap((m) => {
        const theirs = inputOf(op).members?.[m];
        if (!theirs) return [`${op}.${m}: not in the model`];
        if (!MEMBERS[m]) return [`${op}.${m}: not in MEMBERS`];
        return differences(`${op}.${m}`, MEMBERS[m]!, m, theirs);
      }),
    );
    expect(found).toEqual([]);
  });

  it('every operation has DryRun in the model (the codec and the CLI add it to every one)', () => {
    expect(OPS.filter(([op]) => inputOf(op).members?.DryRun?.shape === undefined).map(([op]) => op)).toEqual([]);
  });

  it('every member the model requires is taken, required here or filled in by a stated default; nothing is required here that AWS does not require', () => {
    for (const [op, entry] of OPS) {
      const required = inputOf(op).required ?? [];
      const ours = requiredMembers(entry);
      expect({ op, missing: required.filter((m) => !memberNames(entry).includes(m)) }).toEqual({ op, missing: [] });
      expect({ op, neither: required.filter((m) => !ours.includes(m) && !entry.defaults?.[m]) }).toEqual({ op, neither: [] });
      expect({ op, extra: ours.filter((m) => !required.includes(m)) }).toEqual({ op, extra: [] });
    }
  });

  it('the output members are the model’s (none where the model has no output), and the paged list is its paginator’s', () => {
    for (const [op, entry] of OPS) {
      const out = outputOf(op);
      if (entry.output === null) expect({ op, output: out }).toEqual({ op, output: undefined });
      else expect({ op, unknown: entry.output.filter((m) => !out?.members?.[m] && !(entry.local && m === 'LoopDevice')) }).toEqual({ op, unknown: [] });
      const p = paginators[op];
      expect({ op, pages: entry.pages }).toEqual({ op, pages: p?.result_key });
      if (p) expect([p.input_token, p.output_token, p.limit_key]).toEqual(['NextToken', 'NextToken', 'MaxResults']);
    }
  });

  it('every element name the codec writes (its table and the entries’ renames) is a locationName the model gives that member in an output kmsvol answers', () => {
    const pairs = new Set<string>();
    const seen = new Set<string>();
    const walk = (s: ModelShape) => {
      for (const [k, m] of Object.entries(s.members ?? {})) {
        if (m.locationName) pairs.add(`${k}=${m.locationName}`);
        const next = shapeOf(m.shape);
        const key = m.shape;
        if (seen.has(key)) continue;
        seen.add(key);
        if (next.type === 'structure') walk(next);
        if (next.type === 'list' && shapeOf(next.member!.shape).type === 'structure') walk(shapeOf(next.member!.shape));
      }
    };
    for (const [op] of OPS) {
      const out = outputOf(op);
      if (out) walk(out);
    }
    const renames = [...Object.entries(LOCATION), ...OPS.flatMap(([, e]) => Object.entries(e.rename ?? {}))];
    expect(renames.filter(([k, v]) => !pairs.has(`${k}=${v}`))).toEqual([]);
  });
});
