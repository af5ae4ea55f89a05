import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The home directory: `--home`, else `$KMSVOL_HOME`, else `~/.kmsvol`. Mode 0700;
 * every file in it is created 0600.
 *
 * Precondition: the home, every directory and every file in it belongs to the
 * user running kmsvol and is writable by nobody else, and none is a symlink.
 * Files are created with O_EXCL and opened with O_NOFOLLOW; anything else is
 * refused with a HomeError that says what to do. A home another user prepared
 * (a symlinked audit.log, a planted root.key or kms.db) is never used.
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

/** The home (or a file in it) is not safe to use. The CLI prints the message and exits 255. */
export class HomeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeHome';
  }
}

export function resolveHomeDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(explicit ?? env.KMSVOL_HOME ?? path.join(os.homedir(), '.kmsvol'));
}

export function openHome(dir: string, env: NodeJS.ProcessEnv = process.env): Home {
  const root = path.resolve(dir);
  // Precondition: a named root key file (KMSVOL_ROOT_KEY_FILE) that is a link or someone else's is refused before anything is created.
  if (env.KMSVOL_ROOT_KEY_FILE) checkPrivateIfPresent(path.resolve(env.KMSVOL_ROOT_KEY_FILE));
  ensureDir(root);
  keepReserve(root);
  return homeAt(root, env);
}

function homeAt(root: string, env: NodeJS.ProcessEnv): Home {
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

/**
 * A home that must already exist, opened without creating or changing
 * anything on the way: for a home named by something untrusted (a LUKS2
 * token's hint, read by root's cryptsetup from an image anyone may have
 * made). The directory must be ours, 0700 or stricter, not a link, and hold
 * the KMS's store and root key; otherwise HomeError, and nothing was touched.
 */
export function openExistingHome(dir: string, env: NodeJS.ProcessEnv = process.env): Home {
  const root = path.resolve(dir);
  const home = homeAt(root, env);
  let fd: number;
  try {
    fd = fs.openSync(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new HomeError(`${root} does not exist; it is not a kmsvol home.`);
    refuseLink(root, e);
  }
  try {
    const st = fs.fstatSync(fd);
    checkOwned(root, st, 'directory');
    if (st.mode & 0o077) throw new HomeError(`${root} is not a kmsvol home: a home is mode 700, this is ${(st.mode & 0o777).toString(8)}.`);
    for (const file of [home.kmsDb, home.rootKeyFile]) {
      const fst = fs.lstatSync(file, { throwIfNoEntry: false });
      if (!fst?.isFile()) throw new HomeError(`${root} is not a kmsvol home: ${file} is ${fst ? 'not a file' : 'missing'}.`);
    }
  } finally {
    fs.closeSync(fd);
  }
  return home;
}

/**
 * Space held back for kmsvol's own small writes. Images can fill the file
 * system the home is on (a volume is sparse until written); the registry,
 * the KMS store (SQLite WAL and its -shm) and the logs then could not be
 * written, and not even detach would work. So the home keeps a file of
 * RESERVE_BYTES real blocks, released by the first command that finds less
 * than that free, and made again once there is room for it several times over.
 */
export const RESERVE_BYTES = 4 << 20;

function keepReserve(root: string): void {
  const file = path.join(root, 'reserve');
  let free: number;
  try {
    const st = fs.statfsSync(root);
    free = st.bavail * st.bsize;
  } catch {
    return;
  }
  if (free < RESERVE_BYTES) {
    checkPrivateIfPresent(file);
    fs.rmSync(file, { force: true });
    return;
  }
  if (free < 4 * RESERVE_BYTES || fs.existsSync(file)) return;
  let fd: number;
  try {
    fd = openPrivate(file, 'w', true);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    fs.writeSync(fd, Buffer.alloc(RESERVE_BYTES)); // written, not sparse: the blocks are really held
  } catch {
    fs.rmSync(file, { force: true });
  } finally {
    fs.closeSync(fd);
  }
}

const { O_RDONLY, O_RDWR, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;
const me = () => process.geteuid?.() ?? 0;

/** Refuse `st` (of `what`) unless it is ours and writable by nobody else. */
function checkOwned(what: string, st: fs.Stats, kind: 'directory' | 'file'): void {
  if (st.uid !== me()) {
    throw new HomeError(
      `${what} is owned by uid ${st.uid}, not by you (uid ${me()}); another user could have prepared it. Use a ${kind} you own, for example a fresh home: export KMSVOL_HOME=$(mktemp -d)`,
    );
  }
  if (st.mode & 0o022) {
    throw new HomeError(
      `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}). Run: chmod go-w ${what} (and check nobody else changed what is in it).`,
    );
  }
}

function refuseLink(what: string, e: unknown): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'ENOTDIR') {
    throw new HomeError(
      `${what} is a symbolic link (or not what kmsvol made); kmsvol never follows links in its home. Remove it, or use a fresh home: export KMSVOL_HOME=$(mktemp -d)`,
    );
  }
  throw e;
}

/**
 * Create `dir` (0700) if missing; refuse it if it is a link, someone else's, or writable by others.
 * An existing directory is made 0700 too, unless `keepMode` (a directory the user named, such as a mount point).
 */
export function ensureDir(dir: string, keepMode = false): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    else if (code !== 'EEXIST') throw e;
  }
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (e) {
    refuseLink(dir, e);
  }
  try {
    checkOwned(dir, fs.fstatSync(fd), 'directory');
    if (!keepMode) fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
}

export type PrivateMode = 'r' | 'r+' | 'a' | 'w';

/**
 * Open a file in the home without following a symlink: created 0600 with
 * O_EXCL when `create` is set and it is missing, and refused (HomeError) when
 * it is a link, not a regular file, someone else's, or writable by others.
 */
export function openPrivate(file: string, mode: PrivateMode, create = false): number {
  const access = mode === 'r' ? O_RDONLY : mode === 'r+' ? O_RDWR : mode === 'a' ? O_WRONLY | O_APPEND : O_WRONLY;
  if (create) {
    try {
      return fs.openSync(file, access | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  let fd: number;
  try {
    fd = fs.openSync(file, access | O_NOFOLLOW);
  } catch (e) {
    refuseLink(file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile())
      throw new HomeError(`${file} is not a regular file; kmsvol made no such thing. Remove it, or use a fresh home: export KMSVOL_HOME=$(mktemp -d)`);
    checkOwned(file, st, 'file');
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/** Create `file` with mode 0600 if missing (so SQLite's -wal/-shm inherit 0600 too); check it either way. */
export function touchPrivate(file: string): void {
  fs.closeSync(openPrivate(file, 'r+', true));
}

/** Check an existing file (for example SQLite's -wal and -shm) the same way, if it exists. */
export function checkPrivateIfPresent(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) refuseLink(file, Object.assign(new Error('link'), { code: 'ELOOP' }));
  checkOwned(file, st, 'file');
}

/** Append `data` to a private file (created 0600 if missing). */
export function appendPrivate(file: string, data: string): void {
  const fd = openPrivate(file, 'a', true);
  try {
    fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** Read a private file whole, or undefined if it does not exist. */
export function readPrivate(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openPrivate(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
