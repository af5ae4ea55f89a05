import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * The README's "Using kmsvol from your own tests", each example run as
 * written in a project of its own: vitest importing `kmsvol` (installed as
 * npm installs a local checkout: a link in node_modules), pytest with boto3
 * against `kmsvol serve`, and an AWS CLI shell script. `kmsvol` is on the
 * PATH as `npm start` puts it.
 */
function example(name: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example:${name} -->`);
  expect(at, `README has the ${name} example`).toBeGreaterThan(0);
  const body = readme.indexOf('\n', readme.indexOf('```', at)) + 1;
  return readme.slice(body, readme.indexOf('\n```', body) + 1);
}

/** A project directory with `kmsvol` on the PATH. */
function project(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempHome('kmsvol-own-tests-');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.symlinkSync(BIN, path.join(dir, 'bin', 'kmsvol'));
  const { KMSVOL_HOME: _h, AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...env } = process.env;
  return {
    dir,
    env: {
      ...env,
      PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    },
  };
}

describe('README: Using kmsvol from your own tests', () => {
  it('the vitest example passes in a project that installed kmsvol', () => {
    const { dir, env } = project();
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'kmsvol'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'my-app', type: 'module', private: true }));
    fs.mkdirSync(path.join(dir, 'test'));
    fs.writeFileSync(path.join(dir, 'test', 'kms.test.ts'), example('own-tests-vitest'));
    const r = spawnSync(path.join(ROOT, 'node_modules/.bin/vitest'), ['run', '--root', dir], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 passed/);
  }, 150_000);

  it('the pytest example passes against kmsvol serve', () => {
    const { dir, env } = project();
    fs.writeFileSync(path.join(dir, 'conftest.py'), example('own-tests-conftest'));
    fs.writeFileSync(path.join(dir, 'test_kms.py'), example('own-tests-pytest'));
    const r = spawnSync('/usr/bin/python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', dir], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 passed/);
  }, 150_000);

  it('the AWS CLI script runs and its last check holds', () => {
    const { dir, env } = project();
    // The test's own line: the endpoint stops even when a step fails.
    const script = `trap 'kill $SERVE_PID 2>/dev/null' EXIT\n${example('own-tests-aws-cli')}`;
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...env, TMPDIR: dir },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, 150_000);
});
