import { CommanderError } from 'commander';
import { ServiceError, UsageError } from '../errors.js';

/**
 * The one place errors become the AWS CLI's message and exit code
 * (docs/cli.md lists them): 254 service errors, 252 usage errors, 255 anything else.
 */
export const EXIT = { OK: 0, USAGE: 252, SERVICE: 254, OTHER: 255, INTERRUPTED: 130 } as const;

export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export const OperationContext = {
  /** Run a CLI operation, printing errors the AWS way and recording the exit code. */
  async run(operation: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw new CliExit(report(e, operation));
    }
  },
};

export function report(e: unknown, operation?: string): number {
  if (e instanceof CliExit) return e.code;
  if (e instanceof ServiceError) {
    process.stderr.write(`\nAn error occurred (${e.name}) when calling the ${operation ?? 'unknown'} operation: ${e.message}\n`);
    return EXIT.SERVICE;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`\nusage: kmsvol [options] <command> <subcommand> [<subcommand> ...] [parameters]\nkmsvol: error: ${e.message}\n`);
    return EXIT.USAGE;
  }
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  process.stderr.write(`\n${(e as Error)?.message ?? String(e)}\n`);
  return EXIT.OTHER;
}
