import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * The benchmark runner as a newcomer meets it: `npm run bench -- --help`
 * (bench/run.mjs) is usage on stdout, exit 0, where an unknown suite is a
 * usage error (252); the cycle suite removes the home it made in the
 * temporary directory, volume and all.
 */
describe('npm run bench', () => {
  it('--help and -h: usage on stdout, exit 0; an unknown suite: usage on stderr, exit 252', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), flag], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^usage: npm run bench -- <xts\|.*cycle.*> \[--json\]/);
    }
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), 'nosuch'], { encoding: 'utf8' });
    expect(bad.status).toBe(252);
    expect(bad.stderr).toContain('usage: npm run bench');
  });

  it('e2e --help: its usage, exit 0; an option it does not know, or --jobs without a job they need: exit 252 naming it, before anything runs', () => {
    const help = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), 'e2e', '--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^sudo npm run bench -- e2e \[--reps N\]/);
    expect(help.stdout).toContain('[--read-around-kb N]');
    const work = path.join(tempHome('kmsvol-bench-e2e-opt-'), 'work');
    // Each must be refused before anything runs; a bench that ran anyway is stopped at 30 s (SIGTERM: it cleans up).
    const refused = (args: string[], why: string) => {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), 'e2e', ...args, '--work', work], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, args.join(' ')).toBe(252);
      expect(r.stderr).toContain(why);
      expect(fs.existsSync(work)).toBe(false);
    };
    refused(['--rep', '3'], "Unknown option '--rep'");
    // A job without the one whose files it works on would measure fio laying its file out, from the cache.
    refused(['--jobs', 'seqRead,cpIn,cpOut'], 'e2e: --jobs: seqRead works on what seqWrite leaves; add seqWrite');
    // A setting that is not a number: the card would have taken its default, and the JSON said "off".
    refused(['--direct-write-kb', 'off'], 'e2e: --direct-write-kb takes a decimal number, not "off"');
  });

  it('cycle (one run) leaves no home in the temporary directory', () => {
    const tmp = tempHome('kmsvol-bench-tmp-');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), 'cycle', '--runs', '1', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: tmp },
      timeout: 240_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).rows).toHaveLength(3);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 300_000);
});
