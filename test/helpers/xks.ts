import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { onCleanup } from './home.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Proxy credentials in the shapes CreateCustomKeyStore takes (20-30 of A-Z2-7; 43-64 of base64 characters). */
export const XKS_AK = 'AKIAXKSPROXYTEST2345';
export const XKS_SK = 'c2VjcmV0LWZvci1rbXN2b2wteGtzLXRlc3RzLW9ubHk=';
export const XKS_REGION = 'eu-west-3';

export interface RunningProxy {
  port: number;
  endpoint: string;
  pid: number;
  /** POST /__control on the spec proxy (fault injection). */
  control(body: object): Promise<void>;
  /** Kill it (SIGKILL, by the pid of the child this process spawned). */
  stop(): void;
}

const stopper = (p: ChildProcess) => () => {
  if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
};

/**
 * Wait for the "port N" line a server prints when it listens. Unless `keep`
 * (a server for a whole file, stopped in afterAll), the process is killed
 * after the test, even when it fails.
 */
export async function portLine(p: ChildProcess, what: string, keep = false): Promise<number> {
  if (!keep) onCleanup(stopper(p));
  let stderr = '';
  p.stderr?.on('data', (d) => (stderr += d));
  const lines = readline.createInterface({ input: p.stdout! });
  return new Promise((resolve, reject) => {
    p.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening: ${stderr}`)));
    lines.on('line', (l) => {
      const m = /^port (\d+)$/.exec(l.trim()) ?? /listening on .*:(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
  });
}

/** The test's own XKS proxy (test/helpers/xks-spec-proxy.py), with these external keys; `keep`: see portLine. */
export async function startSpecProxy(opts: { uriPath: string; keys: string[]; keep?: boolean }): Promise<RunningProxy> {
  const args = [path.join(ROOT, 'test/helpers/xks-spec-proxy.py'), '--uri-path', opts.uriPath, '--access-key-id', XKS_AK];
  args.push('--secret-access-key', XKS_SK, '--region', XKS_REGION, ...opts.keys.flatMap((k) => ['--key', k]));
  const p = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await portLine(p, 'xks-spec-proxy.py', opts.keep);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    pid: p.pid!,
    stop: stopper(p),
    control: (body) =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/__control', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`control: HTTP ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      }),
  };
}

export interface RunningXksProxy {
  endpoint: string;
  uriPath: string;
  home: string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
}

/**
 * `kmsvol xks-proxy` (dist/, through bin/kmsvol.js) on `home`, with the test
 * credential and region, resolved once it prints its endpoint. Unless `keep`,
 * it is killed after the test even when the test fails.
 */
export async function startXksProxy(opts: {
  home: string;
  uriPath: string;
  keyIds: string[];
  keep?: boolean;
  region?: string;
  args?: string[];
}): Promise<RunningXksProxy> {
  const args = [path.join(ROOT, 'bin/kmsvol.js'), 'xks-proxy', '--port', '0', '--region', opts.region ?? XKS_REGION, '--uri-path', opts.uriPath];
  args.push('--access-key-id', XKS_AK, ...opts.keyIds.flatMap((k) => ['--key-id', k]), ...(opts.args ?? []));
  // The secret as docs/xks-proxy.md passes it (the environment), unless the test gives --secret-access-key itself.
  const secret = opts.args?.includes('--secret-access-key') ? {} : { KMSVOL_XKS_SECRET_ACCESS_KEY: XKS_SK };
  const p = spawn(process.execPath, args, { env: { ...process.env, KMSVOL_HOME: opts.home, ...secret }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!opts.keep) onCleanup(stopper(p));
  let out = '';
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  const endpoint = await new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /"XksProxyUriEndpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (code) => reject(new Error(`kmsvol xks-proxy exited with ${code}: ${err}`)));
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    endpoint,
    uriPath: opts.uriPath,
    home: opts.home,
    stop: async () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      await exited;
    },
  };
}
