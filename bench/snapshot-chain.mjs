// npm run bench -- snapshot-chain [--size-gib 10] [--rounds 10] [--percent 1] [--json]
// Incremental snapshots (issue 28): an encrypted volume is written whole, snapshotted,
// then `--rounds` times a `--percent` of its 512 KiB blocks (chosen at random) is
// rewritten through the card and snapshotted again. Reported per snapshot: wall time,
// blocks read (the snapshot's event) and what the block store grew by on disk (du);
// and in all: the store's size against the volume size and against what whole copies
// (the earlier design) would have used. Needs root (FUSE, loop devices).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Kmsvol } from '../dist/index.js';
import { machine, printMachine } from './env.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const json = process.argv.includes('--json');
const SIZE_GIB = arg('size-gib', 10);
const ROUNDS = arg('rounds', 10);
const PERCENT = arg('percent', 1);
const MiB = 1 << 20;
const BLOCK = 512 * 1024;
const du = (dir) => Number(execFileSync('du', ['-s', '--block-size=1', dir], { encoding: 'utf8' }).split('\t')[0]);
const seconds = (t) => Number(process.hrtime.bigint() - t) / 1e9;

const kv = Kmsvol.open();
try {
  const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const vol = (await kv.createVolume({ Size: SIZE_GIB, Encrypted: true, KmsKeyId: key })).VolumeId;
  const { Device } = await kv.attachVolume(vol);
  const fd = fs.openSync(Device, 'r+');
  const blocks = (SIZE_GIB * 1024 * MiB) / BLOCK;
  const chunk = Buffer.alloc(8 * MiB);
  const t = process.hrtime.bigint();
  for (let off = 0; off < SIZE_GIB * 1024 * MiB; off += chunk.length) fs.writeSync(fd, crypto.randomFillSync(chunk), 0, chunk.length, off);
  fs.fsyncSync(fd);
  const fillSeconds = seconds(t);
  const cause = (id) => kv.events().find((e) => e.resources.some((r) => r.endsWith(`/${id}`)) && e.detail.result === 'succeeded')?.detail.cause;
  const snaps = [];
  const snapshot = async (changedBlocks) => {
    const before = du(`${kv.home.root}/blocks`);
    const t0 = process.hrtime.bigint();
    const s = await kv.createSnapshot(vol);
    snaps.push({
      id: s.SnapshotId,
      changedBlocks,
      seconds: +seconds(t0).toFixed(2),
      storeGrewMiB: +((du(`${kv.home.root}/blocks`) - before) / MiB).toFixed(1),
      event: cause(s.SnapshotId),
    });
  };
  fs.mkdirSync(`${kv.home.root}/blocks`, { recursive: true });
  await snapshot(blocks);
  const perRound = Math.max(1, Math.round((blocks * PERCENT) / 100));
  const block = Buffer.alloc(BLOCK);
  for (let r = 0; r < ROUNDS; r++) {
    const chosen = new Set();
    while (chosen.size < perRound) chosen.add(crypto.randomInt(blocks));
    for (const b of chosen) fs.writeSync(fd, crypto.randomFillSync(block), 0, BLOCK, b * BLOCK);
    fs.fsyncSync(fd);
    await snapshot(perRound);
  }
  fs.closeSync(fd);
  await kv.detachVolume(vol);
  const storeMiB = du(`${kv.home.root}/blocks`) / MiB;
  const volumeMiB = SIZE_GIB * 1024;
  const out = {
    machine: machine(),
    load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    sizeGiB: SIZE_GIB,
    rounds: ROUNDS,
    percent: PERCENT,
    fillSeconds: +fillSeconds.toFixed(1),
    snapshots: snaps,
    storeMiB: +storeMiB.toFixed(0),
    expectedMiB: volumeMiB + (ROUNDS * perRound * BLOCK) / MiB,
    wholeCopiesMiB: volumeMiB * (ROUNDS + 1),
  };
  if (json) console.log(JSON.stringify(out));
  else {
    printMachine(out.machine);
    console.log(`load average at the end: ${out.load}; filling ${SIZE_GIB} GiB took ${out.fillSeconds} s`);
    for (const s of snaps) console.log(`${s.id}  ${String(s.seconds).padStart(7)} s  store +${String(s.storeGrewMiB).padStart(8)} MiB  (${s.event})`);
    console.log(
      `block store: ${out.storeMiB} MiB for ${ROUNDS + 1} snapshots; volume + ${ROUNDS} x ${PERCENT}% = ${out.expectedMiB} MiB; whole copies would be ${out.wholeCopiesMiB} MiB`,
    );
  }
} finally {
  await kv.close();
}
