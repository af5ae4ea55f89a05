import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { releaseLoopsUnder } from '../helpers/volumes.js';

/**
 * The README's KMS shell blocks ("The KMS on its own" and "Access control"),
 * run in order as written, in one shell, on a fresh home, with `kmsvol` on
 * the PATH as `npm start` puts it there. Each output the README shows is
 * checked: a `# An error occurred (…) …   (exit N)` line under a command is
 * that command's stderr and exit code (… matches anything), and a trailing
 * `# SomethingException` says the command fails with it; every other
 * command must succeed. The volume block (root, a loop device, /mnt) runs
 * in a mount namespace of its own, so its mount on /mnt is the test's only.
 * The "Point your AWS tools" blocks run in interop/ec2-readme.test.ts.
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

/** Run steps in order in one shell (in `wrap`, e.g. a mount namespace); fails at the first that does not do what the README shows. */
function run(all: Step[], dir: string, wrap: string[] = []) {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(path.join(ROOT, 'bin/kmsvol.js'), path.join(bin, 'kmsvol'));
  // Each step's stderr and exit code go to files the test reads after it.
  const script = all
    .map((s, n) => `{\n${s.command}\n} 2> "$OUT/${n}.err"; echo $? > "$OUT/${n}.rc"; [ "$(cat "$OUT/${n}.rc")" = ${s.expect?.code ?? 0} ] || exit 99`)
    .join('\n');
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const { KMSVOL_HOME: _h, KMSVOL_REGION: _r, AWS_REGION: _a, AWS_DEFAULT_REGION: _d, ...env } = process.env;
  const r = spawnSync(wrap[0] ?? 'bash', [...wrap.slice(1), ...(wrap.length ? ['bash'] : []), '--noprofile', '--norc', '-c', script], {
    cwd: dir,
    env: { ...env, OUT: out, HOME: dir, TMPDIR: dir, PATH: `${bin}:${process.env.PATH}`, KMSVOL_HOME: path.join(dir, 'home') },
    encoding: 'utf8',
    timeout: 300_000,
  });
  const ran = fs.readdirSync(out).filter((f) => f.endsWith('.rc')).length;
  const last = ran - 1;
  const why = `step ${last}: ${all[last]?.command}\n${fs.existsSync(path.join(out, `${last}.err`)) ? fs.readFileSync(path.join(out, `${last}.err`), 'utf8') : ''}${r.stderr}`;
  expect(r.status, why).toBe(0);
  expect(ran).toBe(all.length);
  all.forEach((s, n) => {
    const err = fs.readFileSync(path.join(out, `${n}.err`), 'utf8');
    if (s.expect?.error) expect(err, s.command).toMatch(s.expect.error);
    if (s.expect?.name) expect(err, s.command).toContain(`(${s.expect.name})`);
  });
}

describe('the README shell blocks', () => {
  it('the KMS blocks run in order on a fresh home and show what the README says', () => {
    const dir = tempHome('kmsvol-readme-');
    const all = [...steps(blockAfter('The KMS on its own:')), ...steps(blockAfter('Access control and your own key material'))];
    expect(all.length).toBeGreaterThanOrEqual(18);
    run(all, dir);
  });

  it('the volume block runs as written (in its own mount namespace) and shows the DisabledException', () => {
    const dir = tempHome('kmsvol-readme-');
    onCleanup(() => {
      // A step that failed may leave a card: detach it by force, then release any loop device still on the home's images.
      for (const home of fs.readdirSync(dir).map((d) => path.join(dir, d)))
        if (fs.existsSync(path.join(home, 'volumes')))
          for (const img of fs.readdirSync(path.join(home, 'volumes')))
            kmsvol(home, ['ec2', 'detach-volume', '--force', '--volume-id', img.replace(/\.img$/, '')]);
      releaseLoopsUnder(dir);
    });
    const all = steps(blockAfter('The CLI mirrors the AWS CLI'));
    expect(all.length).toBeGreaterThanOrEqual(10);
    expect(all.find((s) => s.command.startsWith('kmsvol ec2 attach-volume --volume-id "$VOL"'))?.expect?.error).toBeDefined();
    run(all, dir, ['unshare', '--mount', '--propagation', 'private']);
  });
});
