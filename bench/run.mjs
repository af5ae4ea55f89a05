#!/usr/bin/env node
// npm run bench -- <xts|kms|kms-asymmetric|kms-http|e2e|snapshot|snapshot-chain|cycle|keystores|change-tracking> [--json]
// Benchmarks run the compiled code in dist/ (npm ci builds it; npm run build rebuilds it).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const suites = {
  xts: 'xts.mjs',
  kms: 'kms.mjs',
  'kms-asymmetric': 'kms-asymmetric.mjs',
  'kms-http': 'kms-http.mjs',
  e2e: 'e2e.mjs',
  snapshot: 'snapshot.mjs',
  cycle: 'cycle.mjs',
  keystores: 'keystores.mjs',
  'change-tracking': 'change-tracking.mjs',
  'snapshot-chain': 'snapshot-chain.mjs',
};
const [name, ...rest] = process.argv.slice(2);
const usage = `usage: npm run bench -- <${Object.keys(suites).join('|')}> [--json]`;
if (name === '--help' || name === '-h') {
  console.log(usage);
  process.exit(0);
}
if (!name || !suites[name]) {
  console.error(usage);
  process.exit(252);
}
// The async engine's figure is "on 2 threads": size the libuv pool before it starts.
const r = spawnSync(process.execPath, [path.join(here, suites[name]), ...rest], {
  stdio: 'inherit',
  env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '2' },
});
process.exit(r.status ?? 1);
