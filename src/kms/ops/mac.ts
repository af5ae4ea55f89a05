import crypto from 'node:crypto';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import { algorithmsOf, allows, MAC_ALGORITHMS } from '../keyspec.js';
import type { KeyRow } from '../store.js';
import { blob, oneOf, reqStr } from '../validate.js';

/** GenerateMac and VerifyMac: HMAC (RFC 2104) under an HMAC key's sealed material. */
type Req = Record<string, unknown>;
const MAX_MESSAGE = 4096;
const MAX_MAC = 6144;

function macRequest(req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const message = blob(req, 'Message', 1, MAX_MESSAGE);
  const algorithm = oneOf(req, 'MacAlgorithm', MAC_ALGORITHMS);
  if (!algorithm) throw KmsErrors.validation("1 validation error detected: Value null at 'macAlgorithm' failed to satisfy constraint: Member must not be null");
  return { keyId, message, algorithm };
}

/** Precondition: the MAC algorithm is the key spec's own (HMAC_256 keys compute HMAC_SHA_256). */
function checkAlgorithm(k: KmsContext, row: KeyRow, algorithm: string): void {
  if (!allows(row.key_spec, row.key_usage, algorithm)) {
    throw KmsErrors.invalidKeyUsage(
      `MAC algorithm ${algorithm} is not compatible with ${k.keyArn(row.key_id)} (KeySpec ${row.key_spec}); use ${(algorithmsOf(row.key_spec, row.key_usage).MacAlgorithms ?? []).join(', ')}.`,
    );
  }
}

function hmac(k: KmsContext, row: KeyRow, algorithm: string, message: Buffer): Buffer {
  const hash = `sha${algorithm.slice(-3)}`;
  return k.withCurrentMaterial(row, (key) => crypto.createHmac(hash, key).update(message).digest());
}

export function generateMac(k: KmsContext, req: Req) {
  const { keyId, message, algorithm } = macRequest(req);
  const row = k.usableKey(keyId, { action: 'kms:GenerateMac', conditions: { 'kms:macalgorithm': algorithm } }, 'GENERATE_VERIFY_MAC');
  checkAlgorithm(k, row, algorithm);
  return { Mac: hmac(k, row, algorithm, message), MacAlgorithm: algorithm, KeyId: k.keyArn(row.key_id) };
}

export function verifyMac(k: KmsContext, req: Req) {
  const { keyId, message, algorithm } = macRequest(req);
  const mac = blob(req, 'Mac', 1, MAX_MAC);
  const row = k.usableKey(keyId, { action: 'kms:VerifyMac', conditions: { 'kms:macalgorithm': algorithm } }, 'GENERATE_VERIFY_MAC');
  checkAlgorithm(k, row, algorithm);
  const expected = hmac(k, row, algorithm, message);
  // Precondition: a MAC that does not match is an error, not MacValid false.
  if (mac.length !== expected.length || !crypto.timingSafeEqual(mac, expected)) {
    throw new KmsError('KMSInvalidMacException', `The MAC does not match the message under ${k.keyArn(row.key_id)} with ${algorithm}.`);
  }
  return { KeyId: k.keyArn(row.key_id), MacValid: true, MacAlgorithm: algorithm };
}
