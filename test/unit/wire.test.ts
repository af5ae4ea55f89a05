import { describe, expect, it } from 'vitest';
import { isoMicros } from '../../src/cli/output.js';
import { toJsonWire } from '../../src/server/kms.js';
import { epochSeconds, toWire } from '../../src/wire.js';

describe('the one walk from library values to the wire', () => {
  const value = {
    CreationDate: new Date('2030-01-02T03:04:05.678Z'),
    CiphertextBlob: new Uint8Array([1, 2, 3]),
    Gone: undefined,
    Grants: [{ Constraints: { EncryptionContextSubset: JSON.parse('{"__proto__":"kept","a":"b"}') } }],
  };

  it('blobs are base64, undefined members are dropped, dates take the encoding of the wire: the CLI prints ISO with microseconds, the KMS endpoint epoch seconds', () => {
    const common = { CiphertextBlob: 'AQID', Grants: [{ Constraints: { EncryptionContextSubset: JSON.parse('{"__proto__":"kept","a":"b"}') } }] };
    expect(toWire(value, isoMicros)).toStrictEqual({ CreationDate: '2030-01-02T03:04:05.678000+00:00', ...common });
    expect(toJsonWire(value)).toStrictEqual({ CreationDate: 1893553445.678, ...common });
    expect(toWire(value, epochSeconds)).toStrictEqual(toJsonWire(value));
  });

  it('a member named __proto__ (an encryption context key) stays a member', () => {
    const out = toWire(value, isoMicros) as { Grants: { Constraints: { EncryptionContextSubset: Record<string, string> } }[] };
    const ctx = out.Grants[0]!.Constraints.EncryptionContextSubset;
    expect(Object.keys(ctx)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(ctx)).toBe(Object.prototype);
  });
});
