// node bench/e2e/sqlite-load.mjs DB SECONDS: insert transactions (10 rows of
// 100 bytes each) into DB for SECONDS, SQLite's defaults (rollback journal,
// synchronous=FULL: fsyncs per commit); prints transactions per second.
import fs from 'node:fs';
import Database from 'better-sqlite3';

const [file, secs] = process.argv.slice(2);
fs.rmSync(file, { force: true });
const db = new Database(file);
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
const tx = db.transaction(() => {
  for (let i = 0; i < 10; i++) insert.run(Buffer.alloc(100, i));
});
const end = performance.now() + Number(secs) * 1000;
const start = performance.now();
let n = 0;
while (performance.now() < end) {
  tx();
  n++;
}
console.log((n / ((performance.now() - start) / 1000)).toFixed(1));
db.close();
