import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tempHome } from '../helpers/home.js';
import { testUser } from '../helpers/users.js';
import { startXksProxy, XKS_AK, XKS_REGION, XKS_SK } from '../helpers/xks.js';

/**
 * `kmsvol xks-proxy` against another local user (docs/xks-proxy.md, "What
 * each side trusts"): whoever holds the proxy's secret access key can encrypt
 * and decrypt with every key in its token, so the secret must not be readable
 * by another user of the machine. The PIN is kept off the command line for
 * that reason; the secret access key is not.
 */
describe('the xks-proxy secret access key and other local users', () => {
  it('a running proxy started as the docs show does not show its secret access key to another user (ps, /proc/PID/cmdline)', async () => {
    const proxy = await startXksProxy({ home: tempHome('kmsvol-xksp-'), uriPath: '/kms/xks/v1', keyIds: ['k1'] });
    const other = testUser();
    const ps = other.sh('ps -eo args=');
    expect(ps.code).toBe(0);
    expect(ps.stdout).toContain('xks-proxy');
    expect(ps.stdout).not.toContain(XKS_SK);
    await proxy.stop();
  });

  it('given on the command line after all (--secret-access-key), it is gone from the command line once the proxy serves', async () => {
    const proxy = await startXksProxy({ home: tempHome('kmsvol-xksp-'), uriPath: '/kms/xks/v1', keyIds: ['k1'], args: ['--secret-access-key', XKS_SK] });
    const ps = testUser().sh('ps -eo args=');
    expect(ps.stdout).toContain('xks-proxy');
    expect(ps.stdout).not.toContain(XKS_SK);
    await proxy.stop();
  });
});

describe("the proxy's own health-check key", () => {
  it('is not an external key a KMS can name: GetKeyMetadata for it is KeyNotFoundException (its health checks must never use a KMS key)', async () => {
    const proxy = await startXksProxy({ home: tempHome('kmsvol-xksp-'), uriPath: '/kms/xks/v1', keyIds: ['k1'] });
    const body = JSON.stringify({ requestMetadata: { kmsRequestId: 'r1', kmsOperation: 'CreateKey', awsPrincipalArn: 'arn:aws:iam::111122223333:root' } });
    const metadata = (keyId: string) =>
      JSON.parse(
        execFileSync('curl', [
          '-s',
          '--aws-sigv4',
          `aws:amz:${XKS_REGION}:kms-xks-proxy`,
          '--user',
          `${XKS_AK}:${XKS_SK}`,
          '-H',
          'content-type: application/json',
          '-d',
          body,
          `${proxy.endpoint}/kms/xks/v1/keys/${keyId}/metadata`,
        ]).toString(),
      );
    expect(metadata('k1').keyStatus).toBe('ENABLED');
    expect(metadata('kmsvol-xks-proxy-health-check').errorName).toBe('KeyNotFoundException');
    await proxy.stop();
  });
});
