import type http from 'node:http';
import type { Socket } from 'node:net';
import { ServiceError } from '../errors.js';

/**
 * What the endpoint holds for a client before it knows who the client is.
 * Every limit here applies before authentication (a signature can only be
 * checked once the whole request is in), so an unauthenticated peer can hold
 * at most PER_PEER connections, each for at most HEADERS_TIMEOUT_MS before
 * its headers are in and REQUEST_TIMEOUT_MS before its whole request is;
 * and the endpoint holds at most MAX_CONNECTIONS in all. docs/threat-model.md
 * states them with the tests that prove them.
 */
export const PRE_AUTH_LIMITS = {
  /** Request body (KMS, EC2, STS requests are small: a KMS Plaintext is at most 4096 bytes). */
  maxBody: 1 << 20,
  /** Header section (node's default, answered 431). */
  maxHeaderBytes: 16 * 1024,
  /**
   * Query parameters (URL and form body together): the largest request AWS's
   * documented limits allow is a Describe with 50 filters of a name and 200
   * values each (10,050 parameters) and some ids; beyond 12,000 a request is
   * refused before it is parsed.
   */
  maxParameters: 12_000,
  /** Connections open at once from one peer (an IPv4 address, or an IPv6 /64). */
  perPeer: 64,
  /** Connections open at once in all (each holds a file descriptor). */
  maxConnections: 1024,
  /** From the connection (or the end of the previous request on it) to the end of the request's headers. */
  headersTimeoutMs: 10_000,
  /** From the same start to the end of the request's body. */
  requestTimeoutMs: 30_000,
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** How often node checks the two timeouts above (its default, 30 s, would let a slow connection live 40 s). */
  checkIntervalMs: 1_000,
} as const;

/** The http.Server options that carry the timeouts and the header limit. */
export function serverOptions(): http.ServerOptions {
  const l = PRE_AUTH_LIMITS;
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionsCheckingInterval: l.checkIntervalMs,
    maxHeaderSize: l.maxHeaderBytes,
  };
}

/** The peer a connection counts against: an IPv4 address (also when mapped into IPv6), or an IPv6 address's /64. */
export function peerOf(address: string | undefined): string {
  if (!address) return '?';
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') && tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function refuse(socket: Socket, why: string): void {
  const body = `503 Service Unavailable: ${why} Close connections you do not use, and retry.\n`;
  socket.on('error', () => socket.destroy());
  // Answered before a request was read, so the service (and its error shape) is not known: a plain 503.
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // The peer may not read it: the connection goes away soon either way.
  socket.setTimeout(1000, () => socket.destroy());
}

/**
 * Precondition: a connection beyond PER_PEER from its peer, or beyond
 * MAX_CONNECTIONS in all, is answered 503 and closed as soon as it is
 * accepted, before any of its bytes are read. Returns `refused(socket)`, for
 * the request and error handlers to leave such a connection alone.
 */
export function limitConnections(server: http.Server): (socket: Socket) => boolean {
  const l = PRE_AUTH_LIMITS;
  const perPeer = new Map<string, number>();
  const refused = new WeakSet<Socket>();
  let open = 0;
  // Before node's own listener: the refusal is written before the socket's first read.
  server.prependListener('connection', (socket: Socket) => {
    const peer = peerOf(socket.remoteAddress);
    const n = perPeer.get(peer) ?? 0;
    if (n >= l.perPeer || open >= l.maxConnections) {
      refused.add(socket);
      refuse(
        socket,
        n >= l.perPeer
          ? `${peer} already has ${n} connections open to this endpoint (the limit per peer is ${l.perPeer}).`
          : `the endpoint has ${open} connections open (its limit is ${l.maxConnections}).`,
      );
      return;
    }
    perPeer.set(peer, n + 1);
    open++;
    socket.once('close', () => {
      open--;
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left > 0) perPeer.set(peer, left);
      else perPeer.delete(peer);
    });
  });
  return (socket) => refused.has(socket);
}

/**
 * Precondition: a Query request has at most maxParameters parameters (its
 * URL query and its form body together), counted as its bytes arrive, so
 * that the refusal comes as soon as the count passes the limit, before the
 * rest is read or anything is parsed.
 */
export class ParameterCount {
  private n = 0;
  private inBody = false;

  /** The URL's query string (before the body). */
  query(query: string): void {
    if (query) this.add(query, true);
  }

  /** The next chunk of a form body. */
  body(chunk: Buffer): void {
    if (!chunk.length) return;
    this.add(chunk, !this.inBody);
    this.inBody = true;
  }

  private add(bytes: string | Buffer, starts: boolean): void {
    const max = PRE_AUTH_LIMITS.maxParameters;
    if (starts) this.n++;
    for (let i = bytes.indexOf('&'); i >= 0 && this.n <= max; i = bytes.indexOf('&', i + 1)) this.n++;
    if (this.n > max)
      throw new ServiceError(
        'InvalidParameterValue',
        `The request has more than ${max} parameters, the most this endpoint reads (AWS allows at most 50 filters of 200 values each). Send fewer filters or values, or split the request.`,
      );
  }
}
