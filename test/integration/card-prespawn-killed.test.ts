import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { BIN, kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPids } from '../helpers/procs.js';

/**
 * Adversarial review (breaker2). Attach starts the card before it makes the
 * grant (src/card/spawn.ts); the card then waits for its spec on stdin. When
 * the CLI is killed -9 while it waits for the KMS (here a KMS endpoint that
 * accepts the connection and never answers CreateGrant), the card must not
 * be left waiting: its stdin's write end dies with the CLI, so it reads EOF
 * and exits. (Watched: the card exits -- this test passes on main; it guards
 * the property, and fails if the card is given a stdin that outlives the CLI.)
 */
describe('a card started before its grant, when the CLI is killed -9 before the spec', () => {
  it('exits on its own: no waiting card is left behind', async () => {
    const home = tempHome();
    const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const vol = kmsvol(home, [
      'ec2',
      'create-volume',
      '--size',
      '1',
      '--encrypted',
      '--kms-key-id',
      key,
      '--query',
      'VolumeId',
      '--output',
      'text',
    ]).stdout.trim();
    expect(vol).toMatch(/^vol-/);
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => held.push(s)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    onCleanup(() => {
      for (const s of held) s.destroy();
      silent.close();
    });
    const port = (silent.address() as net.AddressInfo).port;
    const cli = spawn(process.execPath, [BIN, 'ec2', 'attach-volume', '--volume-id', vol], {
      env: {
        ...process.env,
        KMSVOL_HOME: home,
        KMSVOL_KMS_ENDPOINT: `http://127.0.0.1:${port}`,
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_REGION: 'us-east-1',
      },
      stdio: 'ignore',
    });
    onCleanup(() => {
      cli.kill('SIGKILL');
      for (const p of cardPids(vol)) process.kill(p, 'SIGKILL');
    });
    await expect.poll(() => held.length > 0 && cardPids(vol).length === 1, { timeout: 30_000, interval: 50 }).toBe(true);
    cli.kill('SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000, interval: 50 }).toEqual([]);
  });
});
