import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/** kmsvol kms with the AWS CLI's own options: pagination, --cli-input-json/yaml, --generate-cli-skeleton, --output yaml. */
describe('kmsvol kms with the AWS CLI options', () => {
  it('list-keys pages as the AWS CLI does; --cli-input-json/yaml give the request; the skeleton lists the members', () => {
    const home = tempHome();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim());
    const all = kmsvol(home, ['kms', 'list-keys', '--page-size', '3']).json;
    expect(all.Keys.map((k: { KeyId: string }) => k.KeyId).sort()).toEqual([...ids].sort());
    expect([all.NextMarker, all.Truncated, all.NextToken]).toEqual([undefined, undefined, undefined]);
    const seen: string[] = [];
    let token: string | undefined;
    for (let round = 0; round < 5; round++) {
      const r = kmsvol(home, ['kms', 'list-keys', '--max-items', '3', '--page-size', '2', ...(token ? ['--starting-token', token] : [])]).json;
      seen.push(...r.Keys.map((k: { KeyId: string }) => k.KeyId));
      token = r.NextToken;
      if (!token) break;
    }
    expect(seen).toEqual(all.Keys.map((k: { KeyId: string }) => k.KeyId));
    expect(kmsvol(home, ['kms', 'list-keys', '--no-paginate', '--limit', '4']).json).toMatchObject({ Truncated: true });

    const skeleton = JSON.parse(kmsvol(home, ['kms', 'encrypt', '--generate-cli-skeleton']).stdout);
    expect(Object.keys(skeleton)).toEqual(['KeyId', 'Plaintext', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm', 'DryRun']);
    const enc = kmsvol(home, [
      'kms',
      'encrypt',
      '--cli-input-json',
      JSON.stringify({ KeyId: ids[0], Plaintext: Buffer.from('hello').toString('base64'), EncryptionContext: { app: 'web' } }),
    ]);
    expect(enc.code, enc.stderr).toBe(0);
    const dec = kmsvol(home, [
      'kms',
      'decrypt',
      '--cli-input-yaml',
      `CiphertextBlob: ${enc.json.CiphertextBlob}\nEncryptionContext:\n  app: web\n`,
      '--output',
      'yaml',
    ]);
    expect(Buffer.from(YAML.parse(dec.stdout).Plaintext, 'base64').toString()).toBe('hello');
    const missing = kmsvol(home, ['kms', 'encrypt', '--cli-input-yaml', 'Plaintext: aGVsbG8=']);
    expect([missing.code, missing.stderr.includes('the following arguments are required: --key-id')]).toEqual([252, true]);
    const unknown = kmsvol(home, ['kms', 'encrypt', '--cli-input-json', '{"KeyID": "x"}']);
    expect([unknown.code, unknown.stderr.includes('Unknown parameter in input: "KeyID"')]).toEqual([252, true]);
  });
});
