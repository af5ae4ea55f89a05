import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsCliRegion } from '../../src/region.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: kmsvol says it works in the region the AWS CLI would use; here
 * the reference is botocore itself (Debian's python3-botocore, what
 * /usr/bin/aws runs), reading the same config file. Today these differ:
 * botocore reads the config with Python's configparser, so option names are
 * case-insensitive (`Region = …`), `:` is a delimiter as `=` is, an indented
 * line continues the value before it, and a nested block (`s3 =` then
 * indented lines) belongs to that setting, not to the profile. kmsvol reads
 * each line alone, so the user's AWS tools and kmsvol work in different
 * regions (keys made by one are not found by the other).
 */
function botocoreRegion(file: string, profile?: string): string | undefined {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.dirname(file), AWS_CONFIG_FILE: file };
  if (profile) env.AWS_PROFILE = profile;
  const r = spawnSync('/usr/bin/python3', ['-c', "import botocore.session as s; print(s.Session().get_config_variable('region') or '')"], {
    env,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim() || undefined;
}

const CASES: [string, string][] = [
  // Agrees today: the harness can pass.
  ['the plain form', '[default]\nregion = eu-west-3\n[profile x]\nregion = us-west-2\n'],
  ['an option name in capitals', '[default]\nRegion = eu-west-3\n'],
  ['":" as the delimiter', '[default]\nregion: eu-west-3\n'],
  ['a nested s3 block', '[default]\ns3 =\n  region = eu-west-3\n'],
  ['an indented continuation line', '[default]\noutput = json\n\tregion = eu-west-3\n'],
  ['no inline comments', '[default]\nregion = eu-west-3 # Paris\n'],
  ['a comment line inside a continued value', '[default]\noutput = json\n# note\n  region = eu-west-3\nregion = eu-west-1\n'],
  ['[DEFAULT] inherited by the profile', '[DEFAULT]\nregion = eu-west-3\n[default]\noutput = json\n'],
  ['[DEFAULT] without the profile', '[DEFAULT]\nregion = eu-west-3\n'],
  ['[profile default] after [default]', '[default]\nregion = eu-west-1\n[profile default]\nregion = eu-west-3\n'],
  ['an empty value', '[default]\nregion =\n'],
  ['CRLF line ends and a tab before the value', '[default]\r\nregion =\teu-west-3\r\n'],
];

/** Named profiles, read with AWS_PROFILE. */
const PROFILES: [string, string, string][] = [
  ['a quoted profile name', '[profile "my app"]\nregion = eu-west-3\n', 'my app'],
  ['extra blanks in the header', '[profile    x ]\nREGION:eu-west-3\n', 'x'],
  ['a section that only starts with "profile"', '[profiles x]\nregion = eu-west-3\n', 'x'],
];

describe('~/.aws/config: the region botocore reads', () => {
  for (const [what, text] of CASES) {
    it(`${what}: ${JSON.stringify(text)}`, () => {
      const file = path.join(tempHome('kmsvol-awsconfig-'), 'config');
      fs.writeFileSync(file, text);
      expect(awsCliRegion({ AWS_CONFIG_FILE: file, HOME: path.dirname(file) })).toBe(botocoreRegion(file));
    });
  }
  for (const [what, text, profile] of PROFILES) {
    it(`${what}: ${JSON.stringify(text)} (AWS_PROFILE=${profile})`, () => {
      const file = path.join(tempHome('kmsvol-awsconfig-'), 'config');
      fs.writeFileSync(file, text);
      expect(awsCliRegion({ AWS_CONFIG_FILE: file, HOME: path.dirname(file), AWS_PROFILE: profile })).toBe(botocoreRegion(file, profile));
    });
  }
});
