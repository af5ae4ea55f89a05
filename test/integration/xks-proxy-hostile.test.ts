import { describe, expect, it } from 'vitest';
import { tempHome } from '../helpers/home.js';
import { testUser } from '../helpers/users.js';
import { startXksProxy, XKS_SK } from '../helpers/xks.js';

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
});
