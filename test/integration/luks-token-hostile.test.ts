import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * A hostile kmsvol token (docs/luks.md, "Which KMS the plugin asks, and what
 * it trusts"): the token is in the image header, which whoever supplies the
 * image writes. The helper the plugin runs (`kmsvol luks token-unwrap`, as
 * root under cryptsetup) must not let the token's `kms.home` hint change
 * anything outside a kmsvol home: no chmod of the named directory, no root
 * key, KMS store, audit log or reserve file planted in it.
 */

/** The helper as the plugin runs it: the token on stdin, stdout a pipe, no KMSVOL_* in the environment. */
function tokenUnwrap(token: object, home: string) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home };
  return spawnSync(process.execPath, [BIN, 'luks', 'token-unwrap'], { input: JSON.stringify(token), env, timeout: 60_000 });
}

describe('a hostile token cannot make the helper change files outside a kmsvol home', () => {
  it('kms.home naming a root-owned 0755 directory (as /etc or / would be) leaves its mode and its contents as they were', () => {
    const victim = tempHome('kmsvol-victim-');
    fs.chmodSync(victim, 0o755);
    fs.writeFileSync(path.join(victim, 'passwd'), 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
    const token = {
      type: 'kmsvol',
      version: 1,
      keyslots: ['0'],
      key_arn: 'arn:aws:kms:local:000000000000:key/00000000-0000-0000-0000-000000000000',
      secret_blob: Buffer.alloc(64, 1).toString('base64'),
      encryption_context: {},
      kms: { home: victim },
    };
    const r = tokenUnwrap(token, tempHome('kmsvol-caller-'));
    expect(r.status).not.toBe(0);
    expect(r.stdout.length).toBe(0);
    expect((fs.statSync(victim).mode & 0o777).toString(8)).toBe('755');
    expect(fs.readdirSync(victim).sort()).toEqual(['passwd']);
  });
});
