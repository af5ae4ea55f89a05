import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { packageRoot } from '../../root.js';
import type { XksProxyConfig } from '../../xks/client.js';
import { KmsError } from '../errors.js';

/**
 * The KMS's operations are synchronous (SQLite, PKCS#11); the XKS client
 * (src/xks/client.ts) speaks HTTP asynchronously. This bridge runs the client
 * in one worker thread per process and waits for each answer with
 * Atomics.wait, so a KMS operation can call the proxy as it calls a token.
 * The worker keeps one client (and its keep-alive connections) per proxy
 * configuration. An XksError crosses back as a ServiceError with the same
 * name (the KMS exception for the calling operation) and message, plus its
 * ConnectionErrorCode, as a KmsError.
 */

export class XksBridgeError extends KmsError {
  readonly connectionErrorCode: string;
  constructor(name: string, message: string, connectionErrorCode: string) {
    super(name, message, 400);
    this.connectionErrorCode = connectionErrorCode;
  }
}

/** The compiled client in dist/, whether this file runs from there, from src/ (tests) or from the CLI bundle. */
function clientUrl(): string {
  return pathToFileURL(path.join(packageRoot(), 'dist/xks/client.js')).href;
}

const WORKER = `
const { parentPort } = require('node:worker_threads');
const clients = new Map();
const buf = (x) => (x instanceof Uint8Array ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : x);
const deep = (x) => (x instanceof Uint8Array ? buf(x) : x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deep(v)])) : x);
parentPort.on('message', async ({ port, flag, url, cfg, op, args }) => {
  let out;
  try {
    const mod = await import(url);
    const key = JSON.stringify(cfg);
    let c = clients.get(key);
    if (!c) clients.set(key, (c = new mod.XksClient(cfg)));
    out = { ok: await c[op](...args.map(deep)) };
  } catch (e) {
    out = { err: { name: e && e.name, message: e && e.message, connectionErrorCode: e && e.connectionErrorCode } };
  }
  port.postMessage(out);
  port.close();
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

let worker: Worker | undefined;

function theWorker(): Worker {
  if (!worker) {
    worker = new Worker(WORKER, { eval: true });
    worker.unref();
    worker.on('error', () => {
      worker = undefined;
    });
  }
  return worker;
}

const toBuffer = (x: unknown): unknown =>
  x instanceof Uint8Array
    ? Buffer.from(x.buffer, x.byteOffset, x.byteLength)
    : x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toBuffer(v)]))
      : x;

/** Call `op` of the XKS client for `cfg` and wait for its answer (at most `waitMs`). */
export function xksCall<T>(cfg: XksProxyConfig, op: 'health' | 'keyMetadata' | 'encrypt' | 'decrypt', args: unknown[], kmsOperation: string, waitMs = 5000): T {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  try {
    theWorker().postMessage({ port: port2, flag, url: clientUrl(), cfg, op, args }, [port2]);
    Atomics.wait(flag, 0, 0, waitMs);
    const msg = receiveMessageOnPort(port1)?.message as { ok?: unknown; err?: { name?: string; message?: string; connectionErrorCode?: string } } | undefined;
    if (!msg)
      throw new XksBridgeError(
        kmsOperation === 'ConnectCustomKeyStore' || kmsOperation === 'CreateCustomKeyStore' ? 'XksProxyUriUnreachableException' : 'KMSInvalidStateException',
        'The external key store proxy did not respond in time. Retry; if this happens again, report it to the administrator of the proxy.',
        'XKS_PROXY_TIMED_OUT',
      );
    if (msg.err) {
      if (msg.err.connectionErrorCode === undefined)
        throw new XksBridgeError('KMSInternalException', `The XKS client failed: ${msg.err.message}`, 'INTERNAL_ERROR');
      throw new XksBridgeError(msg.err.name ?? 'KMSInvalidStateException', msg.err.message ?? '', msg.err.connectionErrorCode);
    }
    return toBuffer(msg.ok) as T;
  } finally {
    port1.close();
  }
}
