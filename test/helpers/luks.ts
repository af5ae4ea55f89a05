import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { decodeHeader } from '../../src/volume/luks2.js';
import { kmsvol } from './cli.js';
import { onCleanup } from './home.js';
import { head } from './volumes.js';

/** Stock cryptsetup on kmsvol images, for luks-token.test.ts (docs/luks.md). One test file: the plugin is installed for the whole machine, so its tests never run in parallel. */

export const PLUGIN = '/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-kmsvol.so';

/** cryptsetup's environment without KMSVOL_HOME: the plugin finds the KMS from the token alone. */
export function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.KMSVOL_HOME;
  return env;
}

export function cryptsetup(args: string[], input?: Buffer | string) {
  return spawnSync('cryptsetup', args, { input, env: bareEnv(), timeout: 120_000 });
}

/** Install the plugin for this test; cleanup removes it even when the test fails. */
export function installPlugin(home: string): void {
  onCleanup(() => kmsvol(home, ['luks', 'uninstall-token-plugin']));
  const r = kmsvol(home, ['luks', 'install-token-plugin']);
  expect(r.code, r.stderr).toBe(0);
  expect(fs.existsSync(PLUGIN)).toBe(true);
}

/** The keyslot secret of an image, as a user with kms:Decrypt recovers it (a Buffer, handed to cryptsetup on stdin). */
export function secretOf(home: string, img: string): Buffer {
  const t = decodeHeader(head(img, 32768)).token;
  const r = kmsvol(home, [
    'kms',
    'decrypt',
    '--ciphertext-blob',
    t.secretBlob!,
    '--encryption-context',
    JSON.stringify(t.encryptionContext),
    '--query',
    'Plaintext',
    '--output',
    'text',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return Buffer.from(r.stdout.trim(), 'base64');
}

export function imageOf(home: string, vol: string): string {
  return path.join(home, 'volumes', `${vol}.img`);
}

export function tokenOnly(img: string, extra: string[] = []) {
  return cryptsetup(['open', '--test-passphrase', '--token-only', ...extra, img]);
}
