// The card process: `node dist/card/main.js <home> <volumeId> <mountDir> <loop 0|1>`.
// Started by attach-volume; reports readiness as one JSON line on fd 3, then
// serves the volume until detached.
import fs from 'node:fs';
import { clockFromEnv } from '../clock.js';
import { openHome } from '../home.js';
import { DEFAULT_ACCOUNT, DEFAULT_REGION } from '../kms/context.js';
import { Card } from './runtime.js';

const [homeDir, volumeId, mountDir, loop] = process.argv.slice(2) as [string, string, string, string];
const report = (msg: object) => {
  try {
    fs.writeSync(3, `${JSON.stringify(msg)}\n`);
    fs.closeSync(3);
  } catch {
    /* the parent is gone; nothing to report to */
  }
};

const card = new Card({
  home: openHome(homeDir),
  volumeId,
  mountDir,
  loop: loop === '1',
  clock: clockFromEnv(),
  region: process.env.KMSVOL_REGION || process.env.AWS_REGION || DEFAULT_REGION,
  account: process.env.KMSVOL_ACCOUNT_ID ?? DEFAULT_ACCOUNT,
  grantToken: process.env.KMSVOL_CARD_GRANT_TOKEN || undefined,
});
card.start().then(
  (attachment) => {
    report({ ok: true, attachment });
    card.stopped.then(() => process.exit(0));
  },
  (e: Error) => {
    report({ ok: false, error: { name: e.name, message: e.message } });
    process.exit(1);
  },
);
