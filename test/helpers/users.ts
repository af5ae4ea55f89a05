import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { onCleanup } from './home.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Run a shell command as this user. */
  sh(script: string): { code: number; stdout: string; stderr: string };
}

/** A real non-root user for this test, removed afterwards (with its processes) even when the test fails. */
export function testUser(): TestUser {
  const name = `kvt${crypto.randomBytes(4).toString('hex')}`;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', name]);
  onCleanup(() => {
    spawnSync('pkill', ['-KILL', '-u', name]);
    spawnSync('userdel', [name]);
  });
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return {
    name,
    uid,
    gid,
    sh: (script) => {
      const r = spawnSync('sh', ['-c', script], { uid, gid, encoding: 'utf8', cwd: '/' });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
