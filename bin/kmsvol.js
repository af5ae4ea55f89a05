#!/usr/bin/env node
// The installed entry point. The CLI is compiled to dist/ by `npm ci` (the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
