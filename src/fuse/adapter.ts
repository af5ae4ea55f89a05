import type { FuseStats, GuardedKey } from '../native/index.js';
import { startFuseServer } from '../native/index.js';

/**
 * The FUSE edge of a card: serves one regular file, the decrypted volume, in a
 * directory. The binding is kmsvol's own C server (native/src/fuse_server.c):
 * libfuse's worker threads call the sector engine directly, so no request
 * passes through the JavaScript thread. It holds no policy: it clips to the
 * volume, does read-modify-write for partial sectors, and maps errors to errno.
 */
export interface VolumeFile {
  name: string;
  fd: number;
  key: GuardedKey | null;
  payloadOffset: number;
  size: number;
}

export interface Mounted {
  /** Unmount and wait for in-flight requests; returns how many requests failed while mounted. */
  unmount(): Promise<FuseStats>;
  /** The server's counters now (open handles, failed requests). */
  stats(): FuseStats;
  /** Hold writes back (after in-flight ones finish, and an fdatasync), or release them. */
  freeze(on: boolean): void;
  /** Grow the served file (the backing image already extended). */
  resize(size: number): void;
}

export async function mountVolumeFile(dir: string, file: VolumeFile): Promise<Mounted> {
  const server = startFuseServer(file.key, file.fd, file.payloadOffset, file.size, dir, file.name);
  return {
    async unmount() {
      const stats = server.stats();
      server.stop();
      return stats;
    },
    freeze: (on) => server.freeze(on),
    resize: (size) => server.resize(size),
    stats: () => server.stats(),
  };
}

/** Lazily unmount a stale FUSE mount left by a card that died. */
export async function unmountStale(dir: string): Promise<void> {
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('umount', ['-l', dir]).status !== 0) spawnSync('fusermount', ['-uz', dir]);
}
