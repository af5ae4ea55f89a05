import { spawn } from 'node:child_process';
import { onTestFinished } from 'vitest';
import { BIN } from './cli.js';

export interface RunningEndpoint {
  url: string;
  stop(): Promise<void>;
}

/**
 * Start `kmsvol serve --port 0` on a home (extra arguments and environment
 * allowed) and resolve once it prints its endpoint. Stopped with SIGTERM by
 * `stop()`, or at the end of the calling test when started inside one.
 */
export async function startEndpoint(home: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunningEndpoint> {
  const p = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    env: { ...process.env, KMSVOL_HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /"Endpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (code) => reject(new Error(`kmsvol serve exited with ${code}: ${err}`)));
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await exited;
  };
  try {
    onTestFinished(stop);
  } catch {
    /* started outside a test (beforeAll): the caller stops it */
  }
  return { url, stop };
}
