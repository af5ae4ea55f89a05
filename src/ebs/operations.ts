import type { Ec2Context } from '../volume/context.js';
import { getSnapshotBlock, listChangedBlocks, listSnapshotBlocks, putSnapshotBlock } from './blocks.js';
import { completeSnapshot, startSnapshot } from './snapshots.js';

/**
 * The EBS direct APIs' registry (botocore's `ebs` model, 2019-11-02): each
 * operation's route, its members with where they travel (URI, query string,
 * header, payload, or the JSON body), the members it answers, and its
 * handler. The REST-JSON codec (src/server/ebs/) and the CLI are views of it.
 */
export type MemberType = 'string' | 'integer' | 'boolean' | 'blob' | 'timestamp' | 'list';

export interface EbsMember {
  type: MemberType;
  /** Where it travels, and its name there; absent: a member of the JSON body. */
  location?: 'uri' | 'querystring' | 'header' | 'payload';
  name?: string;
}

export interface EbsOperation {
  method: 'GET' | 'POST' | 'PUT';
  /** The model's requestUri, with {label}s. */
  path: string;
  /** The model's responseCode (200 unless given). */
  status: number;
  input: Readonly<Record<string, EbsMember>>;
  required: readonly string[];
  output: Readonly<Record<string, EbsMember>>;
  /**
   * The model's `authtype: v4-unsigned-body` (PutSnapshotBlock only): the body may be sent as UNSIGNED-PAYLOAD, and
   * then these signed headers are what protect it (every other operation's body must be signed).
   */
  unsignedBody?: { mustSign: readonly string[] };
  run(ctx: Ec2Context, req: Record<string, unknown>): Promise<object>;
}

const uri = (name: string, type: MemberType = 'string'): EbsMember => ({ type, location: 'uri', name });
const query = (name: string, type: MemberType = 'string'): EbsMember => ({ type, location: 'querystring', name });
const header = (name: string, type: MemberType = 'string'): EbsMember => ({ type, location: 'header', name });
const body = (type: MemberType): EbsMember => ({ type });
const payload: EbsMember = { type: 'blob', location: 'payload' };
const checksum = { Checksum: header('x-amz-Checksum'), ChecksumAlgorithm: header('x-amz-Checksum-Algorithm') };
const paging = {
  NextToken: query('pageToken'),
  MaxResults: query('maxResults', 'integer'),
  StartingBlockIndex: query('startingBlockIndex', 'integer'),
};
const listed = { ExpiryTime: body('timestamp'), VolumeSize: body('integer'), BlockSize: body('integer'), NextToken: body('string') };
const run =
  <R>(f: (ctx: Ec2Context, req: R) => object | Promise<object>) =>
  async (ctx: Ec2Context, req: Record<string, unknown>) =>
    f(ctx, req as R);

export const OPERATIONS = {
  StartSnapshot: {
    method: 'POST',
    path: '/snapshots',
    status: 201,
    input: {
      VolumeSize: body('integer'),
      ParentSnapshotId: body('string'),
      Tags: body('list'),
      Description: body('string'),
      ClientToken: body('string'),
      Encrypted: body('boolean'),
      KmsKeyArn: body('string'),
      Timeout: body('integer'),
    },
    required: ['VolumeSize'],
    output: {
      Description: body('string'),
      SnapshotId: body('string'),
      OwnerId: body('string'),
      Status: body('string'),
      StartTime: body('timestamp'),
      VolumeSize: body('integer'),
      BlockSize: body('integer'),
      Tags: body('list'),
      ParentSnapshotId: body('string'),
      KmsKeyArn: body('string'),
    },
    run: run(startSnapshot),
  },
  PutSnapshotBlock: {
    method: 'PUT',
    path: '/snapshots/{snapshotId}/blocks/{blockIndex}',
    status: 201,
    input: {
      SnapshotId: uri('snapshotId'),
      BlockIndex: uri('blockIndex', 'integer'),
      BlockData: payload,
      DataLength: header('x-amz-Data-Length', 'integer'),
      Progress: header('x-amz-Progress', 'integer'),
      ...checksum,
    },
    required: ['SnapshotId', 'BlockIndex', 'BlockData', 'DataLength', 'Checksum', 'ChecksumAlgorithm'],
    unsignedBody: { mustSign: ['x-amz-checksum', 'x-amz-checksum-algorithm', 'x-amz-data-length'] },
    output: checksum,
    run: run(putSnapshotBlock),
  },
  CompleteSnapshot: {
    method: 'POST',
    path: '/snapshots/completion/{snapshotId}',
    status: 202,
    input: {
      SnapshotId: uri('snapshotId'),
      ChangedBlocksCount: header('x-amz-ChangedBlocksCount', 'integer'),
      ...checksum,
      ChecksumAggregationMethod: header('x-amz-Checksum-Aggregation-Method'),
    },
    required: ['SnapshotId', 'ChangedBlocksCount'],
    output: { Status: body('string') },
    run: run(completeSnapshot),
  },
  ListSnapshotBlocks: {
    method: 'GET',
    path: '/snapshots/{snapshotId}/blocks',
    status: 200,
    input: { SnapshotId: uri('snapshotId'), ...paging },
    required: ['SnapshotId'],
    output: { Blocks: body('list'), ...listed },
    run: run(listSnapshotBlocks),
  },
  ListChangedBlocks: {
    method: 'GET',
    path: '/snapshots/{secondSnapshotId}/changedblocks',
    status: 200,
    input: { FirstSnapshotId: query('firstSnapshotId'), SecondSnapshotId: uri('secondSnapshotId'), ...paging },
    required: ['SecondSnapshotId'],
    output: { ChangedBlocks: body('list'), ...listed },
    run: run(listChangedBlocks),
  },
  GetSnapshotBlock: {
    method: 'GET',
    path: '/snapshots/{snapshotId}/blocks/{blockIndex}',
    status: 200,
    input: { SnapshotId: uri('snapshotId'), BlockIndex: uri('blockIndex', 'integer'), BlockToken: query('blockToken') },
    required: ['SnapshotId', 'BlockIndex', 'BlockToken'],
    output: { DataLength: header('x-amz-Data-Length', 'integer'), BlockData: payload, ...checksum },
    run: run(getSnapshotBlock),
  },
} satisfies Record<string, EbsOperation>;

export type EbsOperationName = keyof typeof OPERATIONS;

export function ebsOperation(name: string): EbsOperation | undefined {
  return Object.hasOwn(OPERATIONS, name) ? (OPERATIONS[name as EbsOperationName] as EbsOperation) : undefined;
}
