// The long runs behind the suite's bounded ones:
//   npm run soak -- crash [--cycles 100] [--seed N]   kill -9 of the card under load (test/integration/crash.test.ts)
//   npm run soak -- fuzz                               the full fuzz counts (test/fuzz/*.test.ts)
// Each runs the same vitest file the suite runs, with bigger counts, and prints its summary lines.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const [what, ...rest] = process.argv.slice(2);
const opt = (name, def) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : def;
};
const runs = {
  crash: {
    files: ['test/integration/crash.test.ts'],
    env: { KMSVOL_CRASH_CYCLES: opt('cycles', '100'), ...(opt('seed') ? { KMSVOL_CRASH_SEED: opt('seed') } : {}) },
  },
  fuzz: { files: ['test/fuzz'], env: { KMSVOL_FUZZ_FULL: '1' } },
};
const run = runs[what];
if (!run) {
  console.error('usage: npm run soak -- crash [--cycles N] [--seed N] | fuzz');
  process.exit(252);
}
const started = Date.now();
const r = spawnSync(process.execPath, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...run.files, '--testTimeout', '0'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...run.env },
});
console.log(`soak ${what}: exit ${r.status}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
