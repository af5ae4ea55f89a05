import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { AuditLog } from '../kms/audit.js';
import { parseInteger } from './args.js';
import { globalsOf, homeOf, namedIn, print, withGlobals } from './common.js';
import { EXIT, report } from './errors.js';

/**
 * The top-level commands, in the order help lists them. Each is loaded only
 * when the command line names it: a CLI call pays for the modules of its own
 * command (a `kms` call never loads the card, the volumes or the demo).
 */
const COMMANDS: Record<string, (args?: readonly string[]) => Promise<Command>> = {
  kms: async (args) => (await import('./kms.js')).kmsCommand(args),
  ec2: async (args) => (await import('./ec2.js')).ec2Command(args),
  ebs: async (args) => (await import('./ebs.js')).ebsCommand(args),
  cloudhsmv2: async () => (await import('./cloudhsmv2.js')).cloudhsmv2Command(),
  iam: async () => (await import('./serve.js')).iamCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  events: async () => (await import('./events.js')).eventsCommand(),
  demo: async () => (await import('./demo.js')).demoCommand(),
  audit: async () => auditCommand(),
  luks: async () => (await import('./luks.js')).luksCommand(),
  'xks-proxy': async () => (await import('./xks.js')).xksProxyCommand(),
};

/** The program for these arguments (the user's words, after node and the script), with the commands they name (namedIn). */
export async function buildProgram(args?: readonly string[]): Promise<Command> {
  const wanted = namedIn(args, Object.keys(COMMANDS));
  const program = new Command('kmsvol')
    .description('A local AWS KMS and EBS-style encrypted volumes for Linux')
    .version(process.env.npm_package_version ?? '0.1.0');
  withGlobals(program);
  for (const [name, load] of Object.entries(COMMANDS)) if (wanted(name)) program.addCommand(await load(args));
  // Every command reports usage errors through us, with exit code 252.
  const configure = (c: Command) => {
    c.exitOverride().showHelpAfterError(false);
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

function auditCommand(): Command {
  return withGlobals(new Command('audit'))
    .description('Show the audit log: CloudTrail-style records of KMS and STS calls, newest last')
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
    });
}

/**
 * Precondition: the command line is UTF-8 text. Node decodes arguments with
 * replacement, so `a=<0xff>` and `a=<0xfe>` would both arrive as `a=\ufffd` and
 * name one encryption context; when an argument holds U+FFFD, the raw bytes
 * (/proc/self/cmdline) tell whether the user typed it or a byte was lost.
 */
function checkArgumentsAreUtf8(argv: string[]): void {
  if (!argv.some((a) => a.includes('\ufffd'))) return;
  let raw: Buffer;
  try {
    raw = fs.readFileSync('/proc/self/cmdline');
  } catch {
    return;
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const arg of raw.toString('latin1').split('\0')) {
    try {
      decoder.decode(Buffer.from(arg, 'latin1'));
    } catch {
      throw new UsageError(
        'An argument is not valid UTF-8 text; kmsvol reads arguments as UTF-8 (as JSON carries them). Pass bytes as fileb://FILE or base64, or fix the terminal encoding.',
      );
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  process.umask(0o077);
  try {
    checkArgumentsAreUtf8(argv);
    await (await buildProgram(argv.slice(2))).parseAsync(argv);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return EXIT.OK;
    return report(e);
  }
}
