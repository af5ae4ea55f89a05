import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The home directory: `--home`, else `$KMSVOL_HOME`, else `~/.kmsvol`. Mode 0700;
 * every file in it is created 0600.
 */
export interface Home {
  readonly root: string;
  readonly kmsDb: string;
  readonly rootKeyFile: string;
  readonly auditLog: string;
  readonly eventLog: string;
  readonly registryDb: string;
  readonly volumesDir: string;
  readonly snapshotsDir: string;
  readonly runDir: string;
}

export function resolveHomeDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(explicit ?? env.KMSVOL_HOME ?? path.join(os.homedir(), '.kmsvol'));
}

export function openHome(dir: string, env: NodeJS.ProcessEnv = process.env): Home {
  const root = path.resolve(dir);
  ensureDir(root);
  const home: Home = {
    root,
    kmsDb: path.join(root, 'kms.db'),
    rootKeyFile: env.KMSVOL_ROOT_KEY_FILE ? path.resolve(env.KMSVOL_ROOT_KEY_FILE) : path.join(root, 'root.key'),
    auditLog: path.join(root, 'audit.log'),
    eventLog: path.join(root, 'events.log'),
    registryDb: path.join(root, 'ec2.db'),
    volumesDir: path.join(root, 'volumes'),
    snapshotsDir: path.join(root, 'snapshots'),
    runDir: path.join(root, 'run'),
  };
  return home;
}

export function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Create `file` with mode 0600 if missing (so SQLite's -wal/-shm inherit 0600 too). */
export function touchPrivate(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}
