import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * EC2 checks a request's required members before DryRun: a CreateTags
 * without Resources (ResourceId.N) answers MissingParameter, with or without
 * DryRun (breaker2's finding: kmsvol answered DryRunOperation, "would have
 * succeeded", for CreateTags and DeleteTags, whose dry-run check does not look
 * for the resources). boto3 with its own parameter validation off sends what a
 * hand-made Query request would.
 */
const PY = `
import boto3, sys
from botocore.config import Config
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], config=Config(parameter_validation=False))
try:
    getattr(ec2, sys.argv[2])(DryRun=True)
    print("no error")
except Exception as e:
    print(e.response["Error"]["Code"])
`;

describe('DryRun checks the required members first', () => {
  for (const op of ['create_tags', 'delete_tags']) {
    it(`${op} with DryRun and no Resources: MissingParameter`, async () => {
      const home = tempHome('kmsvol-dryrun-');
      const ep = await startEndpoint(home);
      const r = spawnSync('python3', ['-c', PY, ep.url, op], { env: { ...process.env, ...ep.env }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('MissingParameter');
    });
  }
});
