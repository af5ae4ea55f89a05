import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/api.js';
import { kmsvol } from '../helpers/cli.js';
import { releaseLoopsUnder } from '../helpers/volumes.js';

/**
 * The EBS direct APIs' paging and request rules as AWS states them, through
 * `kmsvol ebs`: a NextToken is good for 60 minutes (the CLI's clock moved with
 * KMSVOL_NOW), MaxResults under 100 still answers up to 100 blocks (the FAQ),
 * and StartSnapshot refuses Encrypted together with ParentSnapshotId (the model).
 */
const BLOCK = 512 * 1024;
let home: string;
let snap: string;

beforeAll(async () => {
  // One home for the file (tempHome's is removed after each test), removed after the last.
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-ebs-paging-'));
  const kv = Kmsvol.open({ home });
  try {
    const vol = (await kv.createVolume({ Size: 1, Encrypted: false } as never)).VolumeId as string;
    const { Device } = await kv.attachVolume(vol);
    const fd = fs.openSync(Device, 'r+');
    for (let i = 0; i < 150; i++) fs.writeSync(fd, Buffer.alloc(BLOCK, i + 1), 0, BLOCK, i * BLOCK);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    snap = (await kv.createSnapshot(vol)).SnapshotId as string;
    await kv.detachVolume(vol);
  } finally {
    await kv.close();
    releaseLoopsUnder(home);
  }
});
afterAll(() => {
  releaseLoopsUnder(home);
  fs.rmSync(home, { recursive: true, force: true });
});

const list = (args: string[], now?: Date) =>
  kmsvol(home, ['ebs', 'list-snapshot-blocks', '--snapshot-id', snap, ...args], now ? { KMSVOL_NOW: now.toISOString() } : {});

describe('EBS direct API paging', () => {
  it('a NextToken works for 60 minutes and is refused after, with INVALID_PAGE_TOKEN', () => {
    const t0 = new Date();
    const first = list(['--max-results', '100'], t0);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json.Blocks).toHaveLength(100);
    const token = first.json.NextToken as string;
    const soon = list(['--max-results', '100', '--next-token', token], new Date(t0.getTime() + 59 * 60_000));
    expect(soon.code, soon.stderr).toBe(0);
    expect(soon.json.Blocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    const late = list(['--max-results', '100', '--next-token', token], new Date(t0.getTime() + 61 * 60_000));
    expect(late.code).toBe(254);
    expect(late.stderr).toContain('(ValidationException)');
    expect(late.stderr).toContain('expired');
  });

  it('MaxResults under 100 still answers up to 100 blocks, as AWS does', () => {
    const r = list(['--max-results', '10']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.Blocks).toHaveLength(100);
  });

  it('StartSnapshot with Encrypted and ParentSnapshotId together is a ValidationException', () => {
    const r = kmsvol(home, ['ebs', 'start-snapshot', '--volume-size', '1', '--parent-snapshot-id', snap, '--encrypted']);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('(ValidationException)');
    expect(r.stderr).toContain("can't specify Encrypted and ParentSnapshotId");
  });
});
