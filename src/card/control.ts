import fs from 'node:fs';
import net from 'node:net';
import { ServiceError } from '../errors.js';

/**
 * The card's control socket: newline-delimited JSON requests and replies over
 * a unix socket in the home's run directory (mode 0600).
 */
export interface ControlRequest {
  op: 'detach' | 'status' | 'freeze' | 'renew' | 'thaw' | 'resize' | 'take-changes' | 'commit-changes' | 'abort-changes';
  force?: boolean;
  /** For renew and thaw: the id freeze answered with. */
  freezeId?: number;
  /** For freeze and renew: how long the freeze holds unless renewed (default FREEZE_LEASE_MS). */
  leaseMs?: number;
  /** For resize: the volume's new size in bytes. */
  size?: number;
  /** For commit-changes and abort-changes: the id take-changes answered with. */
  takeId?: string;
  /** For commit-changes: the snapshot that is the volume's new base. */
  snapshotId?: string;
}

/** How long a snapshot's freeze holds writes back unless its snapshotter renews it (FREEZE_RENEW_MS). */
export const FREEZE_LEASE_MS = 60_000;
export const FREEZE_RENEW_MS = 15_000;

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: { name: string; message: string } };

/** A card's error (on its control socket, or its readiness report) as the typed error it names: the name is AWS's exception name. */
export function cardError(reply: { error: { name: string; message: string } }): ServiceError {
  return new ServiceError(reply.error.name, reply.error.message);
}

export function serveControl(sock: string, handle: (req: ControlRequest) => Promise<ControlReply>): net.Server {
  fs.rmSync(sock, { force: true });
  const server = net.createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl));
      } catch {
        c.end(`${JSON.stringify({ ok: false, error: { name: 'InvalidRequest', message: 'control requests are one JSON object per line' } })}\n`);
        return;
      }
      handle(req).then(
        (r) => c.end(`${JSON.stringify(r)}\n`),
        (e: Error) => c.end(`${JSON.stringify({ ok: false, error: { name: e.name, message: e.message } })}\n`),
      );
    });
    c.on('error', () => undefined);
  });
  server.listen(sock, () => fs.chmodSync(sock, 0o600));
  return server;
}

export function callControl(sock: string, req: ControlRequest, timeoutMs = 60_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`the card did not answer on ${sock} within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    c.on('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d) => (buf += d));
    c.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new Error(`the card closed its control socket without a reply`));
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
