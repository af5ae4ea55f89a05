import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseBlob } from '../../../src/kms/blob.js';
import type { Kms } from '../../../src/kms/kms.js';
import { DAY, errorName, HOUR, testKms } from '../../helpers/home.js';

function newKey(kms: Kms): string {
  return kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
}

function stateOf(kms: Kms, key: string): string {
  return kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.KeyState;
}

/** Put a key into each state the table needs. */
function keyIn(kms: Kms, state: string): string {
  if (state === 'PendingImport') return kms.invoke('CreateKey', { Origin: 'EXTERNAL' }).KeyMetadata.KeyId;
  const key = newKey(kms);
  if (state === 'Disabled') kms.invoke('DisableKey', { KeyId: key });
  if (state === 'PendingDeletion') kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
  return key;
}

describe('key-state machine: cryptographic operations by state', () => {
  const ops: [string, (kms: Kms, key: string, blob: Buffer) => unknown][] = [
    ['Encrypt', (kms, key) => kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x') })],
    ['Decrypt', (kms, _key, blob) => kms.invoke('Decrypt', { CiphertextBlob: blob })],
    ['GenerateDataKey', (kms, key) => kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256' })],
    ['GenerateDataKeyWithoutPlaintext', (kms, key) => kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64 })],
    ['ReEncrypt (as destination)', (kms, key, blob) => kms.invoke('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: key })],
  ];
  const expected: Record<string, string> = {
    Enabled: 'ok',
    Disabled: 'DisabledException',
    PendingDeletion: 'KMSInvalidStateException',
    PendingImport: 'KMSInvalidStateException',
  };
  for (const [state, want] of Object.entries(expected)) {
    for (const [name, op] of ops) {
      it(`${name} on a ${state} key: ${want}`, () => {
        const { kms } = testKms();
        const other = newKey(kms);
        const key = keyIn(kms, state);
        // Decrypt needs a blob of the key under test, made while the key was usable.
        let blob = kms.invoke('Encrypt', { KeyId: other, Plaintext: Buffer.from('x') }).CiphertextBlob;
        if (name === 'Decrypt') {
          if (state === 'PendingImport') {
            // Material imported, a blob made, then the material deleted: the key is PendingImport again.
            const ext = kms.invoke('CreateKey', { Origin: 'EXTERNAL' }).KeyMetadata.KeyId;
            const p = kms.invoke('GetParametersForImport', { KeyId: ext, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
            const pub = crypto.createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' });
            const wrapped = crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, crypto.randomBytes(32));
            kms.invoke('ImportKeyMaterial', {
              KeyId: ext,
              ImportToken: p.ImportToken,
              EncryptedKeyMaterial: wrapped,
              ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
            });
            blob = kms.invoke('Encrypt', { KeyId: ext, Plaintext: Buffer.from('x') }).CiphertextBlob;
            kms.invoke('DeleteImportedKeyMaterial', { KeyId: ext });
            expect(kms.invoke('DescribeKey', { KeyId: ext }).KeyMetadata.KeyState).toBe('PendingImport');
          } else {
            const k2 = newKey(kms);
            blob = kms.invoke('Encrypt', { KeyId: k2, Plaintext: Buffer.from('x') }).CiphertextBlob;
            if (state === 'Disabled') kms.invoke('DisableKey', { KeyId: k2 });
            if (state === 'PendingDeletion') kms.invoke('ScheduleKeyDeletion', { KeyId: k2, PendingWindowInDays: 7 });
          }
        }
        if (want === 'ok') {
          expect(() => op(kms, key, blob)).not.toThrow();
        } else {
          expect(errorName(() => op(kms, key, blob))).toBe(want);
        }
      });
    }
  }

  it('messages are worded as AWS words them', () => {
    const { kms } = testKms();
    const d = keyIn(kms, 'Disabled');
    const p = keyIn(kms, 'PendingDeletion');
    const arn = (k: string) => kms.ctx.keyArn(k);
    expect(() => kms.invoke('Encrypt', { KeyId: d, Plaintext: Buffer.from('x') })).toThrow(`${arn(d)} is disabled.`);
    expect(() => kms.invoke('Encrypt', { KeyId: p, Plaintext: Buffer.from('x') })).toThrow(`${arn(p)} is pending deletion.`);
  });
});

describe('key-state machine: transitions', () => {
  const table: [string, string, string][] = [
    // [from, operation, resulting state or exception]
    ['Enabled', 'DisableKey', 'Disabled'],
    ['Enabled', 'EnableKey', 'Enabled'],
    ['Enabled', 'ScheduleKeyDeletion', 'PendingDeletion'],
    ['Enabled', 'CancelKeyDeletion', 'KMSInvalidStateException'],
    ['Disabled', 'EnableKey', 'Enabled'],
    ['Disabled', 'DisableKey', 'Disabled'],
    ['Disabled', 'ScheduleKeyDeletion', 'PendingDeletion'],
    ['PendingDeletion', 'CancelKeyDeletion', 'Disabled'],
    ['PendingDeletion', 'EnableKey', 'KMSInvalidStateException'],
    ['PendingDeletion', 'DisableKey', 'KMSInvalidStateException'],
    ['PendingDeletion', 'ScheduleKeyDeletion', 'KMSInvalidStateException'],
    ['PendingImport', 'EnableKey', 'KMSInvalidStateException'],
    ['PendingImport', 'DisableKey', 'KMSInvalidStateException'],
    ['PendingImport', 'ScheduleKeyDeletion', 'PendingDeletion'],
  ];
  for (const [from, op, to] of table) {
    it(`${from} --${op}--> ${to}`, () => {
      const { kms } = testKms();
      const key = keyIn(kms, from);
      const call = () => kms.invoke(op as 'EnableKey', { KeyId: key, ...(op === 'ScheduleKeyDeletion' ? { PendingWindowInDays: 7 } : {}) });
      if (to.endsWith('Exception')) expect(errorName(call)).toBe(to);
      else {
        call();
        expect(stateOf(kms, key)).toBe(to);
      }
    });
  }

  it('a PendingImport key whose deletion is cancelled goes back to PendingImport', () => {
    const { kms } = testKms();
    const key = keyIn(kms, 'PendingImport');
    kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
    kms.invoke('CancelKeyDeletion', { KeyId: key });
    expect(stateOf(kms, key)).toBe('PendingImport');
  });
});

describe('deletion window', () => {
  it('PendingWindowInDays is 7 to 30, default 30, and DeletionDate is returned', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    expect(errorName(() => kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 6 }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 31 }))).toBe('ValidationException');
    const r = kms.invoke('ScheduleKeyDeletion', { KeyId: key });
    expect(r.PendingWindowInDays).toBe(30);
    expect(r.KeyState).toBe('PendingDeletion');
    expect(r.DeletionDate.getTime()).toBe(clock.now().getTime() + 30 * DAY);
    expect(kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.DeletionDate?.getTime()).toBe(r.DeletionDate.getTime());
  });

  it('schedule 7 days; +6d23h decrypt is KMSInvalidState; cancel leaves Disabled; enable works; reschedule; +7d NotFound for good', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    kms.invoke('CreateAlias', { AliasName: 'alias/doomed', TargetKeyId: key });
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('data') }).CiphertextBlob;

    kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
    clock.advance(6 * DAY + 23 * HOUR);
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('KMSInvalidStateException');

    kms.invoke('CancelKeyDeletion', { KeyId: key });
    expect(stateOf(kms, key)).toBe('Disabled');
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('DisabledException');
    kms.invoke('EnableKey', { KeyId: key });
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('data');

    kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
    clock.advance(7 * DAY);
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('DescribeKey', { KeyId: key }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('CancelKeyDeletion', { KeyId: key }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: 'alias/doomed', Plaintext: Buffer.from('x') }))).toBe('NotFoundException');
    expect(kms.invoke('ListKeys', {}).Keys.map((k) => k.KeyId)).not.toContain(key);
    expect(kms.invoke('ListAliases', {}).Aliases.map((a) => a.AliasName)).not.toContain('alias/doomed');
    // Gone for good: moving the clock back does not resurrect it.
    clock.advance(-30 * DAY);
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('NotFoundException');
    // and no material is left in the store
    expect(kms.ctx.store.materials(key)).toHaveLength(0);
  });
});

describe('rotation', () => {
  it('RotationPeriodInDays is 90 to 2560, default 365, with NextRotationDate', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    expect(errorName(() => kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 89 }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 2561 }))).toBe('ValidationException');
    kms.invoke('EnableKeyRotation', { KeyId: key });
    const s = kms.invoke('GetKeyRotationStatus', { KeyId: key });
    expect(s.KeyRotationEnabled).toBe(true);
    expect(s.RotationPeriodInDays).toBe(365);
    expect(s.NextRotationDate?.getTime()).toBe(clock.now().getTime() + 365 * DAY);
    kms.invoke('DisableKeyRotation', { KeyId: key });
    expect(kms.invoke('GetKeyRotationStatus', { KeyId: key }).KeyRotationEnabled).toBe(false);
  });

  it('90-day rotation: at +91 days old blobs decrypt, new blobs use new material, ListKeyRotations shows it', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 90 });
    const before = kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.CurrentKeyMaterialId;
    const oldBlob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('old') }).CiphertextBlob;
    expect(kms.invoke('ListKeyRotations', { KeyId: key }).Rotations).toHaveLength(0);

    clock.advance(91 * DAY);
    expect(kms.invoke('Decrypt', { CiphertextBlob: oldBlob }).Plaintext.toString()).toBe('old');
    const after = kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.CurrentKeyMaterialId;
    expect(after).not.toBe(before);
    const newBlob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('new') }).CiphertextBlob;
    expect(parseBlob(newBlob).materialId.toString('hex')).toBe(after);
    expect(parseBlob(oldBlob).materialId.toString('hex')).toBe(before);
    const rotations = kms.invoke('ListKeyRotations', { KeyId: key }).Rotations;
    expect(rotations).toHaveLength(1);
    expect(rotations[0]!.RotationType).toBe('AUTOMATIC');
    expect(rotations[0]!.KeyMaterialId).toBe(after);
    expect(kms.invoke('GetKeyRotationStatus', { KeyId: key }).NextRotationDate?.getTime()).toBe(new Date('2030-01-01T00:00:00Z').getTime() + 180 * DAY);
  });

  it('a disabled key does not rotate; enabled again while overdue, it rotates at once', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 90 });
    kms.invoke('DisableKey', { KeyId: key });
    clock.advance(200 * DAY);
    expect(kms.invoke('ListKeyRotations', { KeyId: key }).Rotations).toHaveLength(0);
    kms.invoke('EnableKey', { KeyId: key });
    const rotations = kms.invoke('ListKeyRotations', { KeyId: key }).Rotations;
    expect(rotations).toHaveLength(1);
    expect(rotations[0]!.RotationDate.getTime()).toBe(clock.now().getTime());
    expect(kms.invoke('GetKeyRotationStatus', { KeyId: key }).NextRotationDate?.getTime()).toBe(clock.now().getTime() + 90 * DAY);
  });

  it('a key pending deletion does not rotate', () => {
    const { kms, clock } = testKms();
    const key = newKey(kms);
    kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 90 });
    kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 30 });
    clock.advance(29 * DAY);
    kms.invoke('CancelKeyDeletion', { KeyId: key });
    expect(kms.invoke('ListKeyRotations', { KeyId: key }).Rotations).toHaveLength(0);
  });

  it('RotateKeyOnDemand: new material, schedule unchanged, the 11th is refused', () => {
    const { kms } = testKms();
    const key = newKey(kms);
    kms.invoke('EnableKeyRotation', { KeyId: key, RotationPeriodInDays: 90 });
    const next = kms.invoke('GetKeyRotationStatus', { KeyId: key }).NextRotationDate;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('v0') }).CiphertextBlob;
    for (let i = 0; i < 10; i++) kms.invoke('RotateKeyOnDemand', { KeyId: key });
    expect(errorName(() => kms.invoke('RotateKeyOnDemand', { KeyId: key }))).toBe('LimitExceededException');
    const s = kms.invoke('GetKeyRotationStatus', { KeyId: key });
    expect(s.NextRotationDate?.getTime()).toBe(next?.getTime());
    expect(s.OnDemandRotationStartDate).toBeInstanceOf(Date);
    const rotations = kms.invoke('ListKeyRotations', { KeyId: key, Limit: 4 });
    expect(rotations.Rotations).toHaveLength(4);
    expect(rotations.Truncated).toBe(true);
    const rest = kms.invoke('ListKeyRotations', { KeyId: key, Marker: rotations.NextMarker, Limit: 100 });
    expect(rest.Rotations).toHaveLength(6);
    expect(rest.Rotations.every((r) => r.RotationType === 'ON_DEMAND')).toBe(true);
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('v0');
  });

  it('rotation of a disabled key is DisabledException; of an EXTERNAL key UnsupportedOperationException', () => {
    const { kms } = testKms();
    const d = keyIn(kms, 'Disabled');
    expect(errorName(() => kms.invoke('RotateKeyOnDemand', { KeyId: d }))).toBe('DisabledException');
    expect(errorName(() => kms.invoke('EnableKeyRotation', { KeyId: d }))).toBe('DisabledException');
    const x = kms.invoke('CreateKey', { Origin: 'EXTERNAL' }).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('EnableKeyRotation', { KeyId: x }))).toBe('UnsupportedOperationException');
  });
});
