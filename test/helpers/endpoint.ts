import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { BIN, kmsvol } from './cli.js';

export interface Endpoint {
  url: string;
  accessKeyId: string;
  secretAccessKey: string;
  out: () => string;
  stop(): Promise<number | null>;
}

/** Start `kmsvol serve --port 0` on a home (with an access key for user tester); resolves once it prints its endpoint. */
export async function startEndpoint(home: string, args: string[] = []): Promise<Endpoint> {
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'tester']).json.AccessKey;
  const server: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { env: { ...process.env, KMSVOL_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /"Endpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`kmsvol serve exited ${code}: ${out}`)));
  });
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  return {
    url,
    accessKeyId: ak.AccessKeyId,
    secretAccessKey: ak.SecretAccessKey,
    out: () => out,
    async stop() {
      if (server.exitCode === null) server.kill('SIGTERM');
      return exited;
    },
  };
}
