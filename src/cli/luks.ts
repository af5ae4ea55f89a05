import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_REGION } from '../config.js';
import { ServiceError, UsageError } from '../errors.js';
import { openExistingHome, resolveHomeDir } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import { openKmsClient as openClient } from '../kms/client/open.js';
import { kmsEndpointFromEnv, RemoteKmsClient } from '../kms/client/remote.js';
import { packageRoot } from '../root.js';
import { SECRET_BYTES } from '../volume/keyslot.js';
import { TOKEN_VERSION } from '../volume/luks2.js';
import { upgradeVolume } from '../volume/upgrade.js';
import type { GlobalOptions } from './common.js';
import { globalsOf, openKmsClient, print, withGlobals } from './common.js';
import { openEc2 } from './ec2.js';
import { EXIT, OperationContext } from './errors.js';

/**
 * `kmsvol luks`: stock cryptsetup and kmsvol images (docs/luks.md). The token
 * plugin (native/token) and its helper are installed and removed here, the
 * helper itself is `token-unwrap`, and `upgrade-volume` gives an image made
 * before keyslots its keyslot.
 */

/** Where cryptsetup 2.6 on Debian loads external token plugins from (crypt_token_external_path). */
export const PLUGIN_DIR = '/usr/lib/x86_64-linux-gnu/cryptsetup';
export const PLUGIN_NAME = 'libcryptsetup-token-kmsvol.so';
/** The one program the plugin runs (compiled into it: native/token/kmsvol-token.c). */
export const HELPER = '/usr/libexec/kmsvol/token-helper';

/** Write `data` to `file` with `mode` through a temporary name in the same directory, so the file is whole or absent. */
function installFile(file: string, data: Buffer | string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
  try {
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function installPlugin(): { Plugin: string; Helper: string } {
  if (process.getuid?.() !== 0) throw new UsageError("install-token-plugin writes into cryptsetup's plugin directory and /usr/libexec: run it as root.");
  const built = path.join(packageRoot(), 'native/token/build', PLUGIN_NAME);
  if (!fs.existsSync(built))
    throw new UsageError(`The token plugin is not built (${built}). Install libcryptsetup-dev and libjson-c-dev, then run: node scripts/build-native.mjs`);
  const bin = path.join(packageRoot(), 'bin/kmsvol.js');
  if (/['\n]/.test(process.execPath + bin)) throw new UsageError('The paths of node and kmsvol must not hold a quote or a newline.');
  fs.mkdirSync(path.dirname(HELPER), { recursive: true, mode: 0o755 });
  installFile(
    HELPER,
    `#!/bin/sh\n# Installed by kmsvol luks install-token-plugin; run by ${PLUGIN_NAME}.\nexec '${process.execPath}' '${bin}' luks "$@"\n`,
    0o755,
  );
  const plugin = path.join(PLUGIN_DIR, PLUGIN_NAME);
  fs.mkdirSync(PLUGIN_DIR, { recursive: true, mode: 0o755 });
  installFile(plugin, fs.readFileSync(built), 0o644);
  return { Plugin: plugin, Helper: HELPER };
}

function uninstallPlugin(): { Removed: string[] } {
  const removed: string[] = [];
  for (const f of [path.join(PLUGIN_DIR, PLUGIN_NAME), HELPER]) {
    if (fs.existsSync(f)) {
      fs.rmSync(f, { force: true });
      removed.push(f);
    }
  }
  try {
    fs.rmdirSync(path.dirname(HELPER));
  } catch {
    // not empty, or already gone: left as it is
  }
  return { Removed: removed };
}

interface TokenJson {
  version?: number;
  key_arn: string;
  secret_blob: string;
  encryption_context: Record<string, string>;
  region?: string;
  kms?: { home?: string; endpoint?: string; aws?: boolean };
}

function parseToken(text: string): TokenJson {
  let t: Partial<TokenJson>;
  try {
    t = JSON.parse(text);
  } catch {
    throw new UsageError('token-unwrap reads a kmsvol token (JSON) on stdin; that was not JSON.');
  }
  if ((t.version ?? 0) > TOKEN_VERSION)
    throw new UsageError(`The kmsvol token is version ${t.version}; this kmsvol reads up to ${TOKEN_VERSION}. Upgrade kmsvol.`);
  if (typeof t.key_arn !== 'string' || typeof t.secret_blob !== 'string' || !t.encryption_context || typeof t.encryption_context !== 'object')
    throw new UsageError('The kmsvol token has no key_arn, secret_blob or encryption_context (a version-0 token: run kmsvol luks upgrade-volume).');
  return t as TokenJson;
}

/**
 * The KMS the helper asks: what the environment or the command line names
 * (KMSVOL_HOME, --home, KMSVOL_KMS, KMSVOL_KMS_ENDPOINT, AWS_ENDPOINT_URL_KMS)
 * comes first; otherwise where the token says the KMS was when the image was made.
 */
/**
 * The KMS that unwraps the secret. The image is not trusted (anyone may have
 * made it, and root's cryptsetup reads it): what the caller chose comes
 * first (--home/--kms/--kms-endpoint, KMSVOL_HOME, KMSVOL_KMS, an endpoint
 * variable); the token's hints are used only where they cannot turn the
 * caller's authority against it. Its `home` must already be a kmsvol home
 * (openExistingHome: nothing is created or changed); its `endpoint` is never
 * sent the caller's credentials, only named in the error; `aws` is AWS KMS
 * itself. With no hint, the caller's own home, if it exists.
 */
/** How long the helper waits for the KMS (a systemd unit's token-timeout= does not bound an answer that never comes). */
const UNWRAP_DEADLINE_MS = 30_000;

function kmsFor(g: GlobalOptions, t: TokenJson): KmsClient {
  const region = g.region ?? process.env.AWS_REGION ?? t.region ?? DEFAULT_REGION;
  const named = g.home || g.kms || process.env.KMSVOL_HOME || process.env.KMSVOL_KMS;
  if (named) return openKmsClient(g);
  const endpoint = g.kmsEndpoint ?? kmsEndpointFromEnv();
  // An endpoint signs with the AWS_* variables when they are set, else as the AWS CLI finds credentials (AWS_PROFILE, ~/.aws/credentials, ...).
  if (endpoint) return new RemoteKmsClient({ endpoint, region, ...(process.env.AWS_ACCESS_KEY_ID ? {} : { credentials: 'standard' as const }) });
  if (t.kms?.endpoint)
    throw new UsageError(
      `The token names the KMS endpoint ${JSON.stringify(t.kms.endpoint)}; kmsvol never sends your credentials to an endpoint an image names. If you trust it, set AWS_ENDPOINT_URL_KMS=${t.kms.endpoint} (or KMSVOL_KMS_ENDPOINT) in cryptsetup's environment.`,
    );
  if (t.kms?.aws) return openClient({ home: undefined as never, kms: 'aws', region });
  return openClient({ home: openExistingHome(t.kms?.home ?? resolveHomeDir()), region });
}

/** Write all of `b` to fd 1. */
function writeAll(b: Buffer): void {
  for (let off = 0; off < b.length; ) off += fs.writeSync(1, b, off, b.length - off);
}

async function tokenUnwrap(g: GlobalOptions): Promise<void> {
  if (process.stdout.isTTY) throw new UsageError('token-unwrap writes the secret as raw bytes for the token plugin; it never writes to a terminal.');
  const t = parseToken(fs.readFileSync(0, 'utf8'));
  // cryptsetup waits for the plugin, and the plugin for this helper: a KMS that never answers must not hold them forever.
  const deadline = setTimeout(() => {
    process.stderr.write(`kmsvol token-unwrap: the KMS did not answer Decrypt within ${UNWRAP_DEADLINE_MS / 1000} s; the token is not opened.\n`);
    process.exit(EXIT.OTHER);
  }, UNWRAP_DEADLINE_MS);
  deadline.unref();
  const kms = kmsFor(g, t);
  try {
    const res = await kms.send('Decrypt', { CiphertextBlob: Buffer.from(t.secret_blob, 'base64'), EncryptionContext: t.encryption_context, KeyId: t.key_arn });
    try {
      if (res.Plaintext.length !== SECRET_BYTES)
        throw new ServiceError('InvalidCiphertextException', `The token's secret_blob decrypts to ${res.Plaintext.length} bytes, not ${SECRET_BYTES}.`);
      writeAll(res.Plaintext);
    } finally {
      res.Plaintext.fill(0);
    }
  } finally {
    kms.close();
  }
}

export function luksCommand(): Command {
  const luks = withGlobals(new Command('luks')).description('Stock cryptsetup and kmsvol images: the LUKS2 token plugin (docs/luks.md)');
  luks
    .addCommand(
      withGlobals(new Command('install-token-plugin'))
        .description(`Install ${PLUGIN_NAME} into ${PLUGIN_DIR} and its helper ${HELPER} (as root)`)
        .action(async (_o, self: Command) => OperationContext.run('InstallTokenPlugin', async () => print(installPlugin(), globalsOf(self)))),
    )
    .addCommand(
      withGlobals(new Command('uninstall-token-plugin'))
        .description('Remove the token plugin and its helper')
        .action(async (_o, self: Command) => OperationContext.run('UninstallTokenPlugin', async () => print(uninstallPlugin(), globalsOf(self)))),
    )
    .addCommand(
      withGlobals(new Command('token-unwrap'))
        .description("The token plugin's helper: a kmsvol token (JSON) on stdin, the 32-byte keyslot secret from KMS Decrypt on stdout")
        .action(async (_o, self: Command) => OperationContext.run('Decrypt', () => tokenUnwrap(globalsOf(self)))),
    )
    .addCommand(
      withGlobals(new Command('upgrade-volume'))
        .description('Give an encrypted volume made before keyslots (token version 0) the keyslot its KMS-wrapped secret opens')
        .requiredOption('--volume-id <id>', 'the volume')
        .action(async (o: { volumeId: string }, self: Command) =>
          OperationContext.run('UpgradeVolume', async () => {
            const g = globalsOf(self);
            const ctx = openEc2(g);
            try {
              print(await upgradeVolume(ctx, { VolumeId: o.volumeId }), g);
            } finally {
              ctx.close();
            }
          }),
        ),
    );
  return luks;
}
