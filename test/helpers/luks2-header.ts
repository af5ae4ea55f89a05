import crypto from 'node:crypto';
import { CIPHER, encodeHeader, PAYLOAD_OFFSET } from '../../src/volume/luks2.js';

/** A valid kmsvol LUKS2 header (both copies) for vol-0123456789abcdef0, with a random digest: the base the header tests change. */
export function sampleHeader(): Buffer {
  return encodeHeader({
    uuid: crypto.randomUUID(),
    label: 'vol-0123456789abcdef0',
    token: {
      volumeId: 'vol-0123456789abcdef0',
      keyArn: 'arn:aws:kms:us-east-1:000000000000:key/k',
      ciphertextBlob: 'AAAA',
      encryptionContext: { 'aws:ebs:id': 'vol-0123456789abcdef0' },
    },
    digest: { hash: 'sha256', salt: crypto.randomBytes(32), digest: crypto.randomBytes(32), iterations: 1000 },
    payloadOffset: PAYLOAD_OFFSET,
    segmentSize: null,
    sectorSize: 4096,
    cipher: CIPHER,
  });
}
