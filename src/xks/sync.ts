import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { DEFAULT_TIMEOUT_MS, type XksCiphertext, XksError, type XksKeyMetadata, type XksProxyConfig } from './client.js';
import type { SyncReply, SyncRequest } from './sync-worker.js';
import type { XksHealthStatus, XksRequestMetadata } from './wire.js';

/**
 * XksClient for synchronous callers (the KMS's operations run synchronously
 * over SQLite and PKCS#11): the same four calls, each blocking the calling
 * thread until the proxy answers or the client's timeout passes. The HTTP
 * runs in one worker thread per process (sync-worker.ts); the caller waits
 * on a shared flag (Atomics.wait) and takes the answer from a message port
 * (receiveMessageOnPort). Errors are the same XksError as XksClient's.
 *
 * Precondition: the proxy is not served by the calling thread's own event
 * loop (that loop is blocked while it waits); a proxy in another process or
 * thread is fine.
 */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKER = fs.existsSync(path.join(HERE, 'sync-worker.js')) ? path.join(HERE, 'sync-worker.js') : path.resolve(HERE, '../../dist/xks/sync-worker.js');
/** Beyond the client's own timeout, how long a caller waits for a worker that does not answer at all. */
const WORKER_GRACE_MS = 2000;

let shared: { worker: Worker; replies: MessagePort } | undefined;
let seq = 0;

function bridge(): { worker: Worker; replies: MessagePort } {
  if (shared) return shared;
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER, { workerData: { port: port2 }, transferList: [port2] });
  worker.unref();
  port1.unref();
  const mine = { worker, replies: port1 };
  worker.once('exit', () => {
    if (shared === mine) shared = undefined;
  });
  shared = mine;
  return mine;
}

function call(cfg: XksProxyConfig, method: SyncRequest['method'], args: unknown[], kmsOperation: string): unknown {
  const { worker, replies } = bridge();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const id = ++seq;
  worker.postMessage({ seq: id, flag, cfg, method, args } satisfies SyncRequest);
  const deadline = Date.now() + (cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS) + WORKER_GRACE_MS;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || Atomics.wait(flag, 0, 0, left) === 'timed-out') {
      // A worker that does not answer is replaced; the call fails as a proxy that did not answer.
      void worker.terminate();
      shared = undefined;
      throw new XksError('Timeout', kmsOperation, { why: 'the XKS client thread did not answer' });
    }
    // Replies of calls that timed out earlier may come first: skip them.
    for (let m = receiveMessageOnPort(replies); m; m = receiveMessageOnPort(replies)) {
      const r = m.message as SyncReply;
      if (r.seq !== id) continue;
      if (r.ok) return r.value;
      if (r.xks) {
        const { failure, kmsOperation: op, ...detail } = r.xks;
        throw new XksError(failure, op, detail);
      }
      throw Object.assign(new Error(r.message), { name: r.name });
    }
  }
}

const buf = (u: unknown): Buffer => {
  const a = u as Uint8Array;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

export class XksSyncClient {
  constructor(private readonly cfg: XksProxyConfig) {
    // The same checks as XksClient's, in this thread, so that a bad configuration fails where it is given.
    new URL(cfg.uriEndpoint);
  }

  health(requestMetadata: XksRequestMetadata): XksHealthStatus {
    return call(this.cfg, 'health', [requestMetadata], requestMetadata.kmsOperation) as XksHealthStatus;
  }

  keyMetadata(keyId: string, requestMetadata: XksRequestMetadata): XksKeyMetadata {
    return call(this.cfg, 'keyMetadata', [keyId, requestMetadata], requestMetadata.kmsOperation) as XksKeyMetadata;
  }

  encrypt(keyId: string, plaintext: Buffer, aad: Buffer | undefined, requestMetadata: XksRequestMetadata): XksCiphertext {
    const r = call(this.cfg, 'encrypt', [keyId, plaintext, aad, requestMetadata], requestMetadata.kmsOperation) as Record<string, unknown>;
    const out: XksCiphertext = {
      ciphertext: buf(r.ciphertext),
      initializationVector: buf(r.initializationVector),
      authenticationTag: buf(r.authenticationTag),
    };
    if (r.ciphertextMetadata) out.ciphertextMetadata = buf(r.ciphertextMetadata);
    return out;
  }

  decrypt(keyId: string, c: XksCiphertext, aad: Buffer | undefined, requestMetadata: XksRequestMetadata): Buffer {
    return buf(call(this.cfg, 'decrypt', [keyId, c, aad, requestMetadata], requestMetadata.kmsOperation));
  }

  /** Close this configuration's keep-alive connections in the worker. */
  close(): void {
    if (shared) call(this.cfg, 'close', [], 'close');
  }
}
