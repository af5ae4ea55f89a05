import fs from 'node:fs';

/** Live card processes of `vol`, read from /proc: argv is node, card/main.js, ..., vol (never a shell or grep of our own). */
export function cardPids(vol: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((p) => {
      try {
        const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1];
        return state !== 'Z' && argv[0] === process.execPath && argv[1]?.endsWith('card/main.js') && argv.includes(vol);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The one card of `vol` (fails the test if there is none or more than one). */
export function cardPid(vol: string): number {
  const pids = cardPids(vol);
  if (pids.length !== 1) throw new Error(`expected one card process for ${vol}, found ${pids.length}`);
  return pids[0]!;
}
