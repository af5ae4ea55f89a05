import { describe, expect, it } from 'vitest';
import type { CardSpec } from '../../../src/card/spec.js';
import { CARD_ENV, cardEnvironment, parseCardSpec, serializeCardSpec } from '../../../src/card/spec.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 46 ms (test/helpers/timeouts.ts).
fileTimeout(230);

const spec: CardSpec = {
  version: 1,
  home: '/root/.kmsvol',
  rootKeyFile: '/root/.kmsvol/root.key',
  volumeId: 'vol-0123456789abcdef0',
  mountDir: '/root/.kmsvol/run/vol-0123456789abcdef0',
  loop: true,
  region: 'eu-west-1',
  account: '111122223333',
  now: '2030-01-01T00:00:00.000Z',
  kms: {
    kind: 'remote',
    endpoint: 'http://127.0.0.1:4599',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'ASIAX', secretAccessKey: 's', sessionToken: 't' },
  },
  grantToken: 'kmsvolgt1.token',
};

describe('the card spec', () => {
  it('round-trips through its JSON document, member for member', () => {
    expect(parseCardSpec(serializeCardSpec(spec))).toEqual(spec);
    const embedded = { ...spec, kms: { kind: 'embedded' as const } };
    delete (embedded as Partial<CardSpec>).now;
    delete (embedded as Partial<CardSpec>).grantToken;
    expect(parseCardSpec(serializeCardSpec(embedded))).toEqual(embedded);
  });

  it('Precondition: every member is present and of its type; unknown members are refused', () => {
    const bad = (change: Record<string, unknown>) => () => parseCardSpec(JSON.stringify({ ...spec, ...change }));
    expect(() => parseCardSpec('vol-0123456789abcdef0')).toThrow("The card's spec is not valid: it is not one JSON document.");
    expect(bad({ version: 2 })).toThrow('version must be 1, not 2. The kmsvol that started this card and the card it runs (card/main.js) are different builds');
    expect(bad({ version: 0 })).toThrow('version must be 1, not 0.');
    expect(bad({ version: undefined })).toThrow('version must be 1, not undefined.');
    // Both ways: the parent never writes a version its card would refuse.
    expect(() => serializeCardSpec({ ...spec, version: 2 } as unknown as CardSpec)).toThrow('version must be 1, not 2.');
    expect(bad({ region: '' })).toThrow('region must be a non-empty string.');
    expect(bad({ account: undefined })).toThrow('account must be a non-empty string.');
    expect(bad({ volumeId: '../../etc' })).toThrow('volumeId "../../etc" is not a volume id');
    expect(bad({ loop: '1' })).toThrow('loop must be true or false.');
    expect(bad({ now: 'yesterday' })).toThrow('now "yesterday" is not an ISO date.');
    expect(bad({ kms: { kind: 'aws' } })).toThrow('kms.kind must be "embedded" or "remote", not "aws".');
    expect(bad({ kms: { kind: 'remote', region: 'eu-west-1', credentials: { accessKeyId: 'A' } } })).toThrow(
      'kms.credentials.secretAccessKey must be a non-empty string.',
    );
    expect(bad({ grantToken: 7 })).toThrow('grantToken must be a non-empty string.');
    expect(bad({ AWS_SECRET_ACCESS_KEY: 'x' })).toThrow('unknown member(s) AWS_SECRET_ACCESS_KEY.');
    expect(() => parseCardSpec('[]')).toThrow('the spec must be an object.');
  });

  it("the card's environment is the short list only: no credential, token or KMS choice passes", () => {
    const env = {
      PATH: '/usr/bin',
      LD_PRELOAD: '/tmp/shim.so',
      KMSVOL_XTS_BACKEND: 'aesni',
      AWS_ACCESS_KEY_ID: 'AKIA',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
      AWS_PROFILE: 'p',
      KMSVOL_KMS: 'aws',
      KMSVOL_KMS_ENDPOINT: 'http://x',
      AWS_ENDPOINT_URL_KMS: 'http://x',
      KMSVOL_REGION: 'r',
      KMSVOL_NOW: '2030-01-01T00:00:00Z',
      KMSVOL_HOME: '/h',
    };
    expect(cardEnvironment(env)).toEqual({ PATH: '/usr/bin', LD_PRELOAD: '/tmp/shim.so', KMSVOL_XTS_BACKEND: 'aesni' });
    expect(CARD_ENV.filter((k) => /KEY|SECRET|TOKEN|PROFILE|ENDPOINT/.test(k))).toEqual([]);
  });
});
