import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ec2 from '@aws-sdk/client-ec2';
import * as sts from '@aws-sdk/client-sts';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol, ROOT } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * Issue 26's conformance sweep for EC2 and STS: every authentication failure
 * (missing, malformed, wrong signature, expired, future, unknown key, wrong
 * service, wrong region) through every client (the AWS CLI v2 and boto3 from
 * Debian, @aws-sdk/client-ec2 and client-sts), checking the code each client
 * surfaces. Each failure is made the way a user's setup would make it: no
 * signing (--no-sign-request, UNSIGNED, a signer that signs nothing), an
 * access key id with a '/' (the client writes a malformed Credential), a
 * wrong secret, the client's clock 20 minutes off (libfaketime for the CLI
 * and boto3; the SDK's systemClockOffset), an unknown key, signing for
 * another service (a CLI plugin / boto3 before-sign handler; an SDK signer
 * for 'iam'), and a region the endpoint does not serve (it serves us-east-1
 * only). Retries are off (one attempt), so what is shown is the endpoint's
 * first answer. The table is printed.
 */
const FAILURES = ['none', 'missing', 'malformed', 'wrong-signature', 'expired', 'future', 'unknown-key', 'wrong-service', 'wrong-region'] as const;
type Failure = (typeof FAILURES)[number];
type Svc = 'ec2' | 'sts';
const CLIENTS = ['aws-cli', 'boto3', 'aws-sdk'] as const;

/** The code AWS answers each failure with, per service (EC2 API reference, Error codes; STS and the common errors). */
const EXPECTED: Record<Svc, Record<Failure, string>> = {
  ec2: {
    none: 'ok',
    missing: 'MissingAuthenticationToken',
    malformed: 'IncompleteSignature',
    'wrong-signature': 'SignatureDoesNotMatch',
    expired: 'RequestExpired',
    future: 'RequestExpired',
    'unknown-key': 'AuthFailure',
    'wrong-service': 'SignatureDoesNotMatch',
    'wrong-region': 'SignatureDoesNotMatch',
  },
  sts: {
    none: 'ok',
    missing: 'MissingAuthenticationToken',
    malformed: 'IncompleteSignature',
    'wrong-signature': 'SignatureDoesNotMatch',
    expired: 'SignatureDoesNotMatch',
    future: 'SignatureDoesNotMatch',
    'unknown-key': 'InvalidClientTokenId',
    'wrong-service': 'SignatureDoesNotMatch',
    'wrong-region': 'SignatureDoesNotMatch',
  },
};

const SKEW_MIN = 20;
const DIR = path.join(ROOT, 'test/interop/auth');

let home: string;
let ep: RunningEndpoint;
let key: { id: string; secret: string };
let configFile: string;
beforeAll(async () => {
  home = tempHome('kmsvol-auth-');
  const k = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'tester']).json.AccessKey;
  key = { id: k.AccessKeyId, secret: k.SecretAccessKey };
  ep = await startEndpoint(home, ['--region', 'us-east-1']);
  // The AWS CLI loads the scope plugin from its config file, as any CLI plugin is loaded.
  configFile = path.join(home, 'aws-config');
  fs.writeFileSync(configFile, `[plugins]\ncli_legacy_plugin_path = ${DIR}\nkmsvol_scope = kmsvol_scope_plugin\n`);
}, 60_000);
afterAll(async () => {
  await ep?.stop();
});

/** The credentials and region a failure runs with. */
function setup(f: Failure) {
  return {
    accessKeyId: f === 'malformed' ? 'AKIA/MALFORMED' : f === 'unknown-key' ? 'AKIAUNKNOWN000000000' : key.id,
    secretAccessKey: f === 'wrong-signature' ? 'not-the-secret-not-the-secret-not-the-se' : key.secret,
    region: f === 'wrong-region' ? 'eu-west-1' : 'us-east-1',
    skewMin: f === 'expired' ? -SKEW_MIN : f === 'future' ? SKEW_MIN : 0,
  };
}

function pythonEnv(f: Failure): NodeJS.ProcessEnv {
  const s = setup(f);
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: s.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
    AWS_REGION: s.region,
    AWS_DEFAULT_REGION: s.region,
    AWS_ENDPOINT_URL: ep.url,
    KMSVOL_ENDPOINT: ep.url,
    AWS_CONFIG_FILE: configFile,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
    AWS_RETRY_MODE: 'standard',
    AWS_PAGER: '',
    ...(f === 'wrong-service' ? { KMSVOL_SIGNING_NAME: 'iam' } : {}),
  };
}

/** The command, under libfaketime when the client's clock is to be off. */
function clocked(f: Failure, argv: string[]): [string, string[]] {
  const m = setup(f).skewMin;
  return m ? ['faketime', ['-f', `${m > 0 ? '+' : ''}${m}m`, ...argv]] : [argv[0]!, argv.slice(1)];
}

function viaCli(svc: Svc, f: Failure): string {
  const args = svc === 'ec2' ? ['ec2', 'describe-volumes'] : ['sts', 'get-caller-identity'];
  // Debian's CLI (2.9) predates AWS_ENDPOINT_URL: the endpoint is an option.
  const [cmd, argv] = clocked(f, ['/usr/bin/aws', '--endpoint-url', ep.url, ...args, ...(f === 'missing' ? ['--no-sign-request'] : [])]);
  const r = spawnSync(cmd, argv, { env: pythonEnv(f), encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return 'ok';
  return /An error occurred \(([^)]+)\)/.exec(r.stderr)?.[1] ?? `exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`;
}

function viaBoto3(svc: Svc, f: Failure): string {
  const [cmd, argv] = clocked(f, ['/usr/bin/python3', path.join(DIR, 'sweep_boto3.py'), svc, f]);
  const r = spawnSync(cmd, argv, { env: pythonEnv(f), encoding: 'utf8', timeout: 60_000 });
  try {
    return JSON.parse(r.stdout).code;
  } catch {
    return `exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`;
  }
}

class Sha256 {
  private readonly h: crypto.Hash | crypto.Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
  }
  update(d: string | Uint8Array) {
    this.h.update(d);
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

async function viaSdk(svc: Svc, f: Failure): Promise<string> {
  const s = setup(f);
  const credentials = { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey };
  const inner = new SignatureV4({ credentials, region: s.region, service: svc, sha256: Sha256 as never });
  const signer =
    f === 'missing'
      ? // A signer that signs nothing: the request goes out without Authorization.
        { sign: async (r: unknown) => r, presign: async (r: unknown) => r }
      : f === 'wrong-service'
        ? { sign: (r: never, o: Record<string, unknown>) => inner.sign(r, { ...o, signingService: 'iam' }), presign: inner.presign.bind(inner) }
        : undefined;
  const config = {
    endpoint: ep.url,
    region: s.region,
    credentials,
    maxAttempts: 1,
    systemClockOffset: s.skewMin * 60_000,
    ...(signer ? { signer: async () => signer as never } : {}),
  };
  try {
    if (svc === 'ec2') await new ec2.EC2Client(config).send(new ec2.DescribeVolumesCommand({}));
    else await new sts.STSClient(config).send(new sts.GetCallerIdentityCommand({}));
    return 'ok';
  } catch (e) {
    return (e as Error).name;
  }
}

describe('EC2 and STS authentication failures, as each client surfaces them', () => {
  it('every (service, failure, client) cell is the code AWS uses', async () => {
    const rows: { service: Svc; failure: Failure; expected: string; got: Record<string, string> }[] = [];
    for (const service of ['ec2', 'sts'] as const)
      for (const failure of FAILURES) {
        const got: Record<string, string> = {
          'aws-cli': viaCli(service, failure),
          boto3: viaBoto3(service, failure),
          'aws-sdk': await viaSdk(service, failure),
        };
        rows.push({ service, failure, expected: EXPECTED[service][failure], got });
      }
    const w = [7, 16, 27, 27, 27, 27];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join(' | ');
    const table = [
      line(['service', 'failure', 'AWS code', ...CLIENTS]),
      line(w.map((n) => '-'.repeat(n))),
      ...rows.map((r) => line([r.service, r.failure, r.expected, ...CLIENTS.map((c) => (r.got[c] === r.expected ? r.got[c]! : `${r.got[c]} (!)`))])),
    ].join('\n');
    process.stdout.write(`\nauth conformance sweep (endpoint serves us-east-1 only; one attempt per call):\n${table}\n`);
    const wrong = rows.flatMap((r) => CLIENTS.filter((c) => r.got[c] !== r.expected).map((c) => `${r.service} ${r.failure} ${c}: ${r.got[c]}`));
    expect(wrong, table).toEqual([]);
  }, 600_000);
});
