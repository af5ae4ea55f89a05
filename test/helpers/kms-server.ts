import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createAccessKey } from '../../src/kms/iam.js';
import { Kms } from '../../src/kms/kms.js';
import { BIN } from './cli.js';

/**
 * The test matrix's second leg: with KMSVOL_TEST_KMS=server, every volume
 * test home gets its own `kmsvol kms serve`, and every CLI call on that home
 * reaches the KMS through it (@aws-sdk/client-kms, SigV4). A call that sets
 * KMSVOL_NOW restarts the server with that clock, so time travel still works.
 */
export const serverMode = process.env.KMSVOL_TEST_KMS === 'server';

interface Running {
  pid: number;
  now: string | undefined;
  env: Record<string, string>;
}
const servers = new Map<string, Running>();

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function start(home: string, now: string | undefined): Running {
  let keys = JSON.parse(fs.existsSync(path.join(home, '.test-access-key')) ? fs.readFileSync(path.join(home, '.test-access-key'), 'utf8') : 'null');
  if (!keys) {
    const kms = Kms.open({ home, audit: false });
    keys = createAccessKey(kms.ctx, 'tester').AccessKey;
    kms.close();
    fs.writeFileSync(path.join(home, '.test-access-key'), JSON.stringify(keys), { mode: 0o600 });
  }
  const out = path.join(home, '.test-server.out');
  fs.writeFileSync(out, '');
  const fd = fs.openSync(out, 'a');
  const p = spawn(process.execPath, [BIN, 'kms', 'serve', '--port', '0'], {
    env: { ...process.env, KMSVOL_HOME: home, ...(now ? { KMSVOL_NOW: now } : {}) },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  p.unref();
  for (let i = 0; i < 200; i++) {
    const m = /"Endpoint": "([^"]+)"/.exec(fs.readFileSync(out, 'utf8'));
    if (m) {
      return { pid: p.pid!, now, env: { AWS_ENDPOINT_URL_KMS: m[1]!, AWS_ACCESS_KEY_ID: keys.AccessKeyId, AWS_SECRET_ACCESS_KEY: keys.SecretAccessKey } };
    }
    sleep(50);
  }
  throw new Error(`kmsvol kms serve did not start: ${fs.readFileSync(out, 'utf8')}`);
}

function stop(r: Running): void {
  try {
    process.kill(r.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(r.pid, 0);
    } catch {
      return;
    }
    sleep(20);
  }
}

/** Start the home's KMS server (in server mode). Returns a function that stops it. */
export function serveHome(home: string): () => void {
  servers.set(home, start(home, undefined));
  return () => {
    const r = servers.get(home);
    if (r) stop(r);
    servers.delete(home);
  };
}

/** The environment that sends a CLI call on `home` through its server, restarting it for another KMSVOL_NOW. */
export function serverEnv(home: string, now: string | undefined): Record<string, string> {
  let r = servers.get(home);
  if (!r) return {};
  if (r.now !== now) {
    stop(r);
    r = start(home, now);
    servers.set(home, r);
  }
  return r.env;
}
