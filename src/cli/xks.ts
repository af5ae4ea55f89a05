import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { ensureDir, openPrivate, readPrivate } from '../home.js';
import { parseInteger } from './args.js';
import { globalsOf, homeOf, print, regionOf, withGlobals } from './common.js';

/** The SoftHSM2 token `kmsvol xks-proxy` makes under the home when no --pkcs11-module is given. */
const DEFAULT_TOKEN_LABEL = 'kmsvol-xks-proxy';

const collect = (v: string, all: string[] | undefined) => [...(all ?? []), v];

/**
 * `kmsvol xks-proxy`: an External Key Store proxy (XKS Proxy API v1) over
 * HTTP on this machine, in front of a PKCS#11 token: a SoftHSM2 token under
 * the home by default, or `--pkcs11-module` and `--token-label` with the user
 * PIN in $KMSVOL_XKS_TOKEN_PIN. Runs until SIGTERM or SIGINT. See
 * docs/xks-proxy.md.
 */
export function xksProxyCommand(): Command {
  return withGlobals(new Command('xks-proxy'))
    .description('Serve the External Key Store (XKS) Proxy API v1 in front of a PKCS#11 token, for EXTERNAL_KEY_STORE custom key stores')
    .requiredOption('--uri-path <path>', 'the XksProxyUriPath: [/prefix]/kms/xks/v1')
    .requiredOption('--access-key-id <id>', 'the proxy credential’s AccessKeyId (20-30 of A-Z and 2-7); give two pairs to rotate', collect)
    .option(
      '--secret-access-key <secret>',
      'the proxy credential’s RawSecretAccessKey (43-64 of A-Z, a-z, 0-9, +, /, =), in the order of --access-key-id; better in $KMSVOL_XKS_SECRET_ACCESS_KEY (comma-separated to rotate), which other users cannot read as they can a command line',
      collect,
      [],
    )
    .option('--port <port>', 'TCP port (0: any free one)', '0')
    .option('--host <address>', 'address to bind (default 127.0.0.1: loopback only)', '127.0.0.1')
    .option('--key-id <id>', 'an external key to create in the token when missing (repeatable)', collect, [])
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--pkcs11-module <path>', 'a PKCS#11 module (default: SoftHSM2 with a token under the home)')
    .option('--token-label <label>', 'the token’s label (with --pkcs11-module); its user PIN comes from $KMSVOL_XKS_TOKEN_PIN')
    .action(
      async (
        opts: {
          uriPath: string;
          accessKeyId: string[];
          secretAccessKey: string[];
          port: string;
          host: string;
          keyId: string[];
          pkcs11Module?: string;
          tokenLabel?: string;
          tlsCert?: string;
          tlsKey?: string;
        },
        self: Command,
      ) => {
        const g = globalsOf(self);
        const { URI_PATH_PATTERN, MAX_URI_PATH, KEY_ID_PATTERN } = await import('../xks/wire.js');
        if (!URI_PATH_PATTERN.test(opts.uriPath) || opts.uriPath.length > MAX_URI_PATH)
          throw new UsageError(`--uri-path must be [/prefix]/kms/xks/v1 of at most 128 of a-z, A-Z, 0-9, /, - and _; got '${opts.uriPath}'.`);
        if (opts.secretAccessKey.length) {
          // Another user sees a command line (ps, /proc/PID/cmdline): overwrite it, and say so.
          process.title = 'kmsvol xks-proxy';
          process.stderr.write(
            'kmsvol xks-proxy: --secret-access-key is visible to other users until the proxy starts; pass it in $KMSVOL_XKS_SECRET_ACCESS_KEY instead.\n',
          );
        } else opts.secretAccessKey = (process.env.KMSVOL_XKS_SECRET_ACCESS_KEY ?? '').split(',').filter(Boolean);
        if (opts.accessKeyId.length !== opts.secretAccessKey.length || opts.accessKeyId.length > 2)
          throw new UsageError(
            'Give one secret access key per --access-key-id (one credential, or two while rotating), in $KMSVOL_XKS_SECRET_ACCESS_KEY (comma-separated) or --secret-access-key.',
          );
        if (new Set(opts.accessKeyId).size !== opts.accessKeyId.length) throw new UsageError('Each --access-key-id must name one secret only.');
        if (!opts.accessKeyId.every((k) => /^[A-Z2-7]{20,30}$/.test(k)))
          throw new UsageError('--access-key-id must be 20 to 30 of A-Z and 2-7 (the XKS proxy specification, Appendix A).');
        if (!opts.secretAccessKey.every((k) => /^[A-Za-z0-9+/=]{43,64}$/.test(k)))
          throw new UsageError('--secret-access-key must be 43 to 64 of A-Z, a-z, 0-9, +, / and = (for example: openssl rand -base64 32).');
        const credentials = opts.accessKeyId.map((accessKeyId, i) => ({ accessKeyId, secretAccessKey: opts.secretAccessKey[i]! }));
        const region = regionOf(g);
        if (!region || !/^[a-z0-9-]{1,40}$/.test(region)) throw new UsageError('--region must name the KMS region that signs the requests, such as us-east-1.');
        for (const k of opts.keyId)
          if (!KEY_ID_PATTERN.test(k)) throw new UsageError(`--key-id must be 1 to 128 of A-Z, a-z, 0-9, '.', '-' and '_'; got '${k}'.`);
        const port = parseInteger(opts.port, 'port');
        if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535; got ${port}`);

        if (!opts.tlsCert !== !opts.tlsKey) throw new UsageError('--tls-cert and --tls-key go together.');
        const tls = opts.tlsCert && opts.tlsKey ? { cert: readFile(opts.tlsCert, 'tls-cert'), key: readFile(opts.tlsKey, 'tls-key') } : undefined;
        const { initSoftHsmToken } = await import('../hsm/token.js');
        const { TokenKeyManager } = await import('../xks/keys.js');
        const { createXksProxy } = await import('../xks/proxy.js');
        let keys: import('../xks/keys.js').TokenKeyManager;
        if (opts.pkcs11Module) {
          if (!opts.tokenLabel) throw new UsageError('--pkcs11-module needs --token-label.');
          const pin = process.env.KMSVOL_XKS_TOKEN_PIN;
          if (!pin) throw new UsageError('Set KMSVOL_XKS_TOKEN_PIN to the user PIN of the token (it is not taken on the command line).');
          keys = TokenKeyManager.open({ module: opts.pkcs11Module, tokenLabel: opts.tokenLabel }, pin, opts.keyId);
        } else {
          const dir = path.join(homeOf(g).root, 'xks-proxy');
          ensureDir(dir);
          const pins = tokenPins(path.join(dir, 'token-pins.json'));
          const cfg = initSoftHsmToken({ dir: path.join(dir, 'softhsm2'), label: DEFAULT_TOKEN_LABEL, soPin: pins.so, userPin: pins.user });
          keys = TokenKeyManager.open(cfg, pins.user, opts.keyId);
        }
        const log = (line: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
        const server = createXksProxy({
          uriPath: opts.uriPath,
          credentials,
          region,
          keys,
          log,
          ...(tls ? { tls } : {}),
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, opts.host, resolve);
        });
        const address = server.address() as { port: number };
        const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
        const endpoint = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
        process.stderr.write(`kmsvol xks-proxy listening on ${endpoint}${opts.uriPath} (region ${region}, token ${keys.id})\n`);
        print({ XksProxyUriEndpoint: endpoint, XksProxyUriPath: opts.uriPath, XksKeyIds: opts.keyId }, g);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        await new Promise<void>((resolve) => server.close(() => resolve()));
        keys.close();
      },
    );
}

function readFile(file: string, option: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`--${option}: cannot read ${file} (${(e as NodeJS.ErrnoException).code}).`);
  }
}

/**
 * The PINs of the home's SoftHSM2 token, made once (random, 0600 in the
 * home). The token holds keys that never leave it; the PINs only unlock it
 * for this user, whom the home's permissions already single out.
 */
function tokenPins(file: string): { so: string; user: string } {
  const have = readPrivate(file);
  if (have) {
    const p = JSON.parse(have.toString('utf8')) as { so?: unknown; user?: unknown };
    if (typeof p.so === 'string' && typeof p.user === 'string') return { so: p.so, user: p.user };
    throw new UsageError(`${file} is not the PIN file kmsvol wrote; remove the directory ${path.dirname(file)} to start a new token.`);
  }
  const pins = { so: crypto.randomBytes(16).toString('hex'), user: crypto.randomBytes(16).toString('hex') };
  const fd = openPrivate(file, 'w', true);
  try {
    fs.writeSync(fd, JSON.stringify(pins));
  } finally {
    fs.closeSync(fd);
  }
  return pins;
}
