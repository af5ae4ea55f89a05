// The card process unbundled: `node dist/card/main.js <volume id>`, which
// attach runs through bin/card/main.js when the card bundle is stale.
// Its whole configuration is one CardSpec (card/spec.ts), read as JSON from
// stdin; the volume id in argv is only a label for ps. Reports readiness as
// one JSON line on fd 3, then serves the volume until detached.
import { cardProcess } from './process.js';

void cardProcess();
