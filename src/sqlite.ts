import Database from 'better-sqlite3';
import { checkPrivateIfPresent, touchPrivate } from './home.js';

/**
 * How kmsvol opens its SQLite databases (the KMS store and the volume
 * registry): a 0600 file, WAL, synchronous=FULL, and a busy timeout long
 * enough that concurrent writers queue instead of failing.
 */
export function openDatabase(file: string): Database.Database {
  touchPrivate(file);
  for (const side of ['-wal', '-shm', '-journal']) checkPrivateIfPresent(file + side);
  const db = new Database(file, { timeout: 120_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

/** INSERT a row whose keys are the column names. */
export function insertRow(db: Database.Database, table: string, row: object): void {
  const cols = Object.keys(row);
  db.prepare(`INSERT INTO ${table} (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`).run(row);
}
