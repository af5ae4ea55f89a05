import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * The README's KMS shell blocks ("The KMS on its own" and "Access control"),
 * run in order as written, in one shell, on a fresh home, with `kmsvol` on
 * the PATH as `npm start` puts it there. Each output the README shows is
 * checked: a `# An error occurred (…) …   (exit N)` line under a command is
 * that command's stderr and exit code (… matches anything), and a trailing
 * `# SomethingException` says the command fails with it; every other
 * command must succeed. The volume block before them needs root, a loop
 * device and /mnt: the TypeScript example (readme-example.test.ts) and the
 * AWS CLI example (interop/ec2-readme.test.ts) run that story.
 */
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The ```sh blocks that follow a paragraph starting with `lead`. */
function blockAfter(lead: string): string {
  const at = README.indexOf(`\n${lead}`);
  expect(at, lead).toBeGreaterThan(0);
  return /```sh\n([\s\S]*?)```/.exec(README.slice(at))![1]!;
}

interface Step {
  command: string;
  expect?: { error?: RegExp; name?: string; code: number };
}

/** Commands (continuation lines joined, here-documents kept whole) and what the README shows of each. */
function steps(block: string): Step[] {
  const out: Step[] = [];
  const lines = block.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.trim() === '') continue;
    const shown = /^# (An error occurred \(.*)\s+\(exit (\d+)\)$/.exec(line);
    if (shown) {
      const pattern = shown[1]!
        .trim()
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        .replace(/…/g, '.*');
      out.at(-1)!.expect = { error: new RegExp(pattern), code: Number(shown[2]) };
      continue;
    }
    if (line.startsWith('#')) continue;
    while (line.endsWith('\\')) line = `${line}\n${lines[++i]}`;
    const here = /<<'?(\w+)'?/.exec(line);
    if (here) while (lines[i] !== here[1]) line = `${line}\n${lines[++i]}`;
    const trailing = /\s#\s+(\w+Exception)\s*$/.exec(line);
    out.push({ command: line, ...(trailing ? { expect: { name: trailing[1]!, code: 254 } } : {}) });
  }
  return out;
}

describe('the README shell blocks', () => {
  it('run in order on a fresh home and show what the README says', () => {
    const dir = tempHome('kmsvol-readme-');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(path.join(ROOT, 'bin/kmsvol.js'), path.join(bin, 'kmsvol'));
    const all = [...steps(blockAfter('The KMS on its own:')), ...steps(blockAfter('Access control and your own key material'))];
    expect(all.length).toBeGreaterThanOrEqual(18);
    // One shell for the whole sequence: each step's stderr and exit code go to files the test reads after it.
    const script = all
      .map((s, n) => `{\n${s.command}\n} 2> "$OUT/${n}.err"; echo $? > "$OUT/${n}.rc"; [ "$(cat "$OUT/${n}.rc")" = ${s.expect?.code ?? 0} ] || exit 99`)
      .join('\n');
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const { KMSVOL_HOME: _h, KMSVOL_REGION: _r, AWS_REGION: _a, AWS_DEFAULT_REGION: _d, ...env } = process.env;
    const r = spawnSync('bash', ['--noprofile', '--norc', '-c', script], {
      cwd: dir,
      env: { ...env, OUT: out, HOME: dir, TMPDIR: dir, PATH: `${bin}:${process.env.PATH}`, KMSVOL_HOME: path.join(dir, 'home') },
      encoding: 'utf8',
      timeout: 300_000,
    });
    const ran = fs.readdirSync(out).filter((f) => f.endsWith('.rc')).length;
    const last = ran - 1;
    const why = `step ${last}: ${all[last]?.command}\n${fs.existsSync(path.join(out, `${last}.err`)) ? fs.readFileSync(path.join(out, `${last}.err`), 'utf8') : ''}`;
    expect(r.status, why).toBe(0);
    expect(ran).toBe(all.length);
    all.forEach((s, n) => {
      const err = fs.readFileSync(path.join(out, `${n}.err`), 'utf8');
      if (s.expect?.error) expect(err, s.command).toMatch(s.expect.error);
      if (s.expect?.name) expect(err, s.command).toContain(`(${s.expect.name})`);
    });
  });
});
