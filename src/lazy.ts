import { createRequire } from 'node:module';

/**
 * Libraries most commands never use, loaded on first use instead of at every
 * start of the CLI (a command pays only for what it does).
 */
const require = createRequire(import.meta.url);

/** The yaml package: --output yaml, --cli-input-yaml, seed files. */
export function yaml(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}

/** cli-table3: --output table. */
export function cliTable(): typeof import('cli-table3') {
  return require('cli-table3') as typeof import('cli-table3');
}

/** jmespath: --query. */
export function jmespath(): typeof import('jmespath') {
  return require('jmespath') as typeof import('jmespath');
}
