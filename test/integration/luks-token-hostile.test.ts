import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
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

describe("a hostile token's kms.endpoint", () => {
  it("gets none of the caller's credentials: no access key id, no session token (root's ~/.aws/credentials under cryptsetup)", async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'AccessDeniedException', message: 'no' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const home = tempHome('kmsvol-caller-');
    fs.mkdirSync(path.join(home, '.aws'));
    fs.writeFileSync(
      path.join(home, '.aws/credentials'),
      '[default]\naws_access_key_id = AKIAROOTCALLER000001\naws_secret_access_key = rootsecret\naws_session_token = ROOT-SESSION-TOKEN\n',
      { mode: 0o600 },
    );
    const token = {
      type: 'kmsvol',
      version: 1,
      keyslots: ['0'],
      key_arn: 'arn:aws:kms:us-east-1:999999999999:key/00000000-0000-0000-0000-000000000000',
      secret_blob: Buffer.alloc(64, 1).toString('base64'),
      encryption_context: {},
      kms: { endpoint: `http://127.0.0.1:${port}` },
    };
    const child = spawn(process.execPath, [BIN, 'luks', 'token-unwrap'], { env: { PATH: process.env.PATH, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(JSON.stringify(token));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    server.close();
    expect(code).not.toBe(0);
    const sent = JSON.stringify(seen);
    expect(sent).not.toContain('AKIAROOTCALLER000001');
    expect(sent).not.toContain('ROOT-SESSION-TOKEN');
  });
});
