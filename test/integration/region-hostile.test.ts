import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: a region string is a name such as us-east-1, wherever it comes
 * from (--region, KMSVOL_REGION, AWS_REGION, ~/.aws/config). The AWS CLI
 * refuses anything else ("Provided region_name '…' doesn't match a supported
 * format."); `kmsvol serve` refuses it in a credential scope and in --region.
 * The CLI took it as it was and wrote it into ARNs and zones, so a region
 * with a colon named another account: arn:aws:kms:us-east-1:999999999999:key/evil:000000000000:key/….
 */
const EVIL = 'us-east-1:999999999999:key/evil';

describe('a malformed region is refused before it reaches an ARN', () => {
  for (const [how, args, env] of [
    ['--region', ['--region', EVIL], {}],
    ['AWS_REGION', [], { AWS_REGION: EVIL, KMSVOL_REGION: '' }],
    ['~/.aws/config', [], { AWS_CONFIG_FILE: '', KMSVOL_REGION: '', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: '' }],
  ] as const) {
    it(`from ${how}: kms create-key exits with an error naming the region, and makes no key`, () => {
      const home = tempHome('kmsvol-region-');
      const e: Record<string, string> = { ...env };
      if (how === '~/.aws/config') {
        const file = path.join(tempHome('kmsvol-awsconfig-'), 'config');
        fs.writeFileSync(file, `[default]\nregion = ${EVIL}\n`);
        e.AWS_CONFIG_FILE = file;
      }
      const r = kmsvol(home, [...args, 'kms', 'create-key', '--query', 'KeyMetadata.Arn', '--output', 'text'], e);
      expect(r.stdout).not.toContain('999999999999');
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toContain(EVIL);
      const listed = kmsvol(home, ['--region', 'us-east-1', 'kms', 'list-keys']);
      expect(listed.json?.Keys ?? []).toEqual([]);
    });
  }
});
