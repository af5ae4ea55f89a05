import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedFromFile } from '../../src/kms/seed.js';
import { errorName, tempHome, testKms } from '../helpers/home.js';

/** openssl is the oracle: GenerateMac with a seeded HMAC key equals `openssl mac` with the same key bytes. */
const SPECS = [
  ['HMAC_224', 28, 'SHA224'],
  ['HMAC_256', 32, 'SHA256'],
  ['HMAC_384', 48, 'SHA384'],
  ['HMAC_512', 64, 'SHA512'],
] as const;

describe('GenerateMac and VerifyMac agree with openssl mac', () => {
  it.each(SPECS)('%s (%i-byte key): the MAC of a seeded key equals openssl mac -digest %s', (spec, bytes, digest) => {
    const { kms } = testKms();
    const dir = tempHome('kmsvol-mac-');
    const key = crypto.randomBytes(bytes);
    const id = crypto.randomUUID();
    fs.writeFileSync(path.join(dir, 'seed.yaml'), `Keys:\n  - KeyId: ${id}\n    KeySpec: ${spec}\n    KeyMaterial: ${key.toString('base64')}\n`);
    seedFromFile(kms, path.join(dir, 'seed.yaml'));
    const md = kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata;
    expect(md).toMatchObject({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL', MacAlgorithms: [`HMAC_SHA_${digest.slice(3)}`] });
    const message = crypto.randomBytes(4096);
    fs.writeFileSync(path.join(dir, 'msg'), message);
    const alg = `HMAC_SHA_${digest.slice(3)}`;
    const mac = kms.invoke('GenerateMac', { KeyId: id, Message: message, MacAlgorithm: alg });
    expect(mac.MacAlgorithm).toBe(alg);
    const r = spawnSync('openssl', ['mac', '-digest', digest, '-macopt', `hexkey:${key.toString('hex')}`, '-in', path.join(dir, 'msg'), 'HMAC'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(Buffer.from(mac.Mac).toString('hex').toUpperCase()).toBe(r.stdout.trim());
    expect(kms.invoke('VerifyMac', { KeyId: id, Message: message, MacAlgorithm: alg, Mac: Buffer.from(r.stdout.trim(), 'hex') }).MacValid).toBe(true);
    const bad = Buffer.from(mac.Mac);
    bad[0]! ^= 0x80;
    expect(errorName(() => kms.invoke('VerifyMac', { KeyId: id, Message: message, MacAlgorithm: alg, Mac: bad }))).toBe('KMSInvalidMacException');
    expect(errorName(() => kms.invoke('VerifyMac', { KeyId: id, Message: Buffer.from('other'), MacAlgorithm: alg, Mac: mac.Mac }))).toBe(
      'KMSInvalidMacException',
    );
    expect(errorName(() => kms.invoke('VerifyMac', { KeyId: id, Message: message, MacAlgorithm: alg, Mac: bad.subarray(1) }))).toBe('KMSInvalidMacException');
  });

  it('a generated HMAC key MACs consistently, and another key of the same spec gives another MAC', () => {
    const { kms } = testKms();
    const a = kms.invoke('CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }).KeyMetadata.KeyId;
    const b = kms.invoke('CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }).KeyMetadata.KeyId;
    const m = Buffer.from('message');
    const ma = kms.invoke('GenerateMac', { KeyId: a, Message: m, MacAlgorithm: 'HMAC_SHA_256' }).Mac;
    expect(Buffer.from(kms.invoke('GenerateMac', { KeyId: a, Message: m, MacAlgorithm: 'HMAC_SHA_256' }).Mac)).toEqual(Buffer.from(ma));
    expect(Buffer.from(kms.invoke('GenerateMac', { KeyId: b, Message: m, MacAlgorithm: 'HMAC_SHA_256' }).Mac).equals(Buffer.from(ma))).toBe(false);
    expect(errorName(() => kms.invoke('VerifyMac', { KeyId: b, Message: m, MacAlgorithm: 'HMAC_SHA_256', Mac: ma }))).toBe('KMSInvalidMacException');
  });
});
