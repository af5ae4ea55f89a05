import {
  getEbsDefaultKmsKeyId,
  getEbsEncryptionByDefault,
  modifyEbsDefaultKmsKeyId,
  resetEbsDefaultKmsKeyId,
  setEbsEncryptionByDefault,
} from '../../volume/defaults.js';
import { Ec2Errors } from '../../volume/errors.js';
import type { Operation } from './operation.js';
import { action, checkKey } from './operation.js';
import { S } from './protocol.js';

/** Encryption by default and the default KMS key: account settings, per region in AWS, per home here. */
const none = async () => undefined;

export const ebsDefaultOperations: Record<string, Operation> = {
  EnableEbsEncryptionByDefault: { input: {}, check: none, run: async (ctx) => setEbsEncryptionByDefault(ctx, true) },
  DisableEbsEncryptionByDefault: { input: {}, check: none, run: async (ctx) => setEbsEncryptionByDefault(ctx, false) },
  GetEbsEncryptionByDefault: { input: {}, check: none, run: async (ctx) => getEbsEncryptionByDefault(ctx) },
  GetEbsDefaultKmsKeyId: { input: {}, check: none, run: async (ctx) => getEbsDefaultKmsKeyId(ctx) },
  ModifyEbsDefaultKmsKeyId: action<{ KmsKeyId?: string }>({
    input: { KmsKeyId: S.str },
    async check(ctx, req) {
      if (!req.KmsKeyId) throw Ec2Errors.missingParameter('The request must contain the parameter KmsKeyId');
      await checkKey(ctx, req.KmsKeyId);
    },
    async run(ctx, req) {
      if (!req.KmsKeyId) throw Ec2Errors.missingParameter('The request must contain the parameter KmsKeyId');
      return modifyEbsDefaultKmsKeyId(ctx, req.KmsKeyId);
    },
  }),
  ResetEbsDefaultKmsKeyId: { input: {}, check: none, run: async (ctx) => resetEbsDefaultKmsKeyId(ctx) },
};
