// In-process KMS with asymmetric and HMAC keys, ops/s, on a real home (SQLite
// store, root-key sealing, audit log): each call unseals the key's material and
// builds its OpenSSL key object, as the operations do.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Benchmark from 'benchmark';
import { Kms } from '../dist/kms/kms.js';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-asym-'));
const kms = Kms.open({ home });
try {
  const mk = (KeySpec, KeyUsage) => kms.invoke('CreateKey', { KeySpec, KeyUsage }).KeyMetadata.KeyId;
  const rsaSig = mk('RSA_2048', 'SIGN_VERIFY');
  const rsaEnc = mk('RSA_2048', 'ENCRYPT_DECRYPT');
  const ec = mk('ECC_NIST_P256', 'SIGN_VERIFY');
  const ecdh = mk('ECC_NIST_P256', 'KEY_AGREEMENT');
  const hmac = mk('HMAC_256', 'GENERATE_VERIFY_MAC');
  const sym = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const msg = Buffer.from('benchmark message');
  const digest = crypto.createHash('sha256').update(msg).digest();
  const ecSig = kms.invoke('Sign', { KeyId: ec, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }).Signature;
  const rsaCt = kms.invoke('Encrypt', { KeyId: rsaEnc, Plaintext: msg, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }).CiphertextBlob;
  const peer = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
  const results = {};
  const opts = { maxTime: 2 };
  new Benchmark.Suite()
    .add('Sign RSA_2048 RSASSA_PSS_SHA_256', () => kms.invoke('Sign', { KeyId: rsaSig, Message: msg, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }), opts)
    .add('Sign ECC_NIST_P256 RAW', () => kms.invoke('Sign', { KeyId: ec, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }), opts)
    .add('Sign ECC_NIST_P256 DIGEST', () => kms.invoke('Sign', { KeyId: ec, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }), opts)
    .add('Verify ECC_NIST_P256', () => kms.invoke('Verify', { KeyId: ec, Message: msg, Signature: ecSig, SigningAlgorithm: 'ECDSA_SHA_256' }), opts)
    .add(
      'Decrypt RSA_2048 RSAES_OAEP_SHA_256',
      () => kms.invoke('Decrypt', { KeyId: rsaEnc, CiphertextBlob: rsaCt, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }).Plaintext.fill(0),
      opts,
    )
    .add('GenerateMac HMAC_256', () => kms.invoke('GenerateMac', { KeyId: hmac, Message: msg, MacAlgorithm: 'HMAC_SHA_256' }), opts)
    .add(
      'DeriveSharedSecret ECC_NIST_P256',
      () => kms.invoke('DeriveSharedSecret', { KeyId: ecdh, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }).SharedSecret.fill(0),
      opts,
    )
    .add(
      'GenerateDataKeyPairWithoutPlaintext ECC_NIST_P256',
      () => kms.invoke('GenerateDataKeyPairWithoutPlaintext', { KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' }),
      opts,
    )
    .on('cycle', (e) => {
      results[e.target.name] = Math.round(e.target.hz);
      if (!json) console.log(String(e.target));
    })
    .run();
  const out = { machine: machine(), opsPerSecond: results };
  if (json) console.log(JSON.stringify(out));
  else printMachine(out.machine);
} finally {
  kms.close();
  fs.rmSync(home, { recursive: true, force: true });
}
