import { Ec2Errors } from '../../volume/errors.js';
import type { CopySnapshotRequest, DescribeSnapshotsRequest } from '../../volume/snapshots.js';
import { deleteSnapshot, describeSnapshots, getSnapshot, startCopySnapshot, startCreateSnapshot } from '../../volume/snapshots.js';
import { createTags, deleteTags, describeTags, tagsFor } from '../../volume/tags.js';
import { getVolume, resolveKey } from '../../volume/volumes.js';
import type { Operation } from './operation.js';
import { action, checkKey, inBackground } from './operation.js';
import { S } from './protocol.js';

/** CreateSnapshot, CopySnapshot, DescribeSnapshots, DeleteSnapshot, and the tag actions. */
export const snapshotOperations: Record<string, Operation> = {
  CreateSnapshot: action<Parameters<typeof startCreateSnapshot>[1] & { OutpostArn?: string }>({
    input: { Description: S.str, OutpostArn: S.str, VolumeId: S.str, TagSpecifications: S.tagSpecifications },
    async check(ctx, req) {
      if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
      getVolume(ctx, req.VolumeId);
      tagsFor(req.TagSpecifications, 'snapshot');
    },
    async run(ctx, req) {
      if (req.OutpostArn) throw Ec2Errors.invalidParameter('Outposts are not supported here; omit OutpostArn.');
      const started = startCreateSnapshot(ctx, req);
      inBackground(started.done);
      // EC2 answers without the key (it is in DescribeSnapshots once pending).
      const { KmsKeyId: _key, ...answer } = started.Snapshot;
      return answer;
    },
  }),

  CopySnapshot: action<CopySnapshotRequest>({
    input: {
      Description: S.str,
      DestinationOutpostArn: S.str,
      DestinationRegion: S.str,
      Encrypted: S.bool,
      KmsKeyId: S.str,
      PresignedUrl: S.str,
      SourceRegion: S.str,
      SourceSnapshotId: S.str,
      TagSpecifications: S.tagSpecifications,
    },
    async check(ctx, req) {
      if (!req.SourceSnapshotId) throw Ec2Errors.missingParameter('The request must contain the parameter SourceSnapshotId');
      const src = getSnapshot(ctx, req.SourceSnapshotId);
      tagsFor(req.TagSpecifications, 'snapshot');
      if (src.encrypted || req.Encrypted) await checkKey(ctx, req.KmsKeyId ?? src.kms_key_id ?? resolveKey(ctx, undefined));
    },
    async run(ctx, req) {
      const started = startCopySnapshot(ctx, req);
      inBackground(started.done);
      // EC2 answers only the new snapshot's id (and its tags).
      return { SnapshotId: started.Snapshot.SnapshotId, ...(started.Snapshot.Tags.length ? { Tags: started.Snapshot.Tags } : {}) };
    },
  }),

  DescribeSnapshots: action<DescribeSnapshotsRequest>({
    input: {
      Filters: S.filters,
      MaxResults: S.int,
      NextToken: S.str,
      OwnerIds: S.strList('Owner'),
      RestorableByUserIds: S.strList('RestorableBy'),
      SnapshotIds: S.strList('SnapshotId'),
    },
    async check(ctx, req) {
      describeSnapshots(ctx, req);
    },
    run: async (ctx, req) => describeSnapshots(ctx, req),
  }),

  DeleteSnapshot: action<{ SnapshotId?: string }>({
    input: { SnapshotId: S.str },
    async check(ctx, req) {
      if (!req.SnapshotId) throw Ec2Errors.missingParameter('The request must contain the parameter SnapshotId');
      getSnapshot(ctx, req.SnapshotId);
    },
    async run(ctx, req) {
      deleteSnapshot(ctx, req);
      return undefined;
    },
  }),

  CreateTags: action<Parameters<typeof createTags>[1]>({
    input: { Resources: S.strList('ResourceId'), Tags: S.tags() },
    async check() {},
    async run(ctx, req) {
      createTags(ctx, req);
      return undefined;
    },
  }),

  DeleteTags: action<Parameters<typeof deleteTags>[1]>({
    input: { Resources: S.strList('ResourceId'), Tags: S.tags() },
    async check() {},
    async run(ctx, req) {
      deleteTags(ctx, req);
      return undefined;
    },
  }),

  DescribeTags: action<Parameters<typeof describeTags>[1]>({
    input: { Filters: S.filters, MaxResults: S.int, NextToken: S.str },
    async check(ctx, req) {
      describeTags(ctx, req);
    },
    run: async (ctx, req) => describeTags(ctx, req),
  }),
};
