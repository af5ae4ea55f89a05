import type { MessagePort } from 'node:worker_threads';
import { parentPort, workerData } from 'node:worker_threads';
import { XksClient, XksError, type XksProxyConfig } from './client.js';

/**
 * The worker thread behind XksSyncClient (sync.ts): it runs the asynchronous
 * XksClient calls and answers each on the port it was given, then wakes the
 * caller blocked on the call's shared flag. One XksClient per proxy
 * configuration, kept for its keep-alive connections.
 */
export interface SyncRequest {
  seq: number;
  flag: Int32Array;
  cfg: XksProxyConfig;
  method: 'health' | 'keyMetadata' | 'encrypt' | 'decrypt' | 'close';
  args: unknown[];
}

export type SyncReply = { seq: number } & (
  | { ok: true; value: unknown }
  | {
      ok: false;
      xks?: { failure: XksError['failure']; kmsOperation: string; proxyStatus?: number; proxyMessage?: string; why?: string };
      name: string;
      message: string;
    }
);

const replies = (workerData as { port: MessagePort }).port;
const clients = new Map<string, XksClient>();

parentPort!.on('message', async (req: SyncRequest) => {
  const id = JSON.stringify(req.cfg);
  let reply: SyncReply;
  try {
    if (req.method === 'close') {
      clients.get(id)?.close();
      clients.delete(id);
      reply = { seq: req.seq, ok: true, value: undefined };
    } else {
      let c = clients.get(id);
      if (!c) clients.set(id, (c = new XksClient(req.cfg)));
      const fn = c[req.method] as (...a: unknown[]) => Promise<unknown>;
      reply = { seq: req.seq, ok: true, value: await fn.apply(c, req.args.map(revive)) };
    }
  } catch (e) {
    const err = e as Error;
    reply =
      e instanceof XksError
        ? {
            seq: req.seq,
            ok: false,
            name: err.name,
            message: err.message,
            xks: {
              failure: e.failure,
              kmsOperation: e.kmsOperation,
              ...(e.proxyStatus !== undefined ? { proxyStatus: e.proxyStatus } : {}),
              ...(e.proxyMessage !== undefined ? { proxyMessage: e.proxyMessage } : {}),
              ...(e.why !== undefined ? { why: e.why } : {}),
            },
          }
        : { seq: req.seq, ok: false, name: err?.name ?? 'Error', message: String(err?.message ?? e) };
  }
  replies.postMessage(reply);
  Atomics.store(req.flag, 0, 1);
  Atomics.notify(req.flag, 0);
});

/** Buffers arrive as Uint8Arrays (structured clone); XksClient wants Buffers, also inside the ciphertext object. */
function revive(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v && typeof v === 'object' && !Array.isArray(v))
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x instanceof Uint8Array ? revive(x) : x]));
  return v;
}
