import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KMS_REGISTRY as REGISTRY } from '../../../src/kms/operations.js';
import { LIMITS } from '../../../src/kms/validate.js';
import { testKms } from '../../helpers/home.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 199 ms (test/helpers/timeouts.ts).
fileTimeout(950);

/**
 * Finding 8 of issue 24 (MaxResults): every paged KMS operation bounds
 * Limit as AWS does. The table is held against botocore's KMS model (Debian's
 * python3-botocore): the range its documentation states ("it must be between
 * 1 and 100, inclusive ... it defaults to 50"), else the LimitType's.
 */
const MODEL = '/usr/lib/python3/dist-packages/botocore/data/kms/2014-11-01/service-2.json';
const model = JSON.parse(fs.readFileSync(MODEL, 'utf8')) as {
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, { members?: Record<string, { shape: string; documentation?: string }>; min?: number; max?: number }>;
};

function modelLimit(op: string): { min: number; max: number; default?: number } | undefined {
  const input = model.operations[op]?.input;
  const member = input && model.shapes[input.shape]!.members?.Limit;
  if (!member) return undefined;
  const shape = model.shapes[member.shape]!;
  const doc = (member.documentation ?? '').replace(/<[^>]+>/g, '');
  const range = /must be between (\d+) and (\d+), inclusive/.exec(doc);
  const def = /defaults to (\d+)/.exec(doc);
  return {
    min: range ? Number(range[1]) : shape.min!,
    max: range ? Number(range[2]) : shape.max!,
    ...(def ? { default: Number(def[1]) } : {}),
  };
}

describe('KMS Limit, from the model', () => {
  it('every registry operation with a Limit member has a LIMITS entry, and every entry matches the range and default botocore documents', () => {
    const paged = Object.entries(REGISTRY)
      .filter(([, spec]) => (spec.members as readonly string[]).includes('Limit'))
      .map(([op]) => op)
      .sort();
    expect(Object.keys(LIMITS).sort()).toEqual(paged);
    let checked = 0;
    for (const [op, limits] of Object.entries(LIMITS)) {
      const m = modelLimit(op);
      // ListKeyRotations is newer than Debian's botocore; AWS documents it as 1 to 1000, default 100.
      if (!m) {
        expect(op).toBe('ListKeyRotations');
        continue;
      }
      checked++;
      expect({ op, min: 1, max: limits.max }).toEqual({ op, min: m.min, max: m.max });
      if (m.default !== undefined) expect({ op, default: limits.default }).toEqual({ op, default: m.default });
    }
    expect(checked).toBeGreaterThanOrEqual(7);
  });

  it("Precondition: Limit outside the operation's range is a ValidationException in AWS's words, before the key is looked up", () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const refused = (op: string, req: Record<string, unknown>) => {
      try {
        kms.invoke(op as 'ListKeys', req);
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
      return 'succeeded';
    };
    expect(refused('ListAliases', { Limit: 101 })).toBe(
      "ValidationException: 1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100",
    );
    expect(refused('ListKeyPolicies', { KeyId: key, Limit: 1001 })).toMatch(/^ValidationException: .*less than or equal to 1000$/);
    expect(refused('ListKeyPolicies', { KeyId: key, Limit: 0 })).toMatch(/^ValidationException: .*greater than or equal to 1$/);
    expect(refused('ListKeyPolicies', { KeyId: '00000000-0000-4000-8000-000000000000', Limit: 0 })).toMatch(/^ValidationException/);
    expect(refused('ListResourceTags', { KeyId: key, Limit: 51 })).toMatch(/^ValidationException: .*less than or equal to 50$/);
    expect(refused('ListKeys', { Limit: 1001 })).toMatch(/^ValidationException: .*less than or equal to 1000$/);
    expect(refused('ListKeys', { Limit: 1000 })).toBe('succeeded');
    expect(refused('ListAliases', { Limit: 100 })).toBe('succeeded');
    expect(kms.invoke('ListKeyPolicies', { KeyId: key, Limit: 1 })).toEqual({ PolicyNames: ['default'], Truncated: false });
  });
});
