import crypto from 'node:crypto';
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

describe('EBS direct API snapshot state', () => {
  it('a snapshot left open past its Timeout becomes error: a put is refused and EC2 shows it in state error', () => {
    const t0 = new Date();
    const started = kmsvol(home, ['ebs', 'start-snapshot', '--volume-size', '1', '--timeout', '10'], { KMSVOL_NOW: t0.toISOString() });
    expect(started.code, started.stderr).toBe(0);
    const id = started.json.SnapshotId as string;
    const block = path.join(home, 'block');
    fs.writeFileSync(block, Buffer.alloc(BLOCK, 9));
    const sum = crypto.createHash('sha256').update(fs.readFileSync(block)).digest('base64');
    const put = (at: Date) =>
      kmsvol(
        home,
        [
          'ebs',
          'put-snapshot-block',
          '--snapshot-id',
          id,
          '--block-index',
          '0',
          '--data-length',
          String(BLOCK),
          '--block-data',
          block,
          '--checksum',
          sum,
          '--checksum-algorithm',
          'SHA256',
        ],
        { KMSVOL_NOW: at.toISOString() },
      );
    const inTime = put(new Date(t0.getTime() + 9 * 60_000));
    expect(inTime.code, inTime.stderr).toBe(0);
    const late = put(new Date(t0.getTime() + 11 * 60_000));
    expect(late.code).toBe(254);
    expect(late.stderr).toContain('(ValidationException)');
    const shown = kmsvol(home, ['ec2', 'describe-snapshots', '--snapshot-ids', id], { KMSVOL_NOW: new Date(t0.getTime() + 11 * 60_000).toISOString() });
    expect(shown.json.Snapshots[0].State).toBe('error');
  });
});
