import { execFile } from 'node:child_process';

/**
 * Run a program (no shell) and resolve with its stdout; a failure rejects
 * with the command line and the program's own words (its stderr).
 */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { encoding: 'utf8' }, (e, stdout, stderr) =>
      e ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || e.message}`)) : resolve(stdout),
    ),
  );
}
