import pino from 'pino';

/**
 * Structured logs (pino). Key material never reaches a log: callers log sizes
 * ("key: '64 bytes'") and ids, and every field that could carry a secret is
 * redacted anyway, wherever it appears in the record.
 */
export const REDACTED_FIELDS = ['Plaintext', 'plaintext', 'key', 'dataKey', 'keyMaterial', 'CiphertextBlob', 'ciphertextBlob', 'secret'];

export type Logger = pino.Logger;

export function createLogger(component: string, dest: number = 2): Logger {
  return pino(
    {
      base: { component, pid: process.pid },
      redact: { paths: REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]), censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest, sync: true }),
  );
}
