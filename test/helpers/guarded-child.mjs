// A child process for the guarded-memory tests, run with plain node on the
// compiled engine (no loaders, so the address space stays small for gcore).
//   touch <keyfile>        load the key, then read the no-access view: must die by SIGSEGV
//   hold  <keyfile> [use]  load the key (and optionally encrypt one sector), print the
//                          mapping info, and hold until stdin closes
import fs from 'node:fs';
import { GuardedKey, xtsEncrypt } from '../../dist/native/index.js';

const [mode, keyfile, use] = process.argv.slice(2);
const key = GuardedKey.fromBuffer(fs.readFileSync(keyfile));
if (mode === 'touch') {
  const view = new Uint8Array(key.unsafeView());
  process.stdout.write(`value ${view[0]}\n`); // never reached: the page is PROT_NONE
  process.exit(0);
}
if (use === 'use') {
  const b = Buffer.alloc(4096, 1);
  xtsEncrypt(key, b, b, 0, 4096);
}
process.stdout.write(`${JSON.stringify({ pid: process.pid, ...key.info() })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  key.zeroize();
  process.exit(0);
});
