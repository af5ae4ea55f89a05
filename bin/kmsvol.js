#!/usr/bin/env node
// The installed entry point. `npm ci` compiles the CLI to dist/ (tsc) and
// bundles it into dist/cli/kmsvol.cjs (scripts/bundle-cli.mjs), which runs
// here; dist/cli/main.js runs instead when the bundle is older (bin/bundle.cjs).
import { createRequire } from 'node:module';

const bundle = createRequire(import.meta.url)('./bundle.cjs').loadBundle();
const { main } = bundle ?? (await import('../dist/cli/main.js'));

main(process.argv).then((code) => {
  process.exitCode = code;
});
