// npm run bench -- xts [--json] [--quick]
// Native batched XTS (sync, and async on a 2-thread libuv pool) vs Node's per-sector
// node:crypto, at 512- and 4096-byte sectors and 4 KiB / 64 KiB / 1 MiB batches, with
// `openssl speed -evp aes-256-xts` measured in the same run as the ceiling.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import Benchmark from 'benchmark';
import { backend, GuardedKey, xtsEncrypt, xtsEncryptAsync } from '../dist/native/index.js';
import { referenceXts } from '../dist/native/reference.js';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const maxTime = quick ? 0.3 : 1;
const SECTORS = [512, 4096];
const BATCHES = [4096, 65536, 1 << 20];
const MB = 1e6;

const raw = crypto.randomBytes(64);
const key = GuardedKey.fromBuffer(Buffer.from(raw));

function syncMBps(fn, bytes) {
  const b = new Benchmark(fn, { maxTime, minSamples: 5 });
  b.run();
  return (b.hz * bytes) / MB;
}

/** Async: keep 4 batches in flight on the pool (2 threads) for a fixed time. */
async function asyncMBps(ss, batch) {
  const depth = 4;
  const bufs = Array.from({ length: depth }, () => [crypto.randomBytes(batch), Buffer.alloc(batch)]);
  const run = async (seconds) => {
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(seconds * 1e9));
    await Promise.all(
      bufs.map(async ([a, b]) => {
        while (process.hrtime.bigint() < end) {
          await xtsEncryptAsync(key, a, b, 0, ss);
          bytes += batch;
        }
      }),
    );
    return bytes / (Number(process.hrtime.bigint() - t0) / 1e9) / MB;
  };
  await run(maxTime / 5); // warm-up, as Benchmark.js does for the sync rows
  return run(maxTime);
}

function opensslMBps(ss) {
  const out = execFileSync('openssl', ['speed', '-evp', 'aes-256-xts', '-seconds', quick ? '1' : '2', '-bytes', String(ss)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const m = /AES-256-XTS\s+([\d.]+)k/.exec(out);
  if (!m) throw new Error(`could not read openssl speed output:\n${out}`);
  return (Number(m[1]) * 1000) / MB;
}

const rows = [];
for (const ss of SECTORS) {
  for (const batch of BATCHES) {
    const src = crypto.randomBytes(batch);
    const dst = Buffer.alloc(batch);
    const native = syncMBps(() => xtsEncrypt(key, src, dst, 1000, ss), batch);
    const nativeAsync = await asyncMBps(ss, batch);
    const node = syncMBps(() => referenceXts(raw, src, 1000, ss, true), batch);
    rows.push({ sectorSize: ss, batch, native, nativeAsync, node });
  }
}
const openssl = { 512: opensslMBps(512), 4096: opensslMBps(4096) };
key.zeroize();

const at = (ss, batch) => rows.find((r) => r.sectorSize === ss && r.batch === batch);
const big = at(4096, 1 << 20);
const result = {
  machine: machine(),
  backend: backend(),
  unit: 'MB/s (10^6 bytes/s)',
  nativeMBps4096: Math.round(big.native),
  nativeAsyncMBps4096: Math.round(big.nativeAsync),
  nodeMBps4096: Math.round(big.node),
  opensslMBps4096: Math.round(openssl[4096]),
  opensslMBps512: Math.round(openssl[512]),
  rows: rows.map((r) => ({ ...r, native: Math.round(r.native), nativeAsync: Math.round(r.nativeAsync), node: Math.round(r.node) })),
  ratios: {
    nativeVsOpenssl4096: +(Math.min(at(4096, 65536).native, big.native) / openssl[4096]).toFixed(2),
    asyncVsSync4096: +(big.nativeAsync / big.native).toFixed(2),
    nativeVsNode4096: +(big.native / big.node).toFixed(1),
  },
};

if (json) {
  console.log(JSON.stringify(result));
} else {
  printMachine(result.machine);
  console.log(`XTS backend: ${result.backend}; async runs on ${process.env.UV_THREADPOOL_SIZE ?? 4} libuv threads, 4 batches in flight\n`);
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${pad('sector', 6)} ${pad('batch', 8)} ${pad('native', 9)} ${pad('async x2', 9)} ${pad('node', 8)}   (MB/s)`);
  for (const r of result.rows)
    console.log(
      `${pad(r.sectorSize, 6)} ${pad(r.batch >= 1 << 20 ? '1 MiB' : `${r.batch / 1024} KiB`, 8)} ${pad(r.native, 9)} ${pad(r.nativeAsync, 9)} ${pad(r.node, 8)}`,
    );
  console.log(`openssl speed -evp aes-256-xts: ${result.opensslMBps512} MB/s at 512 B, ${result.opensslMBps4096} MB/s at 4096 B\n`);
  const { nativeVsOpenssl4096: a, asyncVsSync4096: b, nativeVsNode4096: c } = result.ratios;
  console.log(`native sync / openssl (4096 B sectors, batches >= 64 KiB): ${a}  (target >= 0.85: ${a >= 0.85 ? 'met' : 'NOT met'})`);
  console.log(`native async x2 / native sync (1 MiB batches):            ${b}  (target >= 1.6: ${b >= 1.6 ? 'met' : 'NOT met'})`);
  console.log(`native sync / node per-sector (1 MiB batches):            ${c}  (target >= 10: ${c >= 10 ? 'met' : 'NOT met'})`);
}
