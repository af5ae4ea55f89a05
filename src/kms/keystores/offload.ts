import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../../root.js';
import { KmsError, KmsErrors } from '../errors.js';

/**
 * Operations that may wait for an external key store's proxy, run off the
 * calling thread. The KMS's operations are synchronous (SQLite, PKCS#11), and
 * an XKS call waits for the proxy with Atomics.wait (xks-sync.ts); on the
 * endpoint's one thread that wait would stall every other caller for up to
 * the proxy timeout. So the endpoint parks such a request and runs the whole
 * operation, unchanged, in a worker thread with its own KMS on the same home
 * (SQLite in WAL mode is shared by several connections already: CLI calls,
 * cards, the server): the XKS timeouts and errors are the same ones, and
 * every other request is served meanwhile.
 *
 * A small pool of workers, each one KMS per home/region, one call at a time;
 * calls beyond the pool wait for a worker.
 */

/** How many operations may wait for proxies at once; further ones queue. */
const MAX_WORKERS = 4;

/** The operations whose handlers reach a proxy (keystores/xks.ts): health checks, CreateKey's metadata check, and the envelope's outer layer. */
const PROXY_OPS = new Set([
  'CreateCustomKeyStore',
  'ConnectCustomKeyStore',
  'CreateKey',
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
]);

/**
 * May `op` wait for a proxy? Only when it names an external key store or a
 * key in one: `storeIsExternal` answers for a CustomKeyStoreId,
 * `keyIsExternal` for a key reference (KeyId, SourceKeyId,
 * DestinationKeyId, or the key a ciphertext names); both answer false for
 * what they cannot resolve (the operation then fails as it would anyway).
 */
export function mayCallProxy(
  op: string,
  req: Record<string, unknown>,
  storeIsExternal: (storeId: string) => boolean,
  keyIsExternal: (ref: string | Uint8Array) => boolean,
): boolean {
  if (!PROXY_OPS.has(op)) return false;
  if (op === 'CreateKey') return req.Origin === 'EXTERNAL_KEY_STORE';
  if (op === 'CreateCustomKeyStore') return req.CustomKeyStoreType === 'EXTERNAL_KEY_STORE';
  if (op === 'ConnectCustomKeyStore') return typeof req.CustomKeyStoreId === 'string' && storeIsExternal(req.CustomKeyStoreId);
  for (const m of ['KeyId', 'SourceKeyId', 'DestinationKeyId', 'CiphertextBlob']) {
    const v = req[m];
    if ((typeof v === 'string' || v instanceof Uint8Array) && keyIsExternal(v)) return true;
  }
  return false;
}

export interface OffloadedCall {
  home: string;
  region: string;
  account: string;
  audit: boolean;
  /** The calling thread's "now" (its clock), which the worker's KMS reads for this call. */
  now: number;
  caller: unknown;
  op: string;
  req: Record<string, unknown>;
}

/**
 * The compiled KMS in the package's own dist/, whether this file runs from there, from src/ (tests) or from the CLI
 * bundle (where a path relative to this file would name a directory outside the package: never load code from there).
 */
function kmsUrl(): string {
  return pathToFileURL(path.join(packageRoot(), 'dist/kms/kms.js')).href;
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const kmss = new Map();
let now = 0;
const clock = { now: () => new Date(now) };
const deep = (x) =>
  x instanceof Uint8Array ? Buffer.from(x.buffer, x.byteOffset, x.byteLength)
  : Array.isArray(x) ? x.map(deep)
  : x && typeof x === 'object' && !(x instanceof Date) ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deep(v)]))
  : x;
const wipe = (x) => {
  if (Buffer.isBuffer(x)) x.fill(0);
  else if (x && typeof x === 'object' && !(x instanceof Date)) for (const v of Object.values(x)) wipe(v);
};
parentPort.on('message', async (c) => {
  let out;
  let res;
  try {
    const { Kms } = await import(workerData.url);
    const key = JSON.stringify([c.home, c.region, c.account, c.audit]);
    let kms = kmss.get(key);
    if (!kms) kmss.set(key, (kms = Kms.open({ home: c.home, region: c.region, account: c.account, audit: c.audit, clock })));
    now = c.now;
    try {
      res = kms.invokeAs(c.caller, c.op, deep(c.req));
      out = { ok: res };
    } finally {
      kms.flushAudit();
      kms.ctx.usage?.flush();
    }
  } catch (e) {
    const own = e && typeof e === 'object' ? Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'string' || typeof v === 'number')) : {};
    out = { err: { ...own, name: e && e.name, message: e && e.message, status: e && e.httpStatus, known: !!(e && e.httpStatus) } };
  }
  parentPort.postMessage(out);
  // The structured clone copied them: the worker keeps no plaintext.
  wipe(res);
  wipe(c.req);
});
`;

type Reply = { ok?: unknown; err?: { name?: string; message?: string; status?: number; known?: boolean; [k: string]: unknown } };

interface Slot {
  worker: Worker;
  busy?: { resolve: (r: Reply) => void; reject: (e: Error) => void };
}

const slots: Slot[] = [];
const waiting: { call: OffloadedCall; resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];

const toBuffer = (x: unknown): unknown =>
  x instanceof Uint8Array
    ? Buffer.from(x.buffer, x.byteOffset, x.byteLength)
    : Array.isArray(x)
      ? x.map(toBuffer)
      : x && typeof x === 'object' && !(x instanceof Date)
        ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toBuffer(v)]))
        : x;

function newSlot(): Slot {
  const slot: Slot = { worker: new Worker(WORKER, { eval: true, workerData: { url: kmsUrl() } }) };
  slot.worker.unref();
  const fail = (e: Error) => {
    const i = slots.indexOf(slot);
    if (i < 0) return;
    slots.splice(i, 1);
    slot.busy?.reject(e);
    slot.busy = undefined;
    next();
  };
  slot.worker.on('error', fail);
  slot.worker.on('exit', (code) => fail(new Error(`the KMS worker exited (${code})`)));
  slot.worker.on('message', (r: Reply) => {
    const b = slot.busy;
    slot.busy = undefined;
    b?.resolve(r);
    next();
  });
  slots.push(slot);
  return slot;
}

function next(): void {
  while (waiting.length) {
    const slot = slots.find((s) => !s.busy) ?? (slots.length < MAX_WORKERS ? newSlot() : undefined);
    if (!slot) return;
    const w = waiting.shift()!;
    slot.busy = { resolve: w.resolve, reject: w.reject };
    slot.worker.ref();
    slot.worker.postMessage(w.call);
  }
  for (const s of slots) if (!s.busy) s.worker.unref();
}

/** Run one KMS operation in a worker; its result, or its KmsError as the worker threw it. */
export async function invokeOffThread(call: OffloadedCall): Promise<unknown> {
  let r: Reply;
  try {
    r = await new Promise<Reply>((resolve, reject) => {
      waiting.push({ call, resolve, reject });
      next();
    });
  } catch (e) {
    throw KmsErrors.internal(`Internal error: ${(e as Error).message}`);
  }
  if (r.err) {
    const { name, message, status, known, httpStatus: _, ...extra } = r.err;
    if (!known) throw KmsErrors.internal(`Internal error: ${message ?? name}`);
    throw Object.assign(new KmsError(name ?? 'KMSInternalException', message ?? '', status), extra);
  }
  return toBuffer(r.ok);
}
