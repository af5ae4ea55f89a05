import fs from 'node:fs';
import type { Home } from '../home.js';
import { openPrivate } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import type { GuardedKey } from '../native/index.js';
import type { CardOps } from '../volume/context.js';
import { callControl, cardError, FREEZE_RENEW_MS } from './control.js';
import { unwrapVerifiedKey, volumeKeyMaterial, volumeKeyslot } from './keys.js';
import { copyPayload } from './recrypt.js';
import { socketPath } from './runtime.js';

/**
 * The card layer's side of the control plane's CardOps: the LUKS2 key digest
 * for new images, quiescing an attached volume for a snapshot, and moving a
 * payload between images under different keys.
 */
export function cardOps(home: Home, kms: KmsClient): CardOps {
  return {
    keyMaterial: (token) => volumeKeyMaterial(kms, token),
    keyslot: (header, image) => volumeKeyslot(kms, header, image),

    async quiesce(volumeId) {
      const sock = socketPath(home, volumeId);
      const r = await callControl(sock, { op: 'freeze' });
      if (!r.ok) throw cardError(r);
      const freezeId = Number(r.freezeId);
      // The freeze is a lease (the card thaws one nobody renews): renew it while the copy runs.
      const renew = setInterval(() => void callControl(sock, { op: 'renew', freezeId }).catch(() => undefined), FREEZE_RENEW_MS);
      return async () => {
        clearInterval(renew);
        const t = await callControl(sock, { op: 'thaw', freezeId });
        if (!t.ok) throw cardError(t);
      };
    },

    async takeChanges(volumeId) {
      const r = await callControl(socketPath(home, volumeId), { op: 'take-changes' });
      if (!r.ok) throw cardError(r);
      return { takeId: String(r.takeId), base: (r.base as string | null) ?? null, all: r.all === true, blocks: Number(r.blocks), bits: String(r.bits) };
    },

    async endChanges(volumeId, takeId, snapshotId) {
      const req = snapshotId ? { op: 'commit-changes' as const, takeId, snapshotId } : { op: 'abort-changes' as const, takeId };
      let r: Awaited<ReturnType<typeof callControl>>;
      try {
        r = await callControl(socketPath(home, volumeId), req);
      } catch (e) {
        // Detached (or died) since the take: a clean detach saved the taken bits back, a dead card left 'all'. Either way the old base stands, safely.
        if (['ENOENT', 'ECONNREFUSED'].includes((e as NodeJS.ErrnoException).code ?? '')) return;
        throw e;
      }
      if (!r.ok) throw cardError(r);
    },

    async resize(volumeId, sizeBytes) {
      const r = await callControl(socketPath(home, volumeId), { op: 'resize', size: sizeBytes }, 30_000);
      if (!r.ok) throw cardError(r);
    },

    async copyPayload(src, dst, sizeBytes, onProgress) {
      let oldKey: GuardedKey | null = null;
      let newKey: GuardedKey | null = null;
      const srcFd = openPrivate(src.file, 'r');
      const dstFd = openPrivate(dst.file, 'r+');
      try {
        // Precondition: each key matches its image's digest, so no copy is made with a wrong key.
        if (src.token && src.digest) oldKey = await unwrapVerifiedKey(kms, { token: src.token, digest: src.digest }, src.file);
        if (dst.token && dst.digest) newKey = await unwrapVerifiedKey(kms, { token: dst.token, digest: dst.digest }, dst.file);
        const written = await copyPayload({
          srcFd,
          srcPayload: src.payloadOffset,
          dstFd,
          dstPayload: dst.payloadOffset,
          sizeBytes,
          oldKey,
          newKey,
          onProgress,
        });
        fs.fsyncSync(dstFd);
        return written;
      } finally {
        oldKey?.zeroize();
        newKey?.zeroize();
        fs.closeSync(srcFd);
        fs.closeSync(dstFd);
      }
    },
  };
}
