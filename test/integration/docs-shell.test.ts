import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, kmsvol, ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { releaseLoopsUnder } from '../helpers/volumes.js';

/**
 * Every ```sh block of docs/*.md, and the README's `kmsvol serve &` block,
 * runs in order as written on a fresh home, with `kmsvol` on the PATH, or is
 * listed in BLOCKS with the reason it cannot run here. A doc's blocks run in
 * one shell, in a network namespace of their own (the docs use fixed ports),
 * and each command must succeed, except one whose comment says it fails; the
 * outputs the docs show are checked after.
 */
type Plan = 'run' | { skip: string };
const BLOCKS: Record<string, Plan[]> = {
  'docs/architecture.md': [],
  'docs/cli.md': [],
  'docs/format.md': [],
  'docs/threat-model.md': [],
  'docs/xks-proxy.md': [],
  'docs/luks.md': [
    {
      skip: "installs the token plugin into the machine's cryptsetup directory; test/integration/luks-token.test.ts installs it the same way (test/helpers/luks.ts) and must be the only one doing so",
    },
    { skip: 'needs the machine-wide token plugin (block 0); luks-token.test.ts opens, checks and dumps images with stock cryptsetup as shown' },
    { skip: 'needs the machine-wide token plugin (block 0); luks-token.test.ts adds a passphrase keyslot through the token as shown' },
  ],
  'docs/ebs.md': [],
  'docs/ebs-direct-apis.md': [
    'run',
    'run',
    { skip: 'two homes, one on another host (host-a): test/interop/ebs-transfer.test.ts runs export-snapshot between two homes' },
    { skip: "needs host A's endpoint and credentials: test/interop/ebs-transfer.test.ts imports through a second kmsvol serve" },
    { skip: 'needs host A (an AWS profile for it): test/interop/ebs-transfer.test.ts imports through a second kmsvol serve' },
  ],
  'docs/iam.md': ['run'],
  'docs/custom-key-stores.md': ['run', 'run', { skip: 'a vendor PKCS#11 module (/opt/vendor/lib/libvendorpkcs11.so): no such HSM on this machine' }, 'run'],
};

const shBlocks = (doc: string) => [...fs.readFileSync(path.join(ROOT, doc), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** Commands, continuation lines joined; a command whose comment says "fails" must fail. */
function steps(block: string): { command: string; fails: boolean }[] {
  const out: { command: string; fails: boolean }[] = [];
  const lines = block.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    while (line.endsWith('\\')) line = `${line}\n${lines[++i]}`;
    out.push({ command: line, fails: /#\s*fails\b/.test(line) });
  }
  return out;
}

/** Run the steps in one bash, in a network namespace of its own; each step's stdout, stderr and status are kept. */
function run(all: { command: string; fails: boolean }[], dir: string, after = '') {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(BIN, path.join(bin, 'kmsvol'));
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const script = [
    'ip link set lo up',
    // The test's own line: background jobs the docs start end with the shell.
    "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
    ...all.map(
      (s, n) =>
        `{\n${s.command}\n} > "$OUT/${n}.out" 2> "$OUT/${n}.err"; echo $? > "$OUT/${n}.rc"; [ "$(cat "$OUT/${n}.rc")" ${s.fails ? '!=' : '='} 0 ] || exit 99`,
    ),
    after,
  ].join('\n');
  const { KMSVOL_HOME: _h, KMSVOL_REGION: _r, AWS_REGION: _a, AWS_DEFAULT_REGION: _d, AWS_ACCESS_KEY_ID: _k, AWS_SECRET_ACCESS_KEY: _s, ...env } = process.env;
  const r = spawnSync('unshare', ['--net', 'bash', '--noprofile', '--norc', '-c', script], {
    cwd: dir,
    env: {
      ...env,
      OUT: out,
      HOME: dir,
      TMPDIR: dir,
      PATH: `${bin}:${process.env.PATH}`,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    },
    encoding: 'utf8',
    timeout: 240_000,
  });
  const ran = fs.readdirSync(out).filter((f) => f.endsWith('.rc')).length;
  const last = ran - 1;
  const read = (n: number, ext: string) => (fs.existsSync(path.join(out, `${n}.${ext}`)) ? fs.readFileSync(path.join(out, `${n}.${ext}`), 'utf8') : '');
  expect(r.status, `step ${last}: ${all[last]?.command}\n${read(last, 'out')}${read(last, 'err')}${r.stderr}`).toBe(0);
  expect(ran).toBe(all.length);
  return (command: RegExp) => {
    const n = all.findIndex((s) => command.test(s.command));
    expect(n, String(command)).toBeGreaterThanOrEqual(0);
    return read(n, 'out') + read(n, 'err');
  };
}

/** Force-detach whatever the docs attached in homes under `dir`, then release loop devices left on its images. */
function detachUnder(dir: string) {
  onCleanup(() => {
    for (const home of fs.readdirSync(dir).map((d) => path.join(dir, d)))
      if (fs.existsSync(path.join(home, 'volumes')))
        for (const img of fs.readdirSync(path.join(home, 'volumes')))
          kmsvol(home, ['ec2', 'detach-volume', '--force', '--volume-id', img.replace(/\.img$/, '')]);
    releaseLoopsUnder(dir);
  });
}

describe('the docs’ shell blocks', () => {
  it('every ```sh block of docs/*.md is run here or listed with the reason it is not', () => {
    const docs = fs
      .readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`);
    expect(Object.keys(BLOCKS).sort()).toEqual(docs.sort());
    for (const doc of docs) expect({ doc, blocks: shBlocks(doc).length }).toEqual({ doc, blocks: BLOCKS[doc]!.length });
  });

  it('docs/custom-key-stores.md: the CloudHSM setup and the pkcs11-tool check, then the XKS setup, in order, on a fresh home', () => {
    const dir = tempHome('kmsvol-docs-cks-');
    detachUnder(dir);
    const doc = 'docs/custom-key-stores.md';
    const all = shBlocks(doc).flatMap((b, i) => (BLOCKS[doc]![i] === 'run' ? steps(b) : []));
    // The test's own check after the blocks: the last key made is in the external key store, and usable.
    const shown = run(
      all,
      dir,
      `kmsvol kms describe-key --key-id "$KEY" --query 'KeyMetadata.[Origin,KeyState]' --output text > "$OUT/check" 2>&1 || exit 98
kmsvol kms encrypt --key-id "$KEY" --plaintext aGk= --query KeyId --output text >> "$OUT/check" 2>&1 || exit 97`,
    );
    expect(fs.readFileSync(path.join(dir, 'out', 'check'), 'utf8')).toMatch(
      /^EXTERNAL_KEY_STORE\tEnabled\narn:aws:kms:us-east-1:000000000000:key\/[0-9a-f-]{36}\n$/,
    );
    expect(shown(/describe-custom-key-stores/)).toContain('"ConnectionState": "CONNECTED"');
    expect(shown(/--list-objects/)).toMatch(
      /Secret Key Object; AES length 32[\s\S]*label:\s+[0-9a-f-]{36}[\s\S]*Access:\s+sensitive, always sensitive, never extractable, local/,
    );
    expect(shown(/--read-object/)).toContain('CKR_ATTRIBUTE_SENSITIVE');
    expect(shown(/attach-volume/)).toMatch(/"LoopDevice": "\/dev\/loop\d+"/);
  });

  it('docs/ebs-direct-apis.md: an endpoint, then a snapshot written, read back and a child compared through `aws ebs`, on a fresh home', () => {
    const dir = tempHome('kmsvol-docs-ebs-');
    const doc = 'docs/ebs-direct-apis.md';
    const all = [{ command: 'export KMSVOL_HOME=$(mktemp -d)', fails: false }, ...shBlocks(doc).flatMap((b, i) => (BLOCKS[doc]![i] === 'run' ? steps(b) : []))];
    const shown = run(all, dir);
    expect(shown(/complete-snapshot --snapshot-id \$snap /)).toContain('"Status": "completed"');
    expect(shown(/list-changed-blocks/)).toMatch(/"BlockIndex": 7\b/);
    expect(shown(/list-changed-blocks/)).not.toMatch(/"BlockIndex": 0\b/);
  });

  it('docs/iam.md: a user with no permissions, its access key, and an inline policy, on a fresh home', () => {
    const dir = tempHome('kmsvol-docs-iam-');
    const doc = 'docs/iam.md';
    const all = [{ command: 'export KMSVOL_HOME=$(mktemp -d)', fails: false }, ...steps(shBlocks(doc)[0]!)];
    const shown = run(all, dir);
    expect(shown(/create-user/)).toContain('"UserName": "carol"');
    expect(shown(/create-access-key/)).toContain('"UserName": "carol"');
  });

  it("the README's `kmsvol serve &` block: the endpoint answers the AWS CLI with the credentials it exported", () => {
    const dir = tempHome('kmsvol-docs-serve-');
    const block = shBlocks('README.md').find((b) => b.startsWith('kmsvol serve &'));
    expect(block, 'README has a block starting kmsvol serve &').toBeDefined();
    const all = [{ command: 'export KMSVOL_HOME=$(mktemp -d)', fails: false }, ...steps(block!)];
    // The test's own check after the block: once it listens, the AWS CLI's call is the user's.
    const shown = run(
      all,
      dir,
      `until curl -s -o /dev/null http://127.0.0.1:4599/; do sleep 0.1; done
aws --endpoint-url http://127.0.0.1:4599 sts get-caller-identity --query Arn --output text > "$OUT/check" 2>&1 || exit 98`,
    );
    expect(shown(/create-access-key/)).toBe('');
    expect(fs.readFileSync(path.join(dir, 'out', 'check'), 'utf8').trim()).toBe('arn:aws:iam::000000000000:user/me');
  });
});
