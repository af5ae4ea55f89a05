import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';

/**
 * `kmsvol ebs import-snapshot --source-endpoint-url` against a hostile
 * source: an endpoint that answers the two read operations in the model's
 * shapes, with correct per-block checksums, but a block list that does not
 * fit its own VolumeSize. A bundle's manifest is checked for exactly this
 * (bundle.ts: indices in order, below the volume size); what arrives over the
 * wire must be checked as strictly, before anything is registered.
 */
const BLOCK = 512 * 1024;
const SOURCE = 'snap-0123456789abcdef0';

/** What the source answers to ListSnapshotBlocks: one listing for every page, or one per pageToken (null: the first page). */
type Listing = object | ((pageToken: string | null) => object);

async function hostileSource(listing: Listing): Promise<string> {
  const block = crypto.randomBytes(BLOCK);
  const sum = crypto.createHash('sha256').update(block).digest('base64');
  const server = http.createServer((req, res) => {
    if (/\/blocks\?|\/blocks$/.test(req.url ?? '')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('pageToken');
      res.end(JSON.stringify(typeof listing === 'function' ? listing(token) : listing));
    } else {
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'x-amz-Checksum': sum,
        'x-amz-Checksum-Algorithm': 'SHA256',
        'x-amz-Data-Length': String(BLOCK),
      });
      res.end(block);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function snapshots(home: string) {
  return (kmsvol(home, ['ec2', 'describe-snapshots']).json as { Snapshots: { SnapshotId: string; VolumeSize: number }[] }).Snapshots;
}

function blockIndices(home: string, id: string): number[] {
  const r = new Registry(path.join(home, 'ec2.db'));
  try {
    return r.blockMap(id).map((b) => b.block_index);
  } finally {
    r.close();
  }
}

const CASES: [string, Listing][] = [
  ['a block index past the volume size', { VolumeSize: 1, BlockSize: BLOCK, Blocks: [{ BlockIndex: 5000, BlockToken: 'AAAA' }] }],
  ['no VolumeSize', { BlockSize: BLOCK, Blocks: [{ BlockIndex: 0, BlockToken: 'AAAA' }] }],
  ['a negative block index', { VolumeSize: 1, BlockSize: BLOCK, Blocks: [{ BlockIndex: -1, BlockToken: 'AAAA' }] }],
  // Every page names the next with the same NextToken: a client that follows it never finishes.
  ['a NextToken that repeats for ever', { VolumeSize: 1, BlockSize: BLOCK, Blocks: [], NextToken: 'again' }],
  // A fresh NextToken on every page, each page empty: no token repeats, and the listing still never ends.
  ['pages that never end', (t: string | null) => ({ VolumeSize: 1, BlockSize: BLOCK, Blocks: [], NextToken: String(Number(t ?? 0) + 1) })],
  [
    'the same block listed twice across pages',
    (t: string | null) => ({ VolumeSize: 1, BlockSize: BLOCK, Blocks: [{ BlockIndex: 7, BlockToken: 'AAAA' }], ...(t ? {} : { NextToken: 'p2' }) }),
  ],
  ['a BlockSize that is not 512 KiB', { VolumeSize: 1, BlockSize: 4096, Blocks: [{ BlockIndex: 0, BlockToken: 'AAAA' }] }],
];

describe('import-snapshot from a hostile source endpoint', () => {
  for (const [what, listing] of CASES)
    it(`is refused, with nothing registered, when the listing has ${what}`, async () => {
      const home = tempHome('kmsvol-hostile-src-');
      const url = await hostileSource(listing);
      const r = await kmsvolAsync(home, ['ebs', 'import-snapshot', '--source-endpoint-url', url, '--source-snapshot-id', SOURCE], {
        AWS_ACCESS_KEY_ID: 'AKIAHOSTILEHOSTILE00',
        AWS_SECRET_ACCESS_KEY: 'x'.repeat(40),
        AWS_REGION: 'us-east-1',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      });
      const made = snapshots(home);
      const detail = made.map((s) => `${s.SnapshotId} VolumeSize ${s.VolumeSize} blocks ${blockIndices(home, s.SnapshotId).join(',')}`);
      expect(made, `imported: ${detail.join('; ')}; exit ${r.code}; ${r.stdout}${r.stderr}`).toEqual([]);
      expect(r.code).toBe(254);
      expect(r.stderr).toMatch(/source endpoint .*listed the blocks/);
    }, 60_000);
});
