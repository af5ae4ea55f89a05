// Builds the N-API addon in native/ with node-gyp against the headers Node
// ships (OpenSSL included), so nothing is downloaded. Run by `npm ci`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

// The LUKS2 token plugin (native/token, docs/luks.md) needs libcryptsetup's
// and json-c's headers; without them it is skipped with the line to run.
if (existsSync('/usr/include/libcryptsetup.h') && existsSync('/usr/include/json-c/json.h')) {
  execFileSync('make', ['-s', '-C', path.join(root, 'native/token')], { stdio: 'inherit' });
} else {
  console.error('kmsvol: the LUKS2 token plugin is not built (it needs: apt-get install -y libcryptsetup-dev libjson-c-dev)');
}
