import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blocksDir } from '../../../src/volume/blocks.js';
import { Registry } from '../../../src/volume/registry.js';
import { ROOT } from '../../helpers/cli.js';
import { tempHome } from '../../helpers/home.js';

/**
 * A process killed (SIGKILL) while it writes blocks into the store, as
 * `kmsvol serve` is in the middle of a PutSnapshotBlock or CreateSnapshot:
 * the block files themselves are never torn (temporary name, fsync, rename),
 * but the temporary file of the block being written stays behind. The
 * endpoint's sweep of orphans runs at its first use; it must take these too,
 * or every crash leaks up to a block (512 KiB) per writer, for ever.
 */
function tmpFiles(root: string): string[] {
  const top = blocksDir(root);
  if (!fs.existsSync(top)) return [];
  return fs.readdirSync(top).flatMap((d) => fs.readdirSync(path.join(top, d)).filter((f) => f.includes('.tmp-')));
}

/**
 * A writer that is killed (SIGKILL, by itself) inside writeBlock, between the write of the temporary file and its
 * rename: in its `n`th fsync, where a crash of `kmsvol serve` lands most often (the fsync is the slow part).
 */
function writeKilledInFsync(root: string, n: number): Promise<NodeJS.Signals | null> {
  const script = `
    import fs from 'node:fs';
    const { writeBlock, blockHash } = await import(${JSON.stringify(path.join(ROOT, 'dist/volume/blocks.js'))});
    const fsync = fs.fsyncSync;
    let calls = 0;
    fs.fsyncSync = (fd) => { if (++calls === ${n}) process.kill(process.pid, 'SIGKILL'); return fsync(fd); };
    const b = Buffer.alloc(512 * 1024);
    for (let i = 0; i < 1000; i++) { b.writeUInt32LE(i + 1, 0); writeBlock(${JSON.stringify(root)}, blockHash(b), b); }`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((resolve) => p.once('exit', (_code, signal) => resolve(signal)));
}

describe('the block store after a writer is killed', () => {
  it('the sweep of orphans removes the temporary file a killed writer left', async () => {
    const root = tempHome('kmsvol-blocks-crash-');
    // writeBlock fsyncs the temporary file, then (after the rename) the directory: the 5th fsync is the third block's file.
    expect(await writeKilledInFsync(root, 5)).toBe('SIGKILL');
    expect(tmpFiles(root).length).toBe(1);
    const registry = new Registry(path.join(root, 'ec2.db'));
    try {
      registry.sweepOrphanBlocks(root);
    } finally {
      registry.close();
    }
    expect(tmpFiles(root), 'temporary block files left by a killed writer, never swept').toEqual([]);
  }, 120_000);
});
