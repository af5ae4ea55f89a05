import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/** `kmsvol kms` for the asymmetric and HMAC operations: AWS CLI argument forms, JSON output, exit codes. */
describe('kmsvol kms with asymmetric and HMAC keys', () => {
  it('create-key, sign with fileb://, verify, get-public-key for openssl; a tampered message exits 254 with KMSInvalidSignatureException', () => {
    const home = tempHome('kmsvol-cli-asym-');
    const dir = tempHome('kmsvol-cli-files-');
    const md = kmsvol(home, ['kms', 'create-key', '--key-spec', 'ECC_NIST_P384', '--key-usage', 'SIGN_VERIFY']).json.KeyMetadata;
    expect(md.SigningAlgorithms).toEqual(['ECDSA_SHA_384']);
    fs.writeFileSync(path.join(dir, 'msg'), 'hello');
    const s = kmsvol(home, ['kms', 'sign', '--key-id', md.KeyId, '--message', `fileb://${path.join(dir, 'msg')}`, '--signing-algorithm', 'ECDSA_SHA_384']);
    expect(s.code, s.stderr).toBe(0);
    expect(Object.keys(s.json).sort()).toEqual(['KeyId', 'Signature', 'SigningAlgorithm']);
    fs.writeFileSync(path.join(dir, 'sig'), Buffer.from(s.json.Signature, 'base64'));
    const pub = kmsvol(home, ['kms', 'get-public-key', '--key-id', md.KeyId, '--query', 'PublicKey', '--output', 'text']);
    fs.writeFileSync(path.join(dir, 'pub.der'), Buffer.from(pub.stdout.trim(), 'base64'));
    const v = spawnSync(
      'openssl',
      ['dgst', '-sha384', '-verify', path.join(dir, 'pub.der'), '-keyform', 'DER', '-signature', path.join(dir, 'sig'), path.join(dir, 'msg')],
      { encoding: 'utf8' },
    );
    expect(v.stdout.trim(), v.stderr).toBe('Verified OK');
    const ok = kmsvol(home, [
      'kms',
      'verify',
      '--key-id',
      md.KeyId,
      '--message',
      `fileb://${path.join(dir, 'msg')}`,
      '--signature',
      `fileb://${path.join(dir, 'sig')}`,
      '--signing-algorithm',
      'ECDSA_SHA_384',
    ]);
    expect(ok.json.SignatureValid).toBe(true);
    fs.writeFileSync(path.join(dir, 'msg'), 'hellO');
    const bad = kmsvol(home, [
      'kms',
      'verify',
      '--key-id',
      md.KeyId,
      '--message',
      `fileb://${path.join(dir, 'msg')}`,
      '--signature',
      `fileb://${path.join(dir, 'sig')}`,
      '--signing-algorithm',
      'ECDSA_SHA_384',
    ]);
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('An error occurred (KMSInvalidSignatureException) when calling the Verify operation');
    const missing = kmsvol(home, ['kms', 'sign', '--key-id', md.KeyId, '--message', 'aGVsbG8=']);
    expect(missing.code).toBe(252);
    expect(missing.stderr).toContain('--signing-algorithm');
  });

  it('generate-mac, verify-mac, generate-data-key-pair, get-key-last-usage and describe-custom-key-stores', () => {
    const home = tempHome('kmsvol-cli-asym-');
    const hmac = kmsvol(home, ['kms', 'create-key', '--key-spec', 'HMAC_224', '--key-usage', 'GENERATE_VERIFY_MAC']).json.KeyMetadata.KeyId;
    const mac = kmsvol(home, ['kms', 'generate-mac', '--key-id', hmac, '--message', 'aGVsbG8=', '--mac-algorithm', 'HMAC_SHA_224']).json;
    expect(Buffer.from(mac.Mac, 'base64')).toHaveLength(28);
    expect(
      kmsvol(home, ['kms', 'verify-mac', '--key-id', hmac, '--message', 'aGVsbG8=', '--mac', mac.Mac, '--mac-algorithm', 'HMAC_SHA_224']).json.MacValid,
    ).toBe(true);
    const bad = kmsvol(home, ['kms', 'verify-mac', '--key-id', hmac, '--message', 'aGVsbE8=', '--mac', mac.Mac, '--mac-algorithm', 'HMAC_SHA_224']);
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('(KMSInvalidMacException)');
    const sym = kmsvol(home, ['kms', 'create-key']).json.KeyMetadata.KeyId;
    const pair = kmsvol(home, ['kms', 'generate-data-key-pair-without-plaintext', '--key-id', sym, '--key-pair-spec', 'ECC_NIST_P256']).json;
    expect(Object.keys(pair).sort()).toEqual(['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PublicKey']);
    const usage = kmsvol(home, ['kms', 'get-key-last-usage', '--key-id', hmac]).json;
    expect(usage.KeyLastUsage.Operation).toBe('VerifyMac');
    expect(kmsvol(home, ['kms', 'describe-custom-key-stores']).json).toEqual({ CustomKeyStores: [], Truncated: false });
    const dry = kmsvol(home, ['kms', 'generate-mac', '--key-id', hmac, '--message', 'aGVsbG8=', '--mac-algorithm', 'HMAC_SHA_224', '--dry-run']);
    expect(dry.code).toBe(254);
    expect(dry.stderr).toContain('(DryRunOperationException)');
  });
});
