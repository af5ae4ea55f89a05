import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireUsableKey, XksClient, XksError, type XksRequestMetadata } from '../../src/xks/client.js';
import { type RunningProxy, startSpecProxy, XKS_AK, XKS_REGION, XKS_SK } from '../helpers/xks.js';

/**
 * The KMS's XKS client against an XKS proxy the test wrote from AWS's
 * specification alone (test/helpers/xks-spec-proxy.py: its own SigV4
 * verifier, AES-GCM from python3-cryptography). The expected KMS exceptions
 * are the specification's "KMS Considerations" table, written out here again.
 */
const URI_PATH = '/tenant-a/kms/xks/v1';
const ARN = 'arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const md = (kmsOperation: string): XksRequestMetadata => ({
  awsPrincipalArn: 'arn:aws:iam::111122223333:user/Alice',
  kmsKeyArn: ARN,
  kmsOperation,
  kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae',
});

let proxy: RunningProxy;
let client: XksClient;
const clientFor = (over: Partial<ConstructorParameters<typeof XksClient>[0]> = {}) =>
  new XksClient({ uriEndpoint: proxy.endpoint, uriPath: URI_PATH, accessKeyId: XKS_AK, secretAccessKey: XKS_SK, region: XKS_REGION, timeoutMs: 5000, ...over });

async function failure(p: Promise<unknown>): Promise<XksError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XksError) return e;
    throw e;
  }
  throw new Error('expected an XksError, but the call succeeded');
}

// One proxy for the file: a python start is ~0.3 s. Fault injection is one-shot (the next request only).
beforeAll(async () => {
  proxy = await startSpecProxy({ uriPath: URI_PATH, keys: ['ext-key-1', 'disabled-key', 'signonly-key', 'rsa-key'], keep: true });
  client = clientFor();
});
afterAll(() => {
  client?.close();
  proxy?.stop();
});

describe('XKS client against the spec-written proxy: happy paths', () => {
  it('health answers the proxy fleet in the specification’s shape', async () => {
    const h = await client.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r-1' });
    expect(h.xksProxyFleetSize).toBe(1);
    expect(h.ekmFleetDetails[0]!.healthStatus).toBe('ACTIVE');
  });

  it('keyMetadata reads an AES_256 key for ENCRYPT and DECRYPT that KMS can use', async () => {
    const m = await client.keyMetadata('ext-key-1', md('CreateKey'));
    expect(m).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    expect(() => requireUsableKey(m, 'CreateKey')).not.toThrow();
  });

  it('encrypt then decrypt round-trips 4300 bytes with AAD, carrying the proxy’s ciphertextMetadata', async () => {
    const pt = Buffer.alloc(4300, 7);
    const aad = Buffer.alloc(8192, 'a');
    const c = await client.encrypt('ext-key-1', pt, aad, md('GenerateDataKey'));
    expect(c.ciphertext.length).toBe(4300);
    expect(c.ciphertext.equals(pt)).toBe(false);
    expect(c.initializationVector.length).toBe(12);
    expect(c.authenticationTag.length).toBe(16);
    expect(c.ciphertextMetadata?.toString()).toBe('spec-v1');
    expect((await client.decrypt('ext-key-1', c, aad, md('Decrypt'))).equals(pt)).toBe(true);
  });

  it('encrypt then decrypt without AAD', async () => {
    const c = await client.encrypt('ext-key-1', Buffer.from('Hello World!'), undefined, md('Encrypt'));
    expect((await client.decrypt('ext-key-1', c, undefined, md('Decrypt'))).toString()).toBe('Hello World!');
  });
});

describe('XKS client: the proxy’s real refusals become AWS KMS’s exceptions', () => {
  it('a wrong secret: XksProxyIncorrectAuthenticationCredentialException on CreateCustomKeyStore (INVALID_CREDENTIALS), KMSInvalidStateException on Decrypt', async () => {
    const bad = clientFor({ secretAccessKey: `${XKS_SK.slice(0, -2)}A=` });
    try {
      const e = await failure(bad.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode, e.proxyStatus]).toEqual([
        'XksProxyIncorrectAuthenticationCredentialException',
        'AuthenticationFailedException',
        'INVALID_CREDENTIALS',
        401,
      ]);
      expect((await failure(bad.encrypt('ext-key-1', Buffer.from('x'), undefined, md('Encrypt')))).code).toBe('KMSInvalidStateException');
    } finally {
      bad.close();
    }
  });

  it('a request signed for another region is refused as AuthenticationFailedException', async () => {
    const other = clientFor({ region: 'us-east-1' });
    try {
      const e = await failure(other.health({ kmsOperation: 'ConnectCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.failure, e.connectionErrorCode]).toEqual(['AuthenticationFailedException', 'INVALID_CREDENTIALS']);
    } finally {
      other.close();
    }
  });

  it('an unknown external key: XksKeyNotFoundException on CreateKey, KMSInvalidStateException on Decrypt', async () => {
    expect((await failure(client.keyMetadata('no-such-key', md('CreateKey')))).code).toBe('XksKeyNotFoundException');
    const c = await client.encrypt('ext-key-1', Buffer.from('x'), undefined, md('Encrypt'));
    const e = await failure(client.decrypt('no-such-key', c, undefined, md('Decrypt')));
    expect([e.code, e.failure, e.proxyStatus]).toEqual(['KMSInvalidStateException', 'KeyNotFoundException', 404]);
  });

  it('bad AAD or a changed ciphertextMetadata on decrypt: InvalidCiphertextException, KMSInvalidStateException', async () => {
    const c = await client.encrypt('ext-key-1', Buffer.from('secret'), Buffer.from('ctx=a'), md('Encrypt'));
    const e = await failure(client.decrypt('ext-key-1', c, Buffer.from('ctx=b'), md('Decrypt')));
    expect([e.code, e.failure]).toEqual(['KMSInvalidStateException', 'InvalidCiphertextException']);
    const moved = { ...c, ciphertextMetadata: Buffer.from('spec-v2') };
    expect((await failure(client.decrypt('ext-key-1', moved, Buffer.from('ctx=a'), md('Decrypt')))).failure).toBe('InvalidCiphertextException');
  });

  it('a disabled key: metadata says DISABLED (XksKeyInvalidConfigurationException for CreateKey); encrypt is InvalidStateException', async () => {
    const m = await client.keyMetadata('disabled-key', md('CreateKey'));
    expect(m.keyStatus).toBe('DISABLED');
    expect(() => requireUsableKey(m, 'CreateKey')).toThrow(expect.objectContaining({ code: 'XksKeyInvalidConfigurationException' }));
    const e = await failure(client.encrypt('disabled-key', Buffer.from('x'), undefined, md('Encrypt')));
    expect([e.code, e.failure]).toEqual(['KMSInvalidStateException', 'InvalidStateException']);
  });

  it('keys KMS cannot use: a sign-only key and an RSA key are XksKeyInvalidConfigurationException for CreateKey', async () => {
    for (const id of ['signonly-key', 'rsa-key']) {
      const m = await client.keyMetadata(id, md('CreateKey'));
      expect(() => requireUsableKey(m, 'CreateKey')).toThrow(expect.objectContaining({ code: 'XksKeyInvalidConfigurationException' }));
    }
    const e = await failure(client.encrypt('signonly-key', Buffer.from('x'), undefined, md('Encrypt')));
    expect([e.code, e.failure]).toEqual(['KMSInvalidStateException', 'InvalidKeyUsageException']);
  });

  it('a wrong URI path: InvalidUriPathException, XksProxyInvalidConfigurationException on CreateCustomKeyStore', async () => {
    const wrong = clientFor({ uriPath: '/tenant-b/kms/xks/v1' });
    try {
      const e = await failure(wrong.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual([
        'XksProxyInvalidConfigurationException',
        'InvalidUriPathException',
        'XKS_PROXY_INVALID_CONFIGURATION',
      ]);
    } finally {
      wrong.close();
    }
  });
});

describe('XKS client: every errorName of the specification, per calling KMS operation', () => {
  // errorName: [status, CreateCustomKeyStore, CreateKey]; every cryptographic operation is KMSInvalidStateException.
  const TABLE: Record<string, [number, string, string]> = {
    ValidationException: [400, 'XksProxyInvalidResponseException', 'CustomKeyStoreInvalidStateException'],
    InvalidStateException: [400, 'XksProxyUriUnreachableException', 'XksKeyInvalidConfigurationException'],
    InvalidCiphertextException: [400, 'XksProxyInvalidResponseException', 'CustomKeyStoreInvalidStateException'],
    InvalidKeyUsageException: [400, 'XksProxyInvalidResponseException', 'XksKeyInvalidConfigurationException'],
    AuthenticationFailedException: [401, 'XksProxyIncorrectAuthenticationCredentialException', 'CustomKeyStoreInvalidStateException'],
    AccessDeniedException: [403, 'XksProxyInvalidResponseException', 'KMSInvalidStateException'],
    KeyNotFoundException: [404, 'XksProxyInvalidResponseException', 'XksKeyNotFoundException'],
    InvalidUriPathException: [404, 'XksProxyInvalidConfigurationException', 'CustomKeyStoreInvalidStateException'],
    ThrottlingException: [429, 'XksProxyUriUnreachableException', 'CustomKeyStoreInvalidStateException'],
    InternalException: [500, 'XksProxyInvalidResponseException', 'CustomKeyStoreInvalidStateException'],
    UnsupportedOperationException: [501, 'XksProxyInvalidResponseException', 'XksKeyInvalidConfigurationException'],
    DependencyTimeoutException: [503, 'XksProxyUriUnreachableException', 'CustomKeyStoreInvalidStateException'],
  };
  for (const [name, [status, keyStore, createKey]] of Object.entries(TABLE)) {
    it(`${name} (HTTP ${status}): ${keyStore} / ${createKey} / KMSInvalidStateException`, async () => {
      const got: string[] = [];
      const calls: [string, () => Promise<unknown>][] = [
        ['UpdateCustomKeyStore', () => client.health({ kmsOperation: 'UpdateCustomKeyStore', kmsRequestId: 'r' })],
        ['CreateKey', () => client.keyMetadata('ext-key-1', md('CreateKey'))],
        ['GenerateDataKey', () => client.encrypt('ext-key-1', Buffer.alloc(32), undefined, md('GenerateDataKey'))],
      ];
      for (const [, call] of calls) {
        await proxy.control({ canned: { status, body: JSON.stringify({ errorName: name, errorMessage: 'injected' }) } });
        const e = await failure(call());
        expect([e.failure, e.proxyStatus, e.proxyMessage]).toEqual([name, status, 'injected']);
        got.push(e.code);
      }
      expect(got).toEqual([keyStore, createKey, 'KMSInvalidStateException']);
    });
  }
});

describe('XKS client: malformed answers are XksProxyInvalidResponseException', () => {
  const cases: [string, number, string][] = [
    ['a 200 that is not JSON', 200, '<html>ok</html>'],
    ['an error status without a JSON body', 502, 'Bad Gateway'],
    ['an errorName the specification does not have', 400, '{"errorName":"TeapotException"}'],
    ['a 200 health without ekmFleetDetails', 200, '{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e"}'],
    ['a 200 health with xksProxyFleetSize 0', 200, '{"xksProxyFleetSize":0,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[]}'],
  ];
  for (const [what, status, body] of cases) {
    it(what, async () => {
      await proxy.control({ canned: { status, body } });
      const e = await failure(client.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual(['XksProxyInvalidResponseException', 'MalformedResponse', 'XKS_PROXY_INVALID_RESPONSE']);
    });
  }

  const iv = Buffer.alloc(12, 1).toString('base64');
  const tag = Buffer.alloc(16, 2).toString('base64');
  const ct = Buffer.alloc(32, 3).toString('base64');
  const encryptCases: [string, object][] = [
    ['an encrypt answer without a CDIV although one was asked for', { ciphertext: ct, initializationVector: iv, authenticationTag: tag }],
    [
      'an encrypt answer whose CDIV does not match',
      { ciphertext: ct, initializationVector: iv, authenticationTag: tag, ciphertextDataIntegrityValue: Buffer.alloc(32).toString('base64') },
    ],
    ['a 15-byte tag', { ciphertext: ct, initializationVector: iv, authenticationTag: Buffer.alloc(15).toString('base64') }],
    ['a ciphertext shorter than the plaintext', { ciphertext: Buffer.alloc(31).toString('base64'), initializationVector: iv, authenticationTag: tag }],
    [
      '21 bytes of ciphertextMetadata',
      { ciphertext: ct, initializationVector: iv, authenticationTag: tag, ciphertextMetadata: Buffer.alloc(21).toString('base64') },
    ],
    ['base64 that is not canonical', { ciphertext: `${ct.slice(0, -1)}!`, initializationVector: iv, authenticationTag: tag }],
  ];
  for (const [what, body] of encryptCases) {
    it(what, async () => {
      await proxy.control({ canned: { status: 200, body: JSON.stringify(body) } });
      const e = await failure(client.encrypt('ext-key-1', Buffer.alloc(32), undefined, md('GenerateDataKey')));
      expect([e.code, e.failure]).toEqual(['KMSInvalidStateException', 'MalformedResponse']);
    });
  }

  it('a decrypt answer whose plaintext length differs from the ciphertext’s', async () => {
    const c = await client.encrypt('ext-key-1', Buffer.alloc(32), undefined, md('Encrypt'));
    await proxy.control({ canned: { status: 200, body: JSON.stringify({ plaintext: Buffer.alloc(31).toString('base64') }) } });
    expect((await failure(client.decrypt('ext-key-1', c, undefined, md('Decrypt')))).failure).toBe('MalformedResponse');
  });
});

describe('XKS client: a proxy that cannot be reached', () => {
  it('every external key manager UNAVAILABLE: XksProxyUriUnreachableException (XKS_PROXY_NOT_REACHABLE)', async () => {
    await proxy.control({ ekmHealth: 'UNAVAILABLE' });
    try {
      const e = await failure(client.health({ kmsOperation: 'ConnectCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual(['XksProxyUriUnreachableException', 'AllKeyManagersUnavailable', 'XKS_PROXY_NOT_REACHABLE']);
    } finally {
      await proxy.control({ reset: true });
    }
  });

  it('nothing listening: XksProxyUriUnreachableException (XKS_PROXY_NOT_REACHABLE), KMSInvalidStateException for Decrypt', async () => {
    // A port that was just free: bound, then closed.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const down = clientFor({ uriEndpoint: `http://127.0.0.1:${port}` });
    try {
      const e = await failure(down.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual(['XksProxyUriUnreachableException', 'ConnectFailed', 'XKS_PROXY_NOT_REACHABLE']);
      expect((await failure(down.keyMetadata('ext-key-1', md('Decrypt')))).code).toBe('KMSInvalidStateException');
    } finally {
      down.close();
    }
  });

  it('https to a proxy that speaks plain HTTP: the TLS handshake fails (XKS_PROXY_INVALID_TLS_CONFIGURATION)', async () => {
    const tls = clientFor({ uriEndpoint: `https://127.0.0.1:${proxy.port}` });
    try {
      const e = await failure(tls.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual(['XksProxyUriUnreachableException', 'TlsFailed', 'XKS_PROXY_INVALID_TLS_CONFIGURATION']);
    } finally {
      tls.close();
    }
  });

  it('a proxy slower than the client’s timeout: XksProxyUriUnreachableException (XKS_PROXY_TIMED_OUT)', async () => {
    const quick = clientFor({ timeoutMs: 100 });
    // The proxy holds the next answer until released; the client gives up first whatever the machine's load.
    await proxy.control({ delayMs: 3000 });
    try {
      const e = await failure(quick.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 'r' }));
      expect([e.code, e.failure, e.connectionErrorCode]).toEqual(['XksProxyUriUnreachableException', 'Timeout', 'XKS_PROXY_TIMED_OUT']);
    } finally {
      await proxy.control({ reset: true });
      quick.close();
    }
  });
});
