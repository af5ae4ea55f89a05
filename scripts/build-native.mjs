// Builds the N-API addon in native/ with node-gyp against the headers Node
// ships (OpenSSL included), so nothing is downloaded. Run by `npm ci`.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
for (const tool of ['cc', 'make', 'python3']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`kmsvol: building the native engine needs ${tool}. Install the toolchain with:\n  apt-get install -y build-essential python3`);
    process.exit(1);
  }
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    console.error('kmsvol: node-gyp is missing. Run npm ci (it installs node-gyp) and try again.');
    process.exit(1);
  }
}
const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
const args = [gyp, 'rebuild', '--directory', path.join(root, 'native'), ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
execFileSync(process.execPath, args, { stdio: 'inherit' });
// The FUSE server links against the libfuse 2 that fuse-shared-library ships
// (npm), placed next to the addon under its soname (the addon's rpath is
// $ORIGIN), so no system libfuse is needed to load the engine.
const { lib } = createRequire(import.meta.url)('fuse-shared-library');
copyFileSync(lib, path.join(root, 'native/build/Release/libfuse.so.2'));
