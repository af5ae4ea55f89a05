import fs from 'node:fs';
import { Command, Option } from 'commander';
import { EventLog } from '../volume/events.js';
import { globalsOf, homeOf, print, withGlobals } from './common.js';

/** `kmsvol events`: the EBS Volume Notification events the control plane and the cards record. */
export function eventsCommand(): Command {
  return withGlobals(new Command('events'))
    .description('Show EBS Volume Notification events (attach failures and volume changes)')
    .option('--follow', 'keep printing new events as they are recorded')
    .addOption(new Option('--volume-id <id>', 'only events of this volume'))
    .action(async (opts: { follow?: boolean; volumeId?: string }, self: Command) => {
      const g = globalsOf(self);
      const file = homeOf(g).eventLog;
      const keep = (e: { resources: string[] }) => !opts.volumeId || e.resources.some((r) => r.endsWith(`/${opts.volumeId}`));
      const events = EventLog.read(file).filter(keep);
      if (!opts.follow) return print({ Events: events }, g);
      for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
      let size = fs.existsSync(file) ? fs.statSync(file).size : 0;
      let partial = '';
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (!fs.existsSync(file)) return;
          const now = fs.statSync(file).size;
          if (now <= size) return;
          const fd = fs.openSync(file, 'r');
          const buf = Buffer.alloc(now - size);
          fs.readSync(fd, buf, 0, buf.length, size);
          fs.closeSync(fd);
          size = now;
          const lines = (partial + buf.toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const l of lines) if (l && keep(JSON.parse(l))) process.stdout.write(`${l}\n`);
        }, 200);
        process.once('SIGINT', () => {
          clearInterval(timer);
          resolve();
        });
      });
    });
}
