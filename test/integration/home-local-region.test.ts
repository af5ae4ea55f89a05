import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * A home made before kmsvol used AWS's regions keeps its keys in region
 * `local` (test/fixtures/home-v0). Under today's default region its keys are
 * not listed and its volumes' keys are not found; each CLI call that opens
 * such a home says so in one line on stderr, naming `--region local` and
 * KMSVOL_REGION=local (docs/cli.md), and leaves stdout as it was. The keys
 * are not moved: their ARNs are in the volumes' records and the
 * ciphertexts the user keeps.
 */
const FIXTURE = path.join(ROOT, 'test/fixtures/home-v0');
const meta = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'home.json'), 'utf8')) as { volumeId: string; keyId: string };
const HINT =
  "kmsvol: this home's keys are in region 'local' (made before kmsvol used AWS's regions), none in us-east-1: use them with --region local or KMSVOL_REGION=local";

function v0Home(): string {
  const home = tempHome('kmsvol-local-region-');
  for (const f of ['ec2.db', 'kms.db', 'root.key']) {
    fs.copyFileSync(path.join(FIXTURE, f), path.join(home, f));
    fs.chmodSync(path.join(home, f), 0o600);
  }
  return home;
}
const ENV = { AWS_REGION: '', AWS_DEFAULT_REGION: '', KMSVOL_REGION: '', AWS_CONFIG_FILE: '/dev/null' };

describe("a home whose keys are in region 'local'", () => {
  it('list-keys in the default region: the same empty answer on stdout, and one line on stderr saying where the keys are', () => {
    const r = kmsvol(v0Home(), ['kms', 'list-keys'], ENV);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ Keys: [] });
    expect(r.stderr.trim()).toBe(HINT);
  });

  it('with --region local or KMSVOL_REGION=local the keys are there and nothing is said', () => {
    const home = v0Home();
    for (const [args, env] of [
      [['--region', 'local'], ENV],
      [[], { ...ENV, KMSVOL_REGION: 'local' }],
    ] as const) {
      const r = kmsvol(home, ['kms', 'list-keys', ...args], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.Keys.map((k: { KeyId: string }) => k.KeyId)).toEqual([meta.keyId]);
      expect(r.stderr).toBe('');
    }
    const dry = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', meta.volumeId, '--dry-run', '--region', 'local'], ENV);
    expect(dry.stderr).toContain('DryRunOperation');
  });

  it('an EC2 call on the volume made under local says the same before its error', () => {
    const r = kmsvol(v0Home(), ['ec2', 'attach-volume', '--volume-id', meta.volumeId, '--dry-run'], ENV);
    expect(r.code).toBe(254);
    expect(r.stderr.split('\n')[0]).toBe(HINT);
  });

  it('a home with keys in the default region too, or none at all, is not told anything', () => {
    const home = v0Home();
    expect(kmsvol(home, ['kms', 'create-key'], ENV).code).toBe(0);
    expect(kmsvol(home, ['kms', 'list-keys'], ENV).stderr).toBe('');
    expect(kmsvol(tempHome('kmsvol-fresh-'), ['kms', 'list-keys'], ENV).stderr).toBe('');
  });
});
