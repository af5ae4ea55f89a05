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

  it('--cli-binary-format raw-in-base64-out takes blob text as it is (AWS CLI v2); base64 stays the default', () => {
    const home = tempHome();
    const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const raw = kmsvol(home, ['kms', 'encrypt', '--key-id', key, '--plaintext', 'hello world', '--cli-binary-format', 'raw-in-base64-out']);
    expect(raw.code, raw.stderr).toBe(0);
    const back = kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', raw.json.CiphertextBlob, '--query', 'Plaintext', '--output', 'text']);
    expect(Buffer.from(back.stdout.trim(), 'base64').toString()).toBe('hello world');
    // Without it, the same text is not base64: the AWS CLI's error.
    expect(kmsvol(home, ['kms', 'encrypt', '--key-id', key, '--plaintext', 'hello world']).code).toBe(252);
    expect(kmsvol(home, ['kms', 'encrypt', '--key-id', key, '--plaintext', 'aGk=', '--cli-binary-format', 'base64']).code).toBe(0);
    expect(kmsvol(home, ['kms', 'list-keys', '--cli-binary-format', 'hex']).code).toBe(252);
  });
});
