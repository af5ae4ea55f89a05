import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { Endpoint } from '../helpers/ec2-endpoint.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';

/**
 * A role's MaxSessionDuration, as IAM has it: `kmsvol iam create-role
 * --max-session-duration` and `update-role` take 3,600-43,200 s (IAM's
 * ValidationError outside), the role shows it, and STS AssumeRole through the
 * AWS CLI grants a session up to it and refuses one beyond it. A role made
 * without one keeps AWS's default, 1 hour.
 */
const stops: (() => void)[] = [];
/** One home for the file (tempHome's is removed after each test, under the endpoint's feet), removed after the last test. */
function fileHome(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  stops.unshift(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
let ep: Endpoint;
let home: string;
const trust = (account: string) =>
  JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' }] });
const ACCOUNT = '000000000000';

beforeAll(async () => {
  home = fileHome('kmsvol-role-duration-');
  ep = await startEndpoint(home, 'us-east-1', (fn) => stops.push(fn));
});
afterAll(() => {
  for (const s of stops.reverse()) s();
});

function assume(role: string, seconds: number) {
  const r = spawnSync(
    'aws',
    ['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/${role}`, '--role-session-name', 'sess', '--duration-seconds', String(seconds)],
    { env: { ...process.env, ...ep.env }, encoding: 'utf8' },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("a role's MaxSessionDuration", () => {
  it('create-role --max-session-duration 7200: shown on the role; AssumeRole grants 7,200 s and refuses 7,201 s', () => {
    const r = kmsvol(home, ['iam', 'create-role', '--role-name', 'long', '--assume-role-policy-document', trust(ACCOUNT), '--max-session-duration', '7200']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.Role.MaxSessionDuration).toBe(7200);
    const ok = assume('long', 7200);
    expect(ok.code, ok.stderr).toBe(0);
    const over = assume('long', 7201);
    expect(over.code).not.toBe(0);
    expect(over.stderr).toContain(
      '(ValidationError) when calling the AssumeRole operation: The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
  });

  it('a role made without one has 3,600 s; update-role --max-session-duration 43200 lets 43,200 s through', () => {
    const r = kmsvol(home, ['iam', 'create-role', '--role-name', 'plain', '--assume-role-policy-document', trust(ACCOUNT)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.Role.MaxSessionDuration).toBe(3600);
    const over = assume('plain', 3601);
    expect(over.stderr, over.stderr).toContain('exceeds the MaxSessionDuration');
    const u = kmsvol(home, ['iam', 'update-role', '--role-name', 'plain', '--max-session-duration', '43200']);
    expect(u.code, u.stderr).toBe(0);
    const ok = assume('plain', 43200);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("outside 3,600-43,200 s: IAM's ValidationError, exit 254", () => {
    for (const [v, bound] of [
      ['3599', 'greater than or equal to 3600'],
      ['43201', 'less than or equal to 43200'],
    ] as const) {
      const r = kmsvol(home, ['iam', 'create-role', '--role-name', `bad${v}`, '--assume-role-policy-document', trust(ACCOUNT), '--max-session-duration', v]);
      expect(r.code).toBe(254);
      expect(r.stderr).toContain(
        `(ValidationError) when calling the CreateRole operation: 1 validation error detected: Value '${v}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value ${bound}`,
      );
    }
    const u = kmsvol(home, ['iam', 'update-role', '--role-name', 'long', '--max-session-duration', '60']);
    expect(u.code).toBe(254);
    expect(u.stderr).toContain("Value '60' at 'maxSessionDuration'");
    const missing = kmsvol(home, ['iam', 'update-role', '--role-name', 'nosuch', '--max-session-duration', '3600']);
    expect(missing.code).toBe(254);
    expect(missing.stderr).toContain('(NoSuchEntity)');
  });
});
