// The card process's work (card/main.ts runs it; so does the card bundle,
// dist/card/card.cjs, through bin/card.cjs). Its whole configuration is one
// CardSpec (card/spec.ts), read as JSON from stdin; it reports readiness as
// one JSON line on fd 3, then serves the volume until detached.
import fs from 'node:fs';
import type { Clock } from '../clock.js';
import { ManualClock, systemClock } from '../clock.js';
import type { Home } from '../home.js';
import { openHome } from '../home.js';
import type { Caller } from '../kms/authz.js';
import type { KmsClient } from '../kms/client/index.js';
import { InProcessKmsClient } from '../kms/client/index.js';
import { RemoteKmsClient } from '../kms/client/remote.js';
import { Card } from './runtime.js';
import type { CardSpec } from './spec.js';
import { parseCardSpec } from './spec.js';

const report = (msg: object) => {
  try {
    fs.writeSync(3, `${JSON.stringify(msg)}\n`);
    fs.closeSync(3);
  } catch {
    /* the parent is gone; nothing to report to */
  }
};

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

/** The KMS the spec names, for the card's caller; the card closes it once the key is unwrapped. */
function kmsOf(spec: CardSpec, home: Home, clock: Clock): (caller: Partial<Caller>) => KmsClient {
  const k = spec.kms;
  if (k.kind === 'remote') {
    return (caller) => new RemoteKmsClient({ endpoint: k.endpoint, region: k.region, credentials: k.credentials, viaService: caller.viaService });
  }
  return (caller) => InProcessKmsClient.open({ home, region: spec.region, account: spec.account, clock, caller });
}

/** The card process: reads its spec on stdin, serves the volume until detached, then exits. */
export async function cardProcess(): Promise<void> {
  let card: Card;
  try {
    const spec = parseCardSpec(await readStdin());
    const clock = spec.now ? new ManualClock(Date.parse(spec.now)) : systemClock;
    const home = openHome(spec.home, { KMSVOL_ROOT_KEY_FILE: spec.rootKeyFile });
    card = new Card({
      home,
      volumeId: spec.volumeId,
      mountDir: spec.mountDir,
      loop: spec.loop,
      clock,
      region: spec.region,
      account: spec.account,
      kms: kmsOf(spec, home, clock),
      grantToken: spec.grantToken,
      changeTracking: spec.changeTracking !== false,
    });
  } catch (e) {
    report({ ok: false, error: { name: (e as Error).name, message: (e as Error).message } });
    process.exit(1);
  }
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
}
