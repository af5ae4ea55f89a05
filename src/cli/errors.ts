import { CommanderError } from 'commander';
import { ServiceError, UsageError } from '../errors.js';
import { HomeError } from '../home.js';
import { sqliteFault } from '../sqlite.js';

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

/** Something only root may do, said in one line (a non-root user of `npm start`). */
export class RootNeeded extends Error {}

export function report(e: unknown, operation?: string): number {
  if (e instanceof CliExit) return e.code;
  if (e instanceof RootNeeded) {
    process.stderr.write(`${e.message}\n`);
    return EXIT.OTHER;
  }
  if (e instanceof ServiceError) {
    process.stderr.write(`\nAn error occurred (${e.name}) when calling the ${operation ?? 'unknown'} operation: ${e.message}\n`);
    return EXIT.SERVICE;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`\nusage: kmsvol [options] <command> <subcommand> [<subcommand> ...] [parameters]\nkmsvol: error: ${e.message}\n`);
    return EXIT.USAGE;
  }
  if (e instanceof HomeError) {
    process.stderr.write(`\nkmsvol refuses to use its home: ${e.message}\n`);
    return EXIT.OTHER;
  }
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  const fault = sqliteFault(e);
  if (fault) {
    process.stderr.write(`\nThe kmsvol home could not be read or written (${fault.code}: ${(e as Error).message}). ${fault.hint}\n`);
    return EXIT.OTHER;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    process.stderr.write(`\n${err.message}. The file system holding the kmsvol home is full; free space and retry.\n`);
    return EXIT.OTHER;
  }
  if (err?.code === 'EACCES' || err?.code === 'EPERM') {
    // One line: what was refused, and what to do as a user who is not root.
    process.stderr.write(
      `kmsvol: ${err.message}. The KMS and the volume records need no root: set KMSVOL_HOME to a directory you own (export KMSVOL_HOME=$HOME/.kmsvol); attaching a volume needs root (FUSE, loop devices).\n`,
    );
    return EXIT.OTHER;
  }
  process.stderr.write(`\n${err?.message ?? String(e)}\n`);
  return EXIT.OTHER;
}
