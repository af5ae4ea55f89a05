import crypto from 'node:crypto';
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { XksClient, type XksError } from '../../../src/xks/client.js';
import { type KeyManager, KeyManagerError } from '../../../src/xks/keys.js';
import { createXksProxy, routeOf } from '../../../src/xks/proxy.js';

/**
 * The proxy's paths that a real token does not take on demand: a key manager
 * that fails, a clock five minutes off. The key manager here is AES-256-GCM
 * from node:crypto with keys in memory (the PKCS#11 one is exercised in
 * test/integration/xks-proxy.test.ts); `broken` makes every call fail as a
 * token that went away does.
 */
class MemoryKeys implements KeyManager {
  readonly vendor = 'test';
  readonly model = 'node:crypto';
  readonly id = 'mem-1';
  broken = false;
  private readonly keys = new Map<string, Buffer>();
  constructor(labels: string[]) {
    for (const l of [...labels, 'kmsvol-xks-proxy-health-check']) this.keys.set(l, crypto.randomBytes(32));
  }
  private key(label: string): Buffer {
    if (this.broken) throw new KeyManagerError('UNAVAILABLE', 'the token went away');
    const k = this.keys.get(label);
    if (!k) throw new KeyManagerError('KEY_NOT_FOUND', label);
    return k;
  }
  has(label: string): boolean {
    if (this.broken) throw new KeyManagerError('UNAVAILABLE', 'the token went away');
    return this.keys.has(label);
  }
  encrypt(label: string, plaintext: Buffer, aad: Buffer) {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key(label), iv).setAAD(aad);
    const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
    return { ciphertext, iv, tag: c.getAuthTag() };
  }
  decrypt(label: string, s: { ciphertext: Buffer; iv: Buffer; tag: Buffer }, aad: Buffer): Buffer {
    const d = crypto.createDecipheriv('aes-256-gcm', this.key(label), s.iv).setAAD(aad).setAuthTag(s.tag);
    try {
      return Buffer.concat([d.update(s.ciphertext), d.final()]);
    } catch {
      throw new KeyManagerError('DECRYPT_FAILED', 'tag');
    }
  }
}

const AK = 'AKIAXKSPROXYUNIT2345';
const SK = 'dW5pdC10ZXN0LXNlY3JldC1mb3Ita21zdm9sLXhrcy1wcm94eQ==';
const PATH = '/u/kms/xks/v1';
const MD = { awsPrincipalArn: 'arn:aws:iam::1:root', kmsKeyArn: 'arn:aws:kms:r:1:key/k', kmsRequestId: 'r' };
const servers: http.Server[] = [];
const clients: XksClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.close();
});

const AK2 = 'AKIAXKSPROXYROTATE27';
const SK2 = 'cm90YXRlZC1zZWNyZXQtZm9yLWttc3ZvbC14a3MtcHJveHk=';

async function setup(keys: MemoryKeys, now?: () => number, credentials = [{ accessKeyId: AK, secretAccessKey: SK }]): Promise<XksClient> {
  const server = createXksProxy({
    uriPath: PATH,
    credentials,
    region: 'ap-south-1',
    keys,
    ...(now ? { now } : {}),
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const c = new XksClient({
    uriEndpoint: `http://127.0.0.1:${port}`,
    uriPath: PATH,
    accessKeyId: AK,
    secretAccessKey: SK,
    region: 'ap-south-1',
    timeoutMs: 10_000,
  });
  clients.push(c);
  return c;
}

const failed = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: XksError) => e,
  );

describe('xks proxy: a key manager that fails', () => {
  it('health reports the key manager UNAVAILABLE, which the client gives as XksProxyUriUnreachableException', async () => {
    const keys = new MemoryKeys(['k']);
    const c = await setup(keys);
    await c.health({ kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' });
    keys.broken = true;
    const e = await failed(c.health({ kmsOperation: 'ConnectCustomKeyStore', kmsRequestId: 'r' }));
    expect([e.code, e.failure]).toEqual(['XksProxyUriUnreachableException', 'AllKeyManagersUnavailable']);
  });

  it('encrypt on a key manager that went away is InternalException (500)', async () => {
    const keys = new MemoryKeys(['k']);
    const c = await setup(keys);
    keys.broken = true;
    const e = await failed(c.encrypt('k', Buffer.from('x'), undefined, { ...MD, kmsOperation: 'Encrypt' }));
    expect([e.failure, e.proxyStatus, e.code]).toEqual(['InternalException', 500, 'KMSInvalidStateException']);
  });
});

describe('xks proxy: SigV4 time', () => {
  it('a request signed more than five minutes before the proxy’s clock is AuthenticationFailedException', async () => {
    const c = await setup(new MemoryKeys(['k']), () => Date.now() + 6 * 60_000);
    const e = await failed(c.health({ kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' }));
    expect([e.failure, e.proxyStatus]).toEqual(['AuthenticationFailedException', 401]);
  });

  it('within five minutes it is accepted', async () => {
    const c = await setup(new MemoryKeys(['k']), () => Date.now() + 4 * 60_000);
    await expect(c.health({ kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' })).resolves.toBeDefined();
  });
});

describe('xks proxy: two credentials at once (rotation)', () => {
  it('accepts either held credential, and refuses a secret paired with the other key id', async () => {
    const c1 = await setup(new MemoryKeys(['k']), undefined, [
      { accessKeyId: AK, secretAccessKey: SK },
      { accessKeyId: AK2, secretAccessKey: SK2 },
    ]);
    const endpoint = (c1 as unknown as { base: URL }).base.origin;
    const other = (accessKeyId: string, secretAccessKey: string) => {
      const c = new XksClient({ uriEndpoint: endpoint, uriPath: PATH, accessKeyId, secretAccessKey, region: 'ap-south-1', timeoutMs: 10_000 });
      clients.push(c);
      return c;
    };
    await c1.health({ kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' });
    await other(AK2, SK2).health({ kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' });
    const e = await failed(other(AK2, SK).health({ kmsOperation: 'UpdateCustomKeyStore', kmsRequestId: 'r' }));
    expect([e.failure, e.code]).toEqual(['AuthenticationFailedException', 'XksProxyIncorrectAuthenticationCredentialException']);
  });
});

describe('xks proxy: routes', () => {
  it('names the four operations under the uriPath only', () => {
    expect(routeOf(PATH, `${PATH}/health`)).toEqual({ op: 'health' });
    expect(routeOf(PATH, `${PATH}/keys/a.b-c_d/encrypt`)).toEqual({ op: 'encrypt', keyId: 'a.b-c_d' });
    expect(routeOf(PATH, `${PATH}/keys/k/metadata`)).toEqual({ op: 'metadata', keyId: 'k' });
    for (const u of [
      `${PATH}/health/`,
      `${PATH}/keys/k/sign`,
      `${PATH}/keys/k/x/decrypt`,
      `${PATH}/keys/a%2Fb/decrypt`,
      `/x${PATH}/health`,
      `${PATH}/health?x=1`,
    ])
      expect(routeOf(PATH, u)).toBeUndefined();
  });
});
