import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { EncryptCommand, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { createAccessKey } from '../../src/kms/iam.js';
import { Kms } from '../../src/kms/kms.js';
import { BIN, kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { XKS_AK, XKS_SK } from '../helpers/xks.js';

/**
 * One slow external key store must not stall `kmsvol kms serve` for everyone
 * else. AWS KMS waits up to 250 ms for a proxy, per request; kmsvol's KMS
 * waits for the proxy with Atomics.wait on the server's only thread
 * (src/kms/keystores/xks-sync.ts), so while one request waits for a proxy no
 * other request of any caller is served.
 *
 * The proxy here answers GetHealthStatus and GetKeyMetadata in shape and
 * never answers Encrypt; once it has the Encrypt request, the test sends an
 * unrelated ListKeys. It must be answered before the Encrypt (which fails
 * after the proxy timeout): no timing, only the order of the two answers.
 */
const URI_PATH = '/kms/xks/v1';
const REGION = 'eu-west-3';

/** The proxy, in its own process (the CLI calls below block this one): prints "port N", then "encrypt" when an Encrypt arrives. */
const SILENT_PROXY = `
const http = require('node:http');
const send = (res, body) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '${URI_PATH}/health')
      return send(res, { xksProxyFleetSize: 1, xksProxyVendor: 'test', xksProxyModel: 'silent', ekmVendor: 'test',
        ekmFleetDetails: [{ id: 'e1', model: 'm', healthStatus: 'ACTIVE' }] });
    if (req.url.endsWith('/metadata')) return send(res, { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    if (req.url.endsWith('/encrypt')) return process.stdout.write('encrypt\\n'); // never answered
    res.writeHead(404).end();
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('port ' + this.address().port + '\\n'); });
`;

async function silentProxy(): Promise<{ endpoint: string; encryptArrived: Promise<void> }> {
  const child = spawn(process.execPath, ['-e', SILENT_PROXY], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => child.kill('SIGKILL'));
  const lines = readline.createInterface({ input: child.stdout! });
  let encryptArrived!: () => void;
  const arrived = new Promise<void>((r) => (encryptArrived = r));
  const port = await new Promise<number>((resolve) =>
    lines.on('line', (l) => {
      const m = /^port (\d+)$/.exec(l);
      if (m) resolve(Number(m[1]));
      if (l === 'encrypt') encryptArrived();
    }),
  );
  return { endpoint: `http://127.0.0.1:${port}`, encryptArrived: arrived };
}

async function serve(home: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'kms', 'serve', '--port', '0', '--region', REGION], {
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

describe('kms serve with an external key store whose proxy does not answer', () => {
  it('serves another request (ListKeys) while an Encrypt waits for the proxy', async () => {
    const home = tempHome('kmsvol-xksblock-');
    const proxy = await silentProxy();
    const run = (args: string[]) => kmsvol(home, [...args, '--region', REGION], { AWS_ENDPOINT_URL_KMS: '', KMSVOL_KMS_ENDPOINT: '' });
    const made = run([
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'slow',
      '--custom-key-store-type',
      'EXTERNAL_KEY_STORE',
      '--xks-proxy-connectivity',
      'PUBLIC_ENDPOINT',
      '--xks-proxy-uri-endpoint',
      proxy.endpoint,
      '--xks-proxy-uri-path',
      URI_PATH,
      '--xks-proxy-authentication-credential',
      `AccessKeyId=${XKS_AK},RawSecretAccessKey=${XKS_SK}`,
    ]);
    expect(made.code, made.stderr).toBe(0);
    const store = made.json.CustomKeyStoreId as string;
    expect(run(['kms', 'connect-custom-key-store', '--custom-key-store-id', store]).code).toBe(0);
    const key = run(['kms', 'create-key', '--origin', 'EXTERNAL_KEY_STORE', '--custom-key-store-id', store, '--xks-key-id', 'k1']);
    expect(key.code, key.stderr).toBe(0);
    const kms = Kms.open({ home, audit: false, region: REGION });
    const ak = createAccessKey(kms.ctx, 'tester').AccessKey;
    kms.close();
    const server = await serve(home);
    const client = new KMSClient({
      endpoint: server.endpoint,
      region: REGION,
      credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
      maxAttempts: 1,
    });
    const order: string[] = [];
    let encError: Error | undefined;
    const enc = client.send(new EncryptCommand({ KeyId: key.json.KeyMetadata.KeyId, Plaintext: Buffer.from('x') })).then(
      () => order.push('Encrypt'),
      (e: Error) => {
        encError = e;
        order.push('Encrypt');
      },
    );
    await proxy.encryptArrived;
    const list = client.send(new ListKeysCommand({})).then(() => order.push('ListKeys'));
    await Promise.all([enc, list]);
    client.destroy();
    expect(order).toEqual(['ListKeys', 'Encrypt']);
    // The proxy's timeout is KMS's error for it, as when the KMS waited on the serving thread.
    expect(encError?.name).toBe('KMSInvalidStateException');
    expect(encError?.message).toMatch(/is unavailable: its external key store .* did not respond in time/);
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
  });
});
