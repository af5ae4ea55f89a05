import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KmsOperation, OperationSpec } from '../../../src/kms/operations.js';
import { KMS_REGISTRY, membersOf } from '../../../src/kms/operations.js';
import { testKms } from '../../helpers/home.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 187 ms (test/helpers/timeouts.ts).
fileTimeout(900);

/**
 * Every request member of every operation kmsvol answers, as AWS's models list
 * them (botocore's KMS model from Debian's python3-botocore, and the newer
 * @aws-sdk/client-kms), is either honoured or refused with AWS's error. A
 * member a new model adds fails here until it is sorted into one or the other.
 */
const BOTOCORE = '/usr/lib/python3/dist-packages/botocore/data/kms/2014-11-01/service-2.json';

function botocoreMembers(): Record<string, string[]> {
  const model = JSON.parse(fs.readFileSync(BOTOCORE, 'utf8')) as {
    operations: Record<string, { input?: { shape: string } }>;
    shapes: Record<string, { members?: Record<string, unknown> }>;
  };
  return Object.fromEntries(Object.entries(model.operations).map(([op, o]) => [op, Object.keys(o.input ? (model.shapes[o.input.shape]!.members ?? {}) : {})]));
}

function sdkMembers(): Record<string, string[]> {
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('@aws-sdk/client-kms')), '../dist-types/models');
  const src = fs
    .readdirSync(dir)
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
  const out: Record<string, string[]> = {};
  for (const m of src.matchAll(/export interface (\w+)Request \{([\s\S]*?)\n\}/g)) out[m[1]!] = [...m[2]!.matchAll(/^ {4}(\w+)\??:/gm)].map((x) => x[1]!);
  return out;
}

const spec = (op: KmsOperation): OperationSpec => KMS_REGISTRY[op];

describe('request members against the AWS models', () => {
  const models = { botocore: botocoreMembers(), 'aws-sdk': sdkMembers() };

  it('both models were read (a moved file would silently check nothing)', () => {
    expect(Object.keys(models.botocore).length).toBeGreaterThanOrEqual(50);
    expect(Object.keys(models['aws-sdk']).length).toBeGreaterThanOrEqual(50);
    expect(models['aws-sdk'].Decrypt).toContain('DryRun');
  });

  for (const [name, members] of Object.entries(models)) {
    it(`every ${name} member of every operation kmsvol answers is honoured or refused`, () => {
      const unsorted: string[] = [];
      for (const op of Object.keys(KMS_REGISTRY) as KmsOperation[]) {
        const known = new Set([...membersOf(op), ...Object.keys(spec(op).unsupported ?? {})]);
        for (const m of members[op] ?? []) if (!known.has(m)) unsorted.push(`${op}.${m}`);
      }
      expect(unsorted).toEqual([]);
    });
  }

  it('DryRun is honoured exactly where the SDK model has it', () => {
    const withDryRun = Object.entries(models['aws-sdk'])
      .filter(([, m]) => m.includes('DryRun'))
      .map(([op]) => op)
      .sort();
    const dryRun = (Object.keys(KMS_REGISTRY) as KmsOperation[]).filter((op) => spec(op).dryRun).sort();
    expect(dryRun).toEqual(withDryRun);
  });

  it('each refused member is refused with its AWS error when present', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    for (const op of Object.keys(KMS_REGISTRY) as KmsOperation[]) {
      for (const [member, error] of Object.entries(spec(op).unsupported ?? {})) {
        let name = 'no error';
        try {
          kms.invoke(op, { KeyId: key, [member]: member === 'DryRunModifiers' ? ['IGNORE_CIPHERTEXT'] : 'x' });
        } catch (e) {
          name = (e as Error).name;
        }
        expect(name, `${op}.${member}`).toBe(error('x').name);
      }
    }
  });
});
