import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateCustomKeyStoreCommand, KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { createAccessKey } from '../../src/kms/iam.js';
import { Kms } from '../../src/kms/kms.js';
import { ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { XKS_AK, XKS_SK } from '../helpers/xks.js';

/**
 * Adversarial review (breaker2). `kmsvol serve`, run as users run it
 * (bin/kmsvol.js -> the CLI bundle dist/cli/kmsvol.cjs), offloads an XKS
 * operation to a worker thread that imports the KMS from kmsUrl()
 * (src/kms/keystores/offload.ts). In the bundle import.meta.url is
 * dist/cli/kmsvol.cjs, so `../kms.js` (dist/kms.js) is absent and the
 * fallback `<dirname>/../../..` is the directory ABOVE the checkout: the
 * worker imports `<parent of checkout>/dist/kms/kms.js`. With the checkout in
 * /tmp (link-bin.sh accepts a sticky parent), any local user can create
 * /tmp/dist/kms/kms.js and have root's endpoint run it; anywhere else every
 * offloaded XKS call fails (xks-serve-blocking.test.ts times out on main).
 *
 * Here a copy of the package sits in <tmp>/pkg and a hostile module in
 * <tmp>/dist/kms/kms.js, which only writes a marker file. One
 * CreateCustomKeyStore(EXTERNAL_KEY_STORE) (always offloaded) must not run it.
 */
async function serve(bin: string, home: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [bin, 'kms', 'serve', '--port', '0', '--region', 'eu-west-3'], {
    env: { ...process.env, KMSVOL_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  let out = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /"Endpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`kms serve exited ${code}`)));
  });
  return { endpoint, child };
}

describe('the bundled endpoint loads its XKS worker from inside the package', () => {
  it('never imports dist/kms/kms.js from the directory above the checkout', async () => {
    const outer = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-outer-'));
    onCleanup(() => fs.rmSync(outer, { recursive: true, force: true }));
    const pkg = path.join(outer, 'pkg');
    fs.mkdirSync(pkg);
    for (const d of ['bin', 'dist']) fs.cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true, preserveTimestamps: true });
    for (const f of ['package.json', 'native', 'node_modules']) fs.symlinkSync(path.join(ROOT, f), path.join(pkg, f));
    // What a hostile user would plant next to the checkout.
    const marker = path.join(outer, 'hostile-code-ran');
    fs.mkdirSync(path.join(outer, 'dist/kms'), { recursive: true });
    fs.writeFileSync(
      path.join(outer, 'dist/kms/kms.js'),
      `require('node:fs').writeFileSync(${JSON.stringify(marker)}, String(process.getuid()));\nmodule.exports = { Kms: { open() { throw new Error('planted'); } } };\n`,
    );
    const home = tempHome('kmsvol-xksworker-');
    const kms = Kms.open({ home, audit: false, region: 'eu-west-3' });
    const ak = createAccessKey(kms.ctx, 'tester').AccessKey;
    kms.close();
    const server = await serve(path.join(pkg, 'bin/kmsvol.js'), home);
    const client = new KMSClient({
      endpoint: server.endpoint,
      region: 'eu-west-3',
      credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
      maxAttempts: 1,
    });
    onCleanup(() => client.destroy());
    const err = await client
      .send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: 'x',
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyUriEndpoint: 'http://127.0.0.1:9',
          XksProxyUriPath: '/kms/xks/v1',
          XksProxyAuthenticationCredential: { AccessKeyId: XKS_AK, RawSecretAccessKey: XKS_SK },
        }),
      )
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(fs.existsSync(marker), 'the endpoint ran a module from outside its package').toBe(false);
    // The proxy does not exist: KMS's own error for it, not a worker's import failure.
    expect(err?.message ?? '').not.toMatch(/planted|Cannot find module|ERR_MODULE_NOT_FOUND/);
  });
});
