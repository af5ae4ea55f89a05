import crypto from 'node:crypto';
import * as ebs from '@aws-sdk/client-ebs';
import * as kms from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * The EBS direct APIs through @aws-sdk/client-ebs (a client nobody here
 * wrote): an encrypted snapshot of 64 MiB written and read with 8 requests in
 * flight, checksums both ways, the LINEAR aggregate, a corrupted checksum,
 * ListChangedBlocks against a child, and paging.
 */
const BLOCK = 512 * 1024;
const sha = (d: Uint8Array) => crypto.createHash('sha256').update(d).digest();

async function pool<T>(items: T[], n: number, f: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

describe('@aws-sdk/client-ebs against kmsvol', () => {
  it('round trip of an encrypted 64 MiB snapshot with checksums both ways; a corrupted checksum refused with a Reason from the model; changed blocks of a child', async () => {
    const home = tempHome('kmsvol-ebs-sdk-');
    const ep = await startEndpoint(home);
    const credentials = { accessKeyId: ep.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ep.env.AWS_SECRET_ACCESS_KEY! };
    const c = new ebs.EBSClient({ endpoint: ep.url, region: ep.region, credentials, maxAttempts: 1 });
    const k = new kms.KMSClient({ endpoint: ep.url, region: ep.region, credentials });
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.Arn!;
    const blocks = new Map<number, Buffer>(Array.from({ length: 128 }, (_, i) => [i * 3, crypto.randomBytes(BLOCK)]));
    const start = await c.send(new ebs.StartSnapshotCommand({ VolumeSize: 1, Encrypted: true, KmsKeyArn: key, Timeout: 60 }));
    expect(start).toMatchObject({ Status: 'pending', BlockSize: BLOCK, VolumeSize: 1, KmsKeyArn: key });
    const sid = start.SnapshotId!;
    const put = (id: string, i: number, data: Buffer, checksum = sha(data).toString('base64')) =>
      c.send(
        new ebs.PutSnapshotBlockCommand({ SnapshotId: id, BlockIndex: i, BlockData: data, DataLength: BLOCK, Checksum: checksum, ChecksumAlgorithm: 'SHA256' }),
      );
    await pool([...blocks], 8, async ([i, data]) => {
      expect((await put(sid, i, data)).Checksum).toBe(sha(data).toString('base64'));
    });
    const bad = await put(sid, 1, crypto.randomBytes(BLOCK), sha(Buffer.alloc(1)).toString('base64')).catch((e) => e);
    expect(bad).toBeInstanceOf(ebs.ValidationException);
    expect(Object.values(ebs.ValidationExceptionReason)).toContain(bad.Reason);
    const agg = crypto.createHash('sha256');
    for (const i of [...blocks.keys()].sort((a, b) => a - b)) agg.update(sha(blocks.get(i)!));
    const done = await c.send(
      new ebs.CompleteSnapshotCommand({
        SnapshotId: sid,
        ChangedBlocksCount: blocks.size,
        Checksum: agg.digest('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    expect(done.Status).toBe('completed');
    const tokens = new Map<number, string>();
    let NextToken: string | undefined;
    do {
      const page = await c.send(new ebs.ListSnapshotBlocksCommand({ SnapshotId: sid, MaxResults: 100, NextToken }));
      for (const b of page.Blocks!) tokens.set(b.BlockIndex!, b.BlockToken!);
      NextToken = page.NextToken;
    } while (NextToken);
    expect([...tokens.keys()]).toEqual([...blocks.keys()]); // block 1 was refused: absent
    await pool([...tokens], 8, async ([i, token]) => {
      const got = await c.send(new ebs.GetSnapshotBlockCommand({ SnapshotId: sid, BlockIndex: i, BlockToken: token }));
      const data = Buffer.from(await got.BlockData!.transformToByteArray());
      expect(got.Checksum).toBe(sha(data).toString('base64'));
      expect(data.equals(blocks.get(i)!)).toBe(true);
    });
    // A child of it: two blocks written, one of them with the parent's data (no change).
    const child = (await c.send(new ebs.StartSnapshotCommand({ VolumeSize: 1, ParentSnapshotId: sid }))).SnapshotId!;
    await put(child, 2, crypto.randomBytes(BLOCK));
    await put(child, 3, blocks.get(3)!);
    await c.send(new ebs.CompleteSnapshotCommand({ SnapshotId: child, ChangedBlocksCount: 2 }));
    const changed = await c.send(new ebs.ListChangedBlocksCommand({ FirstSnapshotId: sid, SecondSnapshotId: child }));
    expect(changed.ChangedBlocks!.map((b) => b.BlockIndex)).toEqual([2]);
    const unrelated = (await c.send(new ebs.StartSnapshotCommand({ VolumeSize: 1 }))).SnapshotId!;
    await c.send(new ebs.CompleteSnapshotCommand({ SnapshotId: unrelated, ChangedBlocksCount: 0 }));
    const e = await c.send(new ebs.ListChangedBlocksCommand({ FirstSnapshotId: unrelated, SecondSnapshotId: child })).catch((x) => x);
    expect(e).toMatchObject({ name: 'ValidationException', Reason: 'UNRELATED_SNAPSHOTS' });
    c.destroy();
    k.destroy();
  }, 600_000);
});
