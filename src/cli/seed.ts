import { Command } from 'commander';
import { clockFromEnv } from '../clock.js';
import { Kms } from '../kms/kms.js';
import type { SeedResult } from '../kms/seed.js';
import type { GlobalOptions } from './common.js';
import { globalsOf, homeOf, print, regionOf, withGlobals } from './common.js';
import { OperationContext } from './errors.js';

/** Apply a seed file to the embedded KMS of the home (always the local store: fixtures are local). The YAML parser loads only here. */
export async function applySeedFile(g: GlobalOptions, file: string): Promise<SeedResult> {
  const { seedFromFile } = await import('../kms/seed.js');
  const kms = Kms.open({ home: homeOf(g), region: regionOf(g), clock: clockFromEnv() });
  try {
    return seedFromFile(kms, file);
  } finally {
    kms.close();
  }
}

/** `kmsvol kms seed FILE`: create the keys, aliases and policies a seed file describes (idempotent). */
export function seedCommand(): Command {
  return withGlobals(new Command('seed'))
    .argument('<file>', 'seed file (YAML or JSON)')
    .description('Create key fixtures from a seed file (YAML or JSON); applying it again changes nothing')
    .action(async (file: string, _opts: unknown, self: Command) => {
      const g = globalsOf(self);
      await OperationContext.run('Seed', async () => print(await applySeedFile(g, file), g));
    });
}
