import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { tempHome } from '../helpers/home.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/**
 * Every operation of the AWS KMS models either works or answers an AWS
 * error: none is UnknownOperationException. The operations come from
 * botocore's model (Debian's boto3 calls each with a request generated from
 * the model) and from @aws-sdk/client-kms's commands.
 */
const BOTOCORE_MODEL = '/usr/lib/python3/dist-packages/botocore/data/kms/2014-11-01/service-2.json';
let ep: RunningEndpoint & { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  const home = tempHome('kmsvol-everyop-');
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'tester']).json.AccessKey;
  ep = { ...(await startEndpoint(home)), accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey };
});
afterAll(async () => {
  await ep.stop();
});

describe('every KMS operation is answered', () => {
  it("botocore's model: no operation answers UnknownOperationException, and every error is AWS's for it", () => {
    const r = spawnSync('/usr/bin/python3', [path.join(ROOT, 'test/interop/py/every_operation.py'), ep.url, ep.accessKeyId, ep.secretAccessKey], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Record<string, { result: string; modeled?: boolean; message?: string }>;
    const model = JSON.parse(fs.readFileSync(BOTOCORE_MODEL, 'utf8'));
    expect(Object.keys(results).sort()).toEqual(Object.keys(model.operations).sort());
    const unknown = Object.entries(results)
      .filter(([, v]) => v.result === 'UnknownOperationException')
      .map(([op]) => op);
    expect(unknown).toEqual([]);
    // Errors are the model's own for the operation, or the protocol-wide ValidationException.
    const undocumented = Object.entries(results)
      .filter(([, v]) => v.result !== 'ok' && !v.modeled && v.result !== 'ValidationException')
      .map(([op, v]) => `${op}: ${v.result}`);
    expect(undocumented).toEqual([]);
    // The generated calls reach the operations' own logic (most succeed or fail on the key, not on the request shape).
    expect(Object.values(results).filter((v) => v.result === 'ok').length).toBeGreaterThanOrEqual(20);
  });

  it('@aws-sdk/client-kms: no command answers UnknownOperationException', async () => {
    const client = new sdk.KMSClient({
      endpoint: ep.url,
      region: 'us-east-1',
      credentials: { accessKeyId: ep.accessKeyId, secretAccessKey: ep.secretAccessKey },
      maxAttempts: 1,
    });
    const commands = Object.keys(sdk).filter((n) => n.endsWith('Command') && n !== 'Command' && !n.startsWith('$'));
    expect(commands.length).toBeGreaterThanOrEqual(56);
    const unknown: string[] = [];
    for (const name of commands) {
      const Command = (sdk as unknown as Record<string, new (i: object) => never>)[name]!;
      try {
        await client.send(new Command({}));
      } catch (e) {
        if ((e as Error).name === 'UnknownOperationException') unknown.push(name);
      }
    }
    client.destroy();
    expect(unknown).toEqual([]);
  });
});
