import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listBlockFiles } from '../../src/volume/blocks.js';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { attach, detach, volumeHome } from '../helpers/volumes.js';

/**
 * Snapshots that leave the machine (issue 28, part 4): two homes, each with
 * its `kmsvol serve` on loopback, B standing for another host. A snapshot of A moves to
 * B through a bundle (ciphertext, wrapped head, manifest) and through A's
 * EBS direct APIs; B makes a volume of it, attaches it through a real card
 * and reads back the bytes A wrote.
 */
const MiB = 1 << 20;
/** Where A writes: a run across blocks 0-5, and a piece straddling two blocks at 512 MiB. */
const WRITES = [
  { at: 0, data: crypto.randomBytes(3 * MiB) },
  { at: 512 * MiB + 300 * 1024, data: crypto.randomBytes(MiB) },
];

function blockMap(home: string, id: string) {
  const r = new Registry(path.join(home, 'ec2.db'));
  try {
    return r.blockMap(id).map((b) => [b.block_index, b.hash] as const);
  } finally {
    r.close();
  }
}

/** Home A with an encrypted 1 GiB volume written at WRITES and snapshotted, served on loopback. */
async function source() {
  const a = volumeHome();
  const vol = kmsvol(a.home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', a.key]).json.VolumeId as string;
  const dev = attach(a.home, vol).Device;
  const fd = fs.openSync(dev, 'r+');
  for (const w of WRITES) fs.writeSync(fd, w.data, 0, w.data.length, w.at);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  detach(a.home, vol);
  const snap = kmsvol(a.home, ['ec2', 'create-snapshot', '--volume-id', vol]).json.SnapshotId as string;
  const ep = await startEndpoint(a.home);
  // What another host's CLI is given to reach A: its access key, as the AWS CLI reads it (no endpoint or home of A's).
  const creds = {
    AWS_ACCESS_KEY_ID: ep.env.AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: ep.env.AWS_SECRET_ACCESS_KEY!,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  return { ...a, vol, snap, url: ep.url, creds };
}

/** A volume of `snap` in `home`, attached; the bytes at WRITES read back equal what A wrote. */
function expectReadsBack(home: string, snap: string) {
  const created = kmsvol(home, ['ec2', 'create-volume', '--snapshot-id', snap]);
  expect(created.code, created.stderr).toBe(0);
  const vol = created.json.VolumeId as string;
  const fd = fs.openSync(attach(home, vol).Device, 'r');
  try {
    for (const w of WRITES) {
      const got = Buffer.alloc(w.data.length);
      fs.readSync(fd, got, 0, got.length, w.at);
      expect(got.equals(w.data), `bytes at ${w.at}`).toBe(true);
    }
    const gap = Buffer.alloc(MiB);
    fs.readSync(fd, gap, 0, MiB, 100 * MiB);
    expect(gap.equals(Buffer.alloc(MiB))).toBe(true);
  } finally {
    fs.closeSync(fd);
    detach(home, vol);
  }
}

describe('kmsvol ebs export-snapshot / import-snapshot', () => {
  it('a bundle from A imports into B re-encrypted under B key (A KMS unwraps through its endpoint); the stored blocks differ, the data reads back', async () => {
    const a = await source();
    const b = volumeHome();
    const dir = path.join(b.home, 'bundle');
    const out = kmsvol(a.home, ['ebs', 'export-snapshot', '--snapshot-id', a.snap, '--output-dir', dir]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.json).toMatchObject({ SnapshotId: a.snap, Encrypted: true, BlockCount: blockMap(a.home, a.snap).length });
    // The bundle holds A's stored blocks as they are: ciphertext, named by the SHA-256 of their bytes.
    expect(fs.readdirSync(path.join(dir, 'blocks')).sort()).toEqual([...new Set(blockMap(a.home, a.snap).map(([, h]) => h))].sort());

    // B's own KMS cannot open A's key: kept as it is, the bundle is refused and nothing is registered.
    const kept = kmsvol(b.home, ['ebs', 'import-snapshot', '--bundle', dir]);
    expect(kept.code).toBe(254);
    expect(kept.stderr).toMatch(/\(AccessDeniedException\) when calling the ImportSnapshot operation: The bundle's data key is wrapped by arn:aws:kms:/);
    expect(kmsvol(b.home, ['ec2', 'describe-snapshots']).json.Snapshots).toEqual([]);

    const imp = kmsvol(b.home, ['ebs', 'import-snapshot', '--bundle', dir, '--kms-key-id', b.key, '--source-endpoint-url', a.url], a.creds);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.json).toMatchObject({ State: 'completed', Encrypted: true, KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${b.key}`, VolumeSize: 1 });
    const mine = blockMap(b.home, imp.json.SnapshotId);
    expect(mine.map(([i]) => i)).toEqual(blockMap(a.home, a.snap).map(([i]) => i));
    const theirs = new Set(blockMap(a.home, a.snap).map(([, h]) => h));
    expect(mine.filter(([, h]) => theirs.has(h))).toEqual([]);
    expectReadsBack(b.home, imp.json.SnapshotId);
  });

  it('into a home whose KMS holds the key, a bundle is kept as ciphertext: the same stored blocks, the data reads back', async () => {
    const a = await source();
    const dir = path.join(a.home, 'bundle');
    expect(kmsvol(a.home, ['ebs', 'export-snapshot', '--snapshot-id', a.snap, '--output-dir', dir]).code).toBe(0);
    const files = listBlockFiles(a.home).length;
    const imp = kmsvol(a.home, ['ebs', 'import-snapshot', '--bundle', dir]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.json).toMatchObject({ Encrypted: true, KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${a.key}` });
    expect(blockMap(a.home, imp.json.SnapshotId)).toEqual(blockMap(a.home, a.snap));
    expect(listBlockFiles(a.home).length).toBe(files);
    expectReadsBack(a.home, imp.json.SnapshotId);
  });

  it("through A's endpoint (ListSnapshotBlocks, GetSnapshotBlock), B takes the snapshot encrypted under its own key", async () => {
    const a = await source();
    const b = volumeHome();
    const imp = kmsvol(b.home, ['ebs', 'import-snapshot', '--source-endpoint-url', a.url, '--source-snapshot-id', a.snap, '--kms-key-id', b.key], a.creds);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.json).toMatchObject({ State: 'completed', Encrypted: true, KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${b.key}` });
    expect(blockMap(b.home, imp.json.SnapshotId).map(([i]) => i)).toEqual(blockMap(a.home, a.snap).map(([i]) => i));
    expectReadsBack(b.home, imp.json.SnapshotId);
    // B serves it in turn: the AWS CLI against B's own endpoint lists it and gets back A's first block.
    const epB = await startEndpoint(b.home);
    const aws = (args: string[]) => spawnSync('aws', ['--endpoint-url', epB.url, 'ebs', ...args], { env: { ...process.env, ...epB.env }, encoding: 'utf8' });
    const listed = aws(['list-snapshot-blocks', '--snapshot-id', imp.json.SnapshotId]);
    expect(listed.status, listed.stderr).toBe(0);
    const first = JSON.parse(listed.stdout).Blocks[0];
    expect(first.BlockIndex).toBe(0);
    const out = path.join(b.home, 'block0');
    const got = aws(['get-snapshot-block', '--snapshot-id', imp.json.SnapshotId, '--block-index', '0', '--block-token', first.BlockToken, out]);
    expect(got.status, got.stderr).toBe(0);
    expect(fs.readFileSync(out).equals(WRITES[0]!.data.subarray(0, 512 * 1024))).toBe(true);
    // Without A's credentials the source refuses, and nothing more is registered.
    const denied = kmsvol(b.home, ['ebs', 'import-snapshot', '--source-endpoint-url', a.url, '--source-snapshot-id', a.snap], {
      ...a.creds,
      AWS_SECRET_ACCESS_KEY: 'x'.repeat(40),
    });
    expect(denied.code).toBe(254);
    expect(denied.stderr).toMatch(/An error occurred \(\w+\) when calling the ImportSnapshot operation: The source endpoint refused: /);
    expect(kmsvol(b.home, ['ec2', 'describe-snapshots']).json.Snapshots).toHaveLength(1);
    // A's key disabled: A refuses the first GetSnapshotBlock (after the listing), and the half-made snapshot is dropped.
    expect(kmsvol(a.home, ['kms', 'disable-key', '--key-id', a.key]).code).toBe(0);
    const files = listBlockFiles(b.home).length;
    const off = kmsvol(b.home, ['ebs', 'import-snapshot', '--source-endpoint-url', a.url, '--source-snapshot-id', a.snap], a.creds);
    expect(off.code).toBe(254);
    expect(off.stderr).toMatch(/\(AccessDeniedException\) when calling the ImportSnapshot operation: The source endpoint refused: .*DisabledException/);
    expect(kmsvol(b.home, ['ec2', 'describe-snapshots']).json.Snapshots).toHaveLength(1);
    expect(listBlockFiles(b.home).length).toBe(files);
  });

  it('a bundle with a changed block, or a changed manifest, is refused with a clear error and nothing is registered or stored', async () => {
    const a = await source();
    const b = volumeHome();
    const dir = path.join(b.home, 'bundle');
    expect(kmsvol(a.home, ['ebs', 'export-snapshot', '--snapshot-id', a.snap, '--output-dir', dir]).code).toBe(0);
    const [index, hash] = blockMap(a.home, a.snap).at(-1)!;
    const file = path.join(dir, 'blocks', hash);
    const bytes = fs.readFileSync(file);
    bytes[12345] ^= 1;
    fs.writeFileSync(file, bytes);
    const args = ['ebs', 'import-snapshot', '--bundle', dir, '--kms-key-id', b.key, '--source-endpoint-url', a.url];
    const r = kmsvol(b.home, args, a.creds);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(
      `An error occurred (ValidationException) when calling the ImportSnapshot operation: Block ${index} of the bundle ${dir} does not match its SHA-256 in the manifest (${hash})`,
    );
    expect(kmsvol(b.home, ['ec2', 'describe-snapshots']).json.Snapshots).toEqual([]);
    expect(listBlockFiles(b.home)).toEqual([]);

    bytes[12345] ^= 1;
    fs.writeFileSync(file, bytes);
    const manifest = path.join(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    m.Blocks[0][0] = 1000;
    m.Blocks.sort((x: [number], y: [number]) => x[0] - y[0]);
    fs.writeFileSync(manifest, JSON.stringify(m));
    const r2 = kmsvol(b.home, args, a.creds);
    expect(r2.code).toBe(254);
    expect(r2.stderr).toContain('the aggregate checksum does not match its block list; nothing was imported.');
    expect(kmsvol(b.home, ['ec2', 'describe-snapshots']).json.Snapshots).toEqual([]);
  });
});

describe('kmsvol ebs import-snapshot of an unencrypted bundle', () => {
  it('is kept in the clear as it is, and with --kms-key-id is encrypted on the way (stored bytes differ, GetSnapshotBlock gives the data)', () => {
    const a = volumeHome();
    const vol = kmsvol(a.home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId as string;
    const fd = fs.openSync(attach(a.home, vol).Device, 'r+');
    fs.writeSync(fd, WRITES[0]!.data, 0, WRITES[0]!.data.length, 0);
    fs.closeSync(fd);
    detach(a.home, vol);
    const snap = kmsvol(a.home, ['ec2', 'create-snapshot', '--volume-id', vol]).json.SnapshotId as string;
    const b = volumeHome();
    const dir = path.join(b.home, 'bundle');
    expect(kmsvol(a.home, ['ebs', 'export-snapshot', '--snapshot-id', snap, '--output-dir', dir]).json).toMatchObject({ Encrypted: false, BlockCount: 6 });

    const clear = kmsvol(b.home, ['ebs', 'import-snapshot', '--bundle', dir]);
    expect(clear.json).toMatchObject({ Encrypted: false, State: 'completed' });
    expect(blockMap(b.home, clear.json.SnapshotId)).toEqual(blockMap(a.home, snap));

    const enc = kmsvol(b.home, ['ebs', 'import-snapshot', '--bundle', dir, '--kms-key-id', b.key]);
    expect(enc.code, enc.stderr).toBe(0);
    expect(enc.json).toMatchObject({ Encrypted: true, KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${b.key}` });
    const plainHashes = new Set(blockMap(a.home, snap).map(([, h]) => h));
    expect(blockMap(b.home, enc.json.SnapshotId).filter(([, h]) => plainHashes.has(h))).toEqual([]);
    const token = kmsvol(b.home, ['ebs', 'list-snapshot-blocks', '--snapshot-id', enc.json.SnapshotId]).json.Blocks[1].BlockToken as string;
    const out = path.join(b.home, 'block1');
    const got = kmsvol(b.home, ['ebs', 'get-snapshot-block', '--snapshot-id', enc.json.SnapshotId, '--block-index', '1', '--block-token', token, out]);
    expect(got.code, got.stderr).toBe(0);
    expect(fs.readFileSync(out).equals(WRITES[0]!.data.subarray(512 * 1024, 1024 * 1024))).toBe(true);
  });
});
