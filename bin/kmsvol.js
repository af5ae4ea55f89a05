#!/usr/bin/env node
// The installed entry point (CommonJS, bin/package.json: no ES module loader
// to start). `npm ci` compiles the CLI to dist/ (tsc) and bundles it into
// dist/cli/kmsvol.cjs (scripts/bundle-cli.mjs), which runs here; dist/cli/main.js
// runs instead when a module of dist/ it holds is newer (bin/bundle.cjs).
const bundle = require('./bundle.cjs').loadBundle('cli');
(bundle ? Promise.resolve(bundle.exports) : import('../dist/cli/main.js'))
  .then(({ main }) => main(process.argv))
  .then((code) => {
    process.exitCode = code;
  });
