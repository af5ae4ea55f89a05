import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/kms/audit.js';
import { Kms } from '../../../src/kms/kms.js';
import { errorName, HOUR, onCleanup, testKms } from '../../helpers/home.js';

describe('GetKeyLastUsage', () => {
  it('tracks the last successful cryptographic operation per key, with the audit event id, across reopening the store', () => {
    const { kms, clock, home } = testKms();
    const sym = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const sig = kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }).KeyMetadata.KeyId;
    const fresh = kms.invoke('GetKeyLastUsage', { KeyId: sym });
    expect(fresh.KeyLastUsage).toEqual({});
    expect(fresh.KeyCreationDate).toEqual(new Date('2030-01-01T00:00:00Z'));
    expect(fresh.TrackingStartDate).toEqual(fresh.KeyCreationDate);
    // Non-cryptographic calls and failed calls are not uses.
    kms.invoke('DescribeKey', { KeyId: sig });
    kms.invoke('GetPublicKey', { KeyId: sig });
    expect(errorName(() => kms.invoke('Sign', { KeyId: sig, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_512' }))).toBe('InvalidKeyUsageException');
    expect(kms.invoke('GetKeyLastUsage', { KeyId: sig }).KeyLastUsage).toEqual({});
    clock.advance(HOUR);
    kms.invoke('Sign', { KeyId: sig, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' });
    const blob = kms.invoke('Encrypt', { KeyId: sym, Plaintext: Buffer.from('p') }).CiphertextBlob;
    clock.advance(HOUR);
    kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.fill(0);
    const used = kms.invoke('GetKeyLastUsage', { KeyId: sym }).KeyLastUsage;
    expect(used).toMatchObject({ Operation: 'Decrypt', Timestamp: new Date('2030-01-01T02:00:00Z') });
    kms.flushAudit();
    const decrypts = AuditLog.read(kms.home.auditLog).filter((r) => r.eventName === 'Decrypt');
    expect(used.CloudTrailEventId).toBe(decrypts.at(-1)!.eventID);
    expect(used.KmsRequestId).toBe(decrypts.at(-1)!.requestID);
    // ReEncrypt uses both keys.
    const other = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    clock.advance(HOUR);
    kms.invoke('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: other });
    expect(kms.invoke('GetKeyLastUsage', { KeyId: sym }).KeyLastUsage.Operation).toBe('ReEncrypt');
    expect(kms.invoke('GetKeyLastUsage', { KeyId: other }).KeyLastUsage.Operation).toBe('ReEncrypt');
    // Another process (a new Kms on the same home) sees what this one recorded, once it is closed.
    clock.advance(HOUR);
    const s = kms.invoke('Sign', { KeyId: sig, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }).Signature;
    kms.invoke('Verify', { KeyId: sig, Message: Buffer.from('m'), Signature: s, SigningAlgorithm: 'ECDSA_SHA_256' });
    kms.close();
    const again = Kms.open({ home, clock });
    onCleanup(() => again.close());
    expect(again.invoke('GetKeyLastUsage', { KeyId: sig }).KeyLastUsage).toMatchObject({ Operation: 'Verify', Timestamp: new Date('2030-01-01T04:00:00Z') });
    expect(again.invoke('GetKeyLastUsage', { KeyId: sym }).KeyLastUsage).toMatchObject({ Operation: 'ReEncrypt', Timestamp: new Date('2030-01-01T03:00:00Z') });
    // Alias names are refused, as AWS refuses them here.
    expect(errorName(() => again.invoke('GetKeyLastUsage', { KeyId: 'alias/x' }))).toBe('NotFoundException');
  });
});
