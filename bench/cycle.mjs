// npm run bench -- cycle [--runs N] [--json]
// What a user scripting detach/reattach pays: one attach + detach cycle through
// the `Kmsvol` API (one process), the same cycle through the CLI (two
// processes), and one CLI call that does no volume work (`kms list-keys`).
// Medians of N runs (default 15) after 2 warm-up runs; targets from issue 17.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, printMachine } from './env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const bin = path.join(root, 'bin/kmsvol.js');
const { Kmsvol } = await import(path.join(root, 'dist/index.js'));

const args = process.argv.slice(2);
const json = args.includes('--json');
const runs = Number(args[args.indexOf('--runs') + 1] ?? 0) || 15;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn) {
  const out = [];
  for (let i = 0; i < runs + 2; i++) {
    const t = performance.now();
    await fn();
    if (i >= 2) out.push(performance.now() - t);
  }
  return { median: median(out), min: Math.min(...out), max: Math.max(...out) };
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-cycle-'));
const kv = Kmsvol.open({ home });
try {
  const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const vol = (await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key })).VolumeId;
  const api = await timed(async () => {
    await kv.attachVolume(vol);
    await kv.detachVolume(vol);
  });
  const cli = (argv) => {
    const r = spawnSync(process.execPath, [bin, ...argv], { env: { ...process.env, KMSVOL_HOME: home }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kmsvol ${argv.join(' ')}: ${r.stderr}`);
  };
  const cliCycle = await timed(async () => {
    cli(['ec2', 'attach-volume', '--volume-id', vol]);
    cli(['ec2', 'detach-volume', '--volume-id', vol]);
  });
  const oneCall = await timed(async () => cli(['kms', 'list-keys']));
  const rows = [
    { row: 'attach + detach through the Kmsvol API', ms: api, targetMs: 300 },
    { row: 'attach + detach through the CLI (two processes)', ms: cliCycle, targetMs: 600 },
    { row: 'one CLI call (kms list-keys)', ms: oneCall, targetMs: 200 },
  ];
  if (json) {
    console.log(JSON.stringify({ machine: machine(), runs, rows }, null, 2));
  } else {
    for (const r of rows) {
      console.log(
        `${r.row.padEnd(50)} median ${r.ms.median.toFixed(0).padStart(5)} ms  (min ${r.ms.min.toFixed(0)}, max ${r.ms.max.toFixed(0)})  target <= ${r.targetMs} ms: ${r.ms.median <= r.targetMs ? 'met' : 'NOT met'}`,
      );
    }
    console.log(`(${runs} runs each after 2 warm-up runs)`);
    printMachine(machine());
  }
} finally {
  await kv.close();
  fs.rmSync(home, { recursive: true, force: true });
}
