import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Database from 'better-sqlite3';
import { checkPrivateIfPresent, touchPrivate } from './home.js';

let binding: { nativeBinding?: string } | undefined;

/** better-sqlite3's addon where its build puts it, so the `bindings` package need not search ~20 places at each start; none: let it search. */
function nativeBinding(): { nativeBinding?: string } {
  if (binding !== undefined) return binding;
  const file = path.join(path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');
  return (binding = fs.existsSync(file) ? { nativeBinding: file } : {});
}

/**
 * How kmsvol opens its SQLite databases (the KMS store and the volume
 * registry): a 0600 file, WAL, synchronous=FULL, and a busy timeout long
 * enough that concurrent writers queue instead of failing.
 */
export function openDatabase(file: string): Database.Database {
  touchPrivate(file);
  for (const side of ['-wal', '-shm', '-journal']) checkPrivateIfPresent(file + side);
  const db = new Database(file, { timeout: 120_000, ...nativeBinding() });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

/** INSERT a row whose keys are the column names. */
export function insertRow(db: Database.Database, table: string, row: object): void {
  const cols = Object.keys(row);
  db.prepare(`INSERT INTO ${table} (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`).run(row);
}

/**
 * A SQLite failure (better-sqlite3's SQLITE_* codes): its code and what the
 * user can do about it; undefined for any other error. The one place SQLite
 * faults are recognised: the KMS turns them into KMSInternalException, the
 * CLI into its message for errors outside any service.
 */
export function sqliteFault(e: unknown): { code: string; hint: string } | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  const hint = /FULL|IOERR/.test(code)
    ? 'Free space on its file system (or fix the disk) and retry.'
    : 'Check the home directory and its permissions, and retry.';
  return { code, hint };
}
