import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropSnapshot, materializeSnapshot, snapshotBlocks } from '../../../src/volume/blockmap.js';
import { BLOCK_SIZE, blockHash, blockPath, listBlockFiles, readBlock, writeBlock } from '../../../src/volume/blocks.js';
import type { Ec2Context } from '../../../src/volume/context.js';
import { Registry } from '../../../src/volume/registry.js';
import { tempHome } from '../../helpers/home.js';

/** The block store under real files: incremental maps, shared blocks, frees of unshared blocks only, sparse materialization. */
const GIB = 1024 ** 3;

function setup() {
  const root = tempHome('kmsvol-blocks-');
  const registry = new Registry(path.join(root, 'ec2.db'));
  const ctx = { registry, home: { root, snapshotsDir: path.join(root, 'snapshots') } } as unknown as Ec2Context;
  const image = path.join(root, 'vol.img');
  const fd = fs.openSync(image, 'wx', 0o600);
  fs.ftruncateSync(fd, GIB);
  const put = (i: number, fill: number) => fs.writeSync(fd, Buffer.alloc(BLOCK_SIZE, fill), 0, BLOCK_SIZE, i * BLOCK_SIZE);
  const snap = (id: string, parent: string | null) =>
    registry.write(() =>
      registry.insertSnapshot({
        snapshot_id: id,
        volume_id: 'vol-00000000000000001',
        state: 'pending',
        progress: '',
        start_time: Date.now(),
        encrypted: 0,
        kms_key_id: null,
        volume_size: 1,
        description: '',
        image: '',
        parent_id: parent,
      }),
    );
  return { root, registry, ctx, image, fd, put, snap };
}

describe('the snapshot block store', () => {
  it('a child snapshot stores only its changed blocks, shares the rest, and deleting the parent frees only what the child does not use', async () => {
    const { root, registry, ctx, image, fd, put, snap } = setup();
    put(0, 1);
    put(1, 2);
    put(7, 3);
    snap('snap-0000000000000000a', null);
    expect(await snapshotBlocks(ctx, 'snap-0000000000000000a', { file: image, encrypted: false, sizeBytes: GIB })).toBe(3);
    expect(listBlockFiles(root).length).toBe(3);
    put(7, 4);
    put(20, 5);
    snap('snap-0000000000000000b', 'snap-0000000000000000a');
    const read = await snapshotBlocks(
      ctx,
      'snap-0000000000000000b',
      { file: image, encrypted: false, sizeBytes: GIB },
      { changed: new Set([7, 20]), parent: 'snap-0000000000000000a' },
    );
    expect(read).toBe(2);
    expect(registry.blockMap('snap-0000000000000000b').map((b) => b.block_index)).toEqual([0, 1, 7, 20]);
    expect(listBlockFiles(root).length).toBe(5);
    // A snapshot of the same image taken whole stores nothing new.
    snap('snap-0000000000000000c', null);
    await snapshotBlocks(ctx, 'snap-0000000000000000c', { file: image, encrypted: false, sizeBytes: GIB });
    expect(listBlockFiles(root).length).toBe(5);
    dropSnapshot(ctx, 'snap-0000000000000000a');
    expect(listBlockFiles(root).length).toBe(4); // the old block 7 only
    const out = path.join(root, 'out.img');
    materializeSnapshot(ctx, registry.getSnapshot('snap-0000000000000000b')!, out);
    fs.fsyncSync(fd);
    expect(fs.statSync(out).size).toBe(GIB);
    expect(fs.statSync(out).blocks * 512).toBeLessThan(8 * BLOCK_SIZE);
    const a = fs.openSync(out, 'r');
    const got = Buffer.alloc(BLOCK_SIZE);
    for (const [i, fill] of [
      [0, 1],
      [1, 2],
      [7, 4],
      [20, 5],
      [3, 0],
    ] as const) {
      fs.readSync(a, got, 0, BLOCK_SIZE, i * BLOCK_SIZE);
      expect(got.equals(Buffer.alloc(BLOCK_SIZE, fill))).toBe(true);
    }
    fs.closeSync(a);
    dropSnapshot(ctx, 'snap-0000000000000000b');
    dropSnapshot(ctx, 'snap-0000000000000000c');
    expect(listBlockFiles(root).length).toBe(0);
    fs.closeSync(fd);
    registry.close();
  });

  it('the sweep unlinks block files no map names (left by a crash after a delete committed) and keeps the others', async () => {
    const { root, registry, ctx, image, fd, put, snap } = setup();
    put(2, 9);
    snap('snap-0000000000000000d', null);
    await snapshotBlocks(ctx, 'snap-0000000000000000d', { file: image, encrypted: false, sizeBytes: GIB });
    const orphan = Buffer.alloc(BLOCK_SIZE, 42);
    writeBlock(root, blockHash(orphan), orphan);
    expect(listBlockFiles(root).length).toBe(2);
    expect(registry.sweepOrphanBlocks(root)).toEqual([blockHash(orphan)]);
    expect(listBlockFiles(root)).toEqual(registry.blockMap('snap-0000000000000000d').map((b) => b.hash));
    fs.closeSync(fd);
    registry.close();
  });
});

describe('a damaged block file', () => {
  it('is refused on read (naming the file) and replaced by the next write of the same content', () => {
    const root = tempHome('kmsvol-blocks-damaged-');
    const data = Buffer.alloc(BLOCK_SIZE, 7);
    const hash = blockHash(data);
    writeBlock(root, hash, data);
    const file = blockPath(root, hash);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x47]), 0, 1, 1000); // bit rot
    fs.closeSync(fd);
    expect(() => readBlock(root, hash)).toThrow(/block store is damaged: .*[0-9a-f]{64} .*Restore/);
    writeBlock(root, hash, data);
    expect(readBlock(root, hash).equals(data)).toBe(true);
  });
});
