import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { AuditLog } from '../kms/audit.js';
import { parseInteger } from './args.js';
import { globalsOf, homeOf, print, withGlobals } from './common.js';
import { demoCommand } from './demo.js';
import { ec2Command, eventsCommand } from './ec2.js';
import { EXIT, report } from './errors.js';
import { kmsCommand } from './kms.js';
import { iamCommand, serveCommand } from './serve.js';

export function buildProgram(): Command {
  const program = new Command('kmsvol')
    .description('A local AWS KMS and EBS-style encrypted volumes for Linux')
    .version(process.env.npm_package_version ?? '0.1.0');
  withGlobals(program);
  program.addCommand(kmsCommand());
  program.addCommand(ec2Command());
  program.addCommand(iamCommand());
  program.addCommand(serveCommand());
  program.addCommand(eventsCommand());
  program.addCommand(demoCommand());
  program.addCommand(
    withGlobals(new Command('audit'))
      .description('Show the KMS audit log (CloudTrail-style records, newest last)')
      .option('--event-name <name>', 'only records of this operation')
      .option('--max-results <n>', 'only the last N records')
      .action((opts: { eventName?: string; maxResults?: string }, self: Command) => {
        const g = globalsOf(self);
        const max = opts.maxResults === undefined ? undefined : parseInteger(opts.maxResults, 'max-results');
        if (max !== undefined && max < 1) throw new UsageError(`Invalid value for --max-results: ${max}; it must be a whole number of records, 1 or more.`);
        let events = AuditLog.read(homeOf(g).auditLog);
        if (opts.eventName) events = events.filter((e) => e.eventName === opts.eventName);
        if (max !== undefined) events = events.slice(-max);
        print({ Events: events }, g);
      }),
  );
  // Every command reports usage errors through us, with exit code 252.
  const configure = (c: Command) => {
    c.exitOverride().showHelpAfterError(false);
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  process.umask(0o077);
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return EXIT.OK;
    return report(e);
  }
}
