import { describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/index.js';
import { cardPids } from '../helpers/procs.js';

// Attach starts the card before it makes the card's grant (card/spawn.ts), so that
// Node's start overlaps the KMS work; the card waits for its spec on stdin. When
// the grant is refused, that waiting card must not be left behind: in a long-lived
// process (the API) its stdin stays open, and it would wait for ever.
describe('a card started before its grant', () => {
  it('is ended when the grant is refused (a key pending deletion): the attach fails with KMSInvalidStateException and no card is left', async () => {
    const kv = Kmsvol.open();
    try {
      const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
      const vol = (await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key })).VolumeId;
      kv.kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 }); // CreateGrant refuses it
      await expect(kv.attachVolume(vol)).rejects.toMatchObject({ name: 'KMSInvalidStateException' });
      await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
      expect(kv.ctx.registry.getAttachment(vol)).toBeUndefined();
    } finally {
      await kv.close();
    }
  });
});
