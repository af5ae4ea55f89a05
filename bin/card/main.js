// The card's process, started by attach (src/card/spawn.ts) as
// `node bin/card/main.js <volume id>`: the bundled card (dist/card/card.cjs),
// or dist/card/main.js when a module of dist/ it holds is newer (bin/bundle.cjs).
// CommonJS (bin/package.json), as bin/kmsvol.js.
const bundle = require('../bundle.cjs').loadBundle('card');
if (bundle) void bundle.exports.cardProcess();
else void import('../../dist/card/main.js');
