import type { ModifyVolumeRequest } from '../../volume/modify.js';
import { describeVolumeAttribute, describeVolumeStatus, describeVolumesModifications, planModification, startModifyVolume } from '../../volume/modify.js';
import type { Operation } from './operation.js';
import { action, inBackground } from './operation.js';
import { S } from './protocol.js';

/** ModifyVolume (Elastic Volumes), DescribeVolumesModifications, DescribeVolumeStatus, DescribeVolumeAttribute. */
export const modifyOperations: Record<string, Operation> = {
  ModifyVolume: action<ModifyVolumeRequest>({
    input: { VolumeId: S.str, Size: S.int, VolumeType: S.str, Iops: S.int, Throughput: S.int, MultiAttachEnabled: S.bool },
    async check(ctx, req) {
      planModification(ctx, req);
    },
    async run(ctx, req) {
      const started = startModifyVolume(ctx, req);
      inBackground(started.done);
      return { VolumeModification: started.VolumeModification };
    },
  }),

  DescribeVolumesModifications: action<Parameters<typeof describeVolumesModifications>[1]>({
    input: { VolumeIds: S.strList('VolumeId'), Filters: S.filters, NextToken: S.str, MaxResults: S.int },
    async check(ctx, req) {
      describeVolumesModifications(ctx, req);
    },
    run: async (ctx, req) => describeVolumesModifications(ctx, req),
  }),

  DescribeVolumeStatus: action<Parameters<typeof describeVolumeStatus>[1]>({
    input: { Filters: S.filters, MaxResults: S.int, NextToken: S.str, VolumeIds: S.strList('VolumeId') },
    async check(ctx, req) {
      describeVolumeStatus(ctx, req);
    },
    run: async (ctx, req) => describeVolumeStatus(ctx, req),
  }),

  DescribeVolumeAttribute: action<Parameters<typeof describeVolumeAttribute>[1]>({
    input: { Attribute: S.str, VolumeId: S.str },
    async check(ctx, req) {
      describeVolumeAttribute(ctx, req);
    },
    run: async (ctx, req) => describeVolumeAttribute(ctx, req),
  }),
};
