import fs from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../../src/api.js';
import { memberNames } from '../../../src/ec2/operation.js';
import { OPERATIONS } from '../../../src/ec2/operations.js';
import { checkFilterLimits, MAX_FILTER_VALUES, MAX_FILTERS, PAGE_SIZES, paginate, wildcardMatch } from '../../../src/volume/filters.js';

/**
 * EC2's Describe limits (issue 24, findings 5 and 8): 50 filters of 200
 * values, refused before any work with FilterLimitExceeded; MaxResults as
 * botocore's EC2 model documents it for each operation; wildcard matching
 * that cannot be made to backtrack.
 */
const open: Kmsvol[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const filters = (n: number, values: number) =>
  Array.from({ length: n }, (_, i) => ({ Name: `tag:k${i}`, Values: Array.from({ length: values }, (_, j) => `v${j}`) }));

describe('Precondition: at most 50 filters, each with at most 200 values', () => {
  it('50 × 200 passes; 51 filters, or 201 values in one filter, is FilterLimitExceeded naming the limit', () => {
    expect(() => checkFilterLimits(filters(MAX_FILTERS, MAX_FILTER_VALUES))).not.toThrow();
    expect(() => checkFilterLimits(filters(51, 1))).toThrow(
      expect.objectContaining({ name: 'FilterLimitExceeded', message: expect.stringContaining('51 were given; the limit is 50 filters') }),
    );
    expect(() => checkFilterLimits([...filters(3, 1), ...filters(1, 201)])).toThrow(
      expect.objectContaining({ name: 'FilterLimitExceeded', message: expect.stringContaining('filter 4 has 201; the limit is 200 values per filter') }),
    );
  });

  it('DescribeVolumes through the TypeScript API (no endpoint) is refused the same way', async () => {
    const kv = Kmsvol.open({ region: 'us-east-1' });
    open.push(kv);
    await expect(kv.describeVolumes({ Filters: filters(1, 201) })).rejects.toMatchObject({ name: 'FilterLimitExceeded' });
    await expect(kv.describeVolumes({ Filters: filters(50, 200) })).resolves.toMatchObject({ Volumes: [] });
  });
});

describe('EC2 wildcards', () => {
  /** The obvious definition, as a regular expression (fine for short inputs). */
  const reference = (p: string, t: string) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    ).test(t);

  it('wildcardMatch agrees with the regular-expression definition of * and ? (fast-check, alphabet a b * ? .)', () => {
    const s = (chars: string[]) => fc.array(fc.constantFrom(...chars), { maxLength: 12 }).map((a) => a.join(''));
    fc.assert(
      fc.property(s(['a', 'b', '*', '?', '.']), s(['a', 'b', '.', '*']), (p, t) => wildcardMatch(p, t) === reference(p, t)),
      { numRuns: 5000, seed: 24 },
    );
  });

  it('a pattern of 100 stars between letters against 256 characters answers (the regular expression would backtrack for ages)', () => {
    expect(wildcardMatch(`${'*a'.repeat(100)}b`, 'a'.repeat(256))).toBe(false);
    expect(wildcardMatch(`${'*a'.repeat(100)}*`, 'a'.repeat(256))).toBe(true);
  });
});

describe('MaxResults, from the model', () => {
  const MODEL = '/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15/service-2.json';
  const model = JSON.parse(fs.readFileSync(MODEL, 'utf8'));
  const doc = (op: string) => {
    const input = model.shapes[model.operations[op].input.shape];
    return String(input.members.MaxResults.documentation).replace(/<[^>]+>/g, '');
  };

  it('every EC2 action with MaxResults has a PAGE_SIZES entry, whose range and above-the-maximum rule are what botocore documents', () => {
    const paged = Object.entries(OPERATIONS)
      .filter(([, op]) => memberNames(op).includes('MaxResults'))
      .map(([name]) => name)
      .sort();
    expect(Object.keys(PAGE_SIZES).sort()).toEqual(paged);
    for (const [op, size] of Object.entries(PAGE_SIZES)) {
      const d = doc(op);
      const between = /between (\d[\d,]*) and (\d[\d,]*)/.exec(d);
      const upTo = /up to a limit of (\d[\d,]*)/.exec(d);
      const n = (s: string) => Number(s.replace(/,/g, ''));
      if (between) expect({ op, min: size.min, max: size.max }).toEqual({ op, min: n(between[1]!), max: n(between[2]!) });
      else expect({ op, max: size.max }).toEqual({ op, max: n(upTo![1]!) });
      const clamps = /larger than [\d,]+, only [\d,]+ results are returned/.test(d) || !!upTo;
      expect({ op, above: size.above }).toEqual({ op, above: clamps ? 'clamp' : 'refuse' });
    }
  });

  it('below the minimum is InvalidParameterValue; above the maximum, DescribeVolumes answers 500 and DescribeTags refuses', () => {
    const rows = Array.from({ length: 1200 }, (_, i) => i);
    const byValue = (i: number) => [i];
    expect(() => paginate(rows, { MaxResults: 4 }, 'DescribeVolumes', byValue)).toThrow(
      expect.objectContaining({ name: 'InvalidParameterValue', message: expect.stringMatching(/^Value \( 4 \) for parameter maxResults is invalid\./) }),
    );
    expect(paginate(rows, { MaxResults: 100000 }, 'DescribeVolumes', byValue).page).toHaveLength(500);
    expect(() => paginate(rows, { MaxResults: 1001 }, 'DescribeTags', byValue)).toThrow(
      expect.objectContaining({ name: 'InvalidParameterValue', message: expect.stringContaining('less than or equal to 1000') }),
    );
    expect(paginate(rows, { MaxResults: 1000 }, 'DescribeTags', byValue).page).toHaveLength(1000);
  });
});
