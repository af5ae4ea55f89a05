import { createRequire } from 'node:module';
import type pino from 'pino';

/**
 * Structured logs (pino). Key material never reaches a log: callers log sizes
 * ("key: '64 bytes'") and ids, and every field that could carry a secret is
 * redacted anyway, wherever it appears in the record, at any depth.
 */
export const REDACTED_FIELDS = [
  'Plaintext',
  'plaintext',
  'key',
  'dataKey',
  'keyMaterial',
  'CiphertextBlob',
  'ciphertextBlob',
  'secret',
  'SecretAccessKey',
  'secretAccessKey',
  'SessionToken',
  'sessionToken',
  'authorization',
  'Authorization',
];
const REDACTED = new Set(REDACTED_FIELDS);
const CENSOR = '[redacted]';

/** A copy of `v` with every redacted field replaced, however deep (cycles cut). */
export function redact(v: unknown, seen = new WeakSet<object>()): unknown {
  if (!v || typeof v !== 'object') return v;
  if (seen.has(v)) return '[circular]';
  seen.add(v);
  if (Array.isArray(v)) return v.map((x) => redact(x, seen));
  if (v instanceof Error) return { name: v.name, message: v.message };
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return `${(v as Uint8Array).byteLength} bytes`;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = REDACTED.has(k) ? CENSOR : redact(x, seen);
  return out;
}

export type Logger = pino.Logger;

let bundled: typeof pino | undefined;

/** The card bundle (scripts/bundle.mjs) carries pino and hands it over here, before any logger is made. */
export function usePino(p: typeof pino): void {
  bundled = p;
}

/** pino: the bundle's, or loaded from node_modules by the first logger made (most CLI commands make none). */
const loadPino = (): typeof pino => bundled ?? (createRequire(import.meta.url)('pino') as typeof pino);

export function createLogger(component: string, dest: number = 2): Logger {
  const pino = loadPino();
  return pino(
    {
      base: { component, pid: process.pid },
      formatters: { log: (o) => redact(o) as Record<string, unknown> },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest, sync: true }),
  );
}
