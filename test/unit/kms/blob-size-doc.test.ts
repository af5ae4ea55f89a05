import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.js';
import { testKms } from '../../helpers/home.js';

/** docs/format.md's ciphertext blob sizes are the sizes GenerateDataKey gives (it said 148 for a 64-byte key, which is 180). */
describe('docs/format.md blob sizes', () => {
  it('a 64-byte and a 32-byte data key under a UUID key id are the blob sizes the doc gives', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/format.md'), 'utf8').replace(/\s+/g, ' ');
    const m = /A 64-byte data key \(a volume's AES-256-XTS key\) under a UUID key id is a (\d+)-byte blob; a 32-byte one, (\d+)\./.exec(doc);
    expect(m, 'the sentence is in docs/format.md').not.toBeNull();
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const size = (n: number) => kms.invoke('GenerateDataKey', { KeyId: key, NumberOfBytes: n }).CiphertextBlob.length;
    expect([size(64), size(32)]).toEqual([Number(m![1]), Number(m![2])]);
  });
});
