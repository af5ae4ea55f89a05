// A writer for crash tests: appends 4096-byte records to FILE (on the volume), each
// [seq u64 LE][random][sha256 of the rest], made durable (fsync after each, or
// O_DSYNC), and only then logs "seq sha256" to ACK (outside the volume, fsynced).
// Runs until killed or until a write fails (the card died under it).
// With IOLOG (the power-loss test's log of the card's image writes), each ack
// also carries the log's size when the fsync returned: everything the record
// needs was logged before that point.
// usage: node crash-writer.mjs FILE ACK FIRST_SEQ fsync|dsync [IOLOG]
import crypto from 'node:crypto';
import fs from 'node:fs';

const [file, ack, first, mode, iolog] = process.argv.slice(2);
const fd = fs.openSync(file, mode === 'dsync' ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_DSYNC : 'a');
const ak = fs.openSync(ack, 'a');
for (let seq = Number(first); ; seq++) {
  const rec = Buffer.alloc(4096);
  rec.writeBigUInt64LE(BigInt(seq), 0);
  crypto.randomFillSync(rec, 8, 4056);
  const sum = crypto.createHash('sha256').update(rec.subarray(0, 4064)).digest();
  sum.copy(rec, 4064);
  try {
    if (fs.writeSync(fd, rec) !== rec.length) process.exit(3);
    if (mode !== 'dsync') fs.fsyncSync(fd);
  } catch {
    process.exit(2); // not acknowledged
  }
  fs.writeSync(ak, `${seq} ${sum.toString('hex')}${iolog ? ` ${fs.statSync(iolog).size}` : ''}\n`);
  fs.fsyncSync(ak);
}
