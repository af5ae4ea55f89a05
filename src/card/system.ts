import { execFile } from 'node:child_process';
import fs from 'node:fs';

/** The OS pieces a card uses: loop devices, mount tables, process liveness. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { encoding: 'utf8' }, (e, stdout, stderr) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || e.message}`)) : resolve(stdout))),
  );
}

export async function losetupAttach(file: string): Promise<string> {
  return (await run('losetup', ['--find', '--show', file])).trim();
}

export async function losetupDetach(dev: string): Promise<void> {
  await run('losetup', ['-d', dev]);
}

/** True when something holds the loop device: a mounted filesystem or a holder (dm, md). */
export function loopBusy(dev: string): boolean {
  const name = dev.replace(/^\/dev\//, '');
  try {
    if (fs.readdirSync(`/sys/block/${name}/holders`).length > 0) return true;
  } catch {
    return false;
  }
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' - ')[1]?.split(' ')[1] === dev);
}

/** Where `dev` is mounted, if it is. */
export function mountPointOf(dev: string): string | undefined {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = l.split(' - ');
    if (right?.split(' ')[1] === dev) return left!.split(' ')[4];
  }
  return undefined;
}

export function isMounted(dir: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Which loop devices are backed by `file` (losetup -j). */
export async function loopsFor(file: string): Promise<string[]> {
  const out = await run('losetup', ['-j', file]).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.split(':')[0]!)
    .filter(Boolean);
}
