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
