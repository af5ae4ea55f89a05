import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';
import { attach, createVolume, detach, mountLoop, unmount, volumeHome } from '../helpers/volumes.js';
import { startXksProxy, XKS_AK, XKS_SK } from '../helpers/xks.js';

/**
 * A volume on a key in an external key store, through the kmsvol CLI and a
 * real card, with `kmsvol xks-proxy` (its own home and SoftHSM2 token) as the
 * external key manager. The KMS's region is the proxy's credential scope.
 */
const URI_PATH = '/vol/kms/xks/v1';

function run(home: string, args: string[]) {
  const r = kmsvol(home, [...args, '--region', 'us-east-1']);
  return r;
}

function failedAttachCause(home: string, vol: string): string {
  const events = kmsvol(home, ['events', '--volume-id', vol]).json.Events as { detail: { event: string; result: string; cause?: string } }[];
  return events.filter((e) => e.detail.event === 'attachVolume' && e.detail.result === 'failed').at(-1)?.detail.cause ?? '';
}

function waitAvailable(home: string, vol: string): void {
  const until = Date.now() + 60_000;
  while (run(home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State !== 'available') {
    if (Date.now() > until) throw new Error(`${vol} did not become available`);
    execFileSync('sleep', ['0.2']);
  }
}

describe('a volume on an EXTERNAL_KEY_STORE key', () => {
  it('attaches through the proxy; a disconnect or a stopped proxy keeps the attached volume serving and fails a new attach with KMSInvalidStateException and an event; reconnect attaches', async () => {
    const ctx = volumeHome();
    const { home } = ctx;
    const proxyHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xksv-'));
    onCleanup(() => fs.rmSync(proxyHome, { recursive: true, force: true }));
    // The proxy's credential scope is the KMS's region (here the default, us-east-1).
    const p2 = await startXksProxy({ home: proxyHome, uriPath: URI_PATH, keyIds: ['vol-key'], region: 'us-east-1' });
    // The AWS CLI's flat shorthand for the credential structure.
    const cred = `AccessKeyId=${XKS_AK},RawSecretAccessKey=${XKS_SK}`;
    const made = run(home, [
      'kms',
      'create-custom-key-store',
      '--custom-key-store-name',
      'hyok',
      '--custom-key-store-type',
      'EXTERNAL_KEY_STORE',
      '--xks-proxy-connectivity',
      'PUBLIC_ENDPOINT',
      '--xks-proxy-uri-endpoint',
      p2.endpoint,
      '--xks-proxy-uri-path',
      URI_PATH,
      '--xks-proxy-authentication-credential',
      cred,
    ]);
    expect(made.code, made.stderr).toBe(0);
    const store = made.json.CustomKeyStoreId as string;
    expect(run(home, ['kms', 'connect-custom-key-store', '--custom-key-store-id', store]).code).toBe(0);
    const key = run(home, ['kms', 'create-key', '--origin', 'EXTERNAL_KEY_STORE', '--custom-key-store-id', store, '--xks-key-id', 'vol-key']).json.KeyMetadata
      .KeyId;
    const vol = createVolume(home, key);
    const dev = attach(home, vol, ['--loop']).LoopDevice!;
    execFileSync('mkfs.ext4', ['-q', dev]);
    let mnt = mountLoop(ctx, dev);
    fs.writeFileSync(path.join(mnt, 'a.txt'), 'before\n');

    run(home, ['kms', 'disconnect-custom-key-store', '--custom-key-store-id', store]);
    fs.writeFileSync(path.join(mnt, 'b.txt'), 'after the disconnect\n'.repeat(1000));
    execFileSync('sync', ['-f', path.join(mnt, 'b.txt')]);
    unmount(ctx, mnt);
    detach(home, vol);
    waitAvailable(home, vol);
    const refused = run(home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(refused.code).toBe(254);
    expect(refused.stderr).toContain('KMSInvalidStateException');
    expect(refused.stderr).toContain(store);
    expect(refused.stderr).toContain('DISCONNECTED');
    expect(failedAttachCause(home, vol)).toMatch(new RegExp(`^KMSInvalidStateException: .*${store}.*DISCONNECTED`));

    run(home, ['kms', 'connect-custom-key-store', '--custom-key-store-id', store]);
    const again = attach(home, vol, ['--loop']).LoopDevice!;
    mnt = mountLoop(ctx, again);
    expect(fs.readFileSync(path.join(mnt, 'a.txt'), 'utf8')).toBe('before\n');
    expect(fs.readFileSync(path.join(mnt, 'b.txt'), 'utf8')).toBe('after the disconnect\n'.repeat(1000));

    // The proxy goes away: the attached volume keeps serving; the next attach fails naming the store.
    await p2.stop();
    fs.writeFileSync(path.join(mnt, 'c.txt'), 'after the proxy stopped\n');
    execFileSync('sync', ['-f', path.join(mnt, 'c.txt')]);
    unmount(ctx, mnt);
    detach(home, vol);
    waitAvailable(home, vol);
    const down = run(home, ['ec2', 'attach-volume', '--volume-id', vol]);
    expect(down.code).toBe(254);
    expect(down.stderr).toContain('KMSInvalidStateException');
    expect(down.stderr).toContain('cannot communicate with the external key store proxy');
    expect(failedAttachCause(home, vol)).toContain(store);
  }, 240_000);
});
