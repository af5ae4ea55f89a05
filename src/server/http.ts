import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock } from '../clock.js';
import { clockFromEnv } from '../clock.js';
import { Ec2Contexts } from '../ec2/context.js';
import { backgroundSettled, isEc2Operation } from '../ec2/invoke.js';
import { ServiceError } from '../errors.js';
import type { Home } from '../home.js';
import { lookupAccessKey, tokenHash } from '../kms/iam.js';
import { Kms } from '../kms/kms.js';
import { isAwsRegion } from '../region.js';
import type { ReceivedRequest } from '../sigv4.js';
import {
  checkRequest,
  expiredSessionToken,
  invalidSessionToken,
  PRESIGNED_PARAMS,
  parseAuth,
  SigV4Error,
  sessionTokens,
  unknownAccessKey,
  verifySignature,
} from '../sigv4.js';
import { limitConnections, ParameterCount, PRE_AUTH_LIMITS, serverOptions } from './limits.js';
import type { Service, ServiceReply, SignedCaller, WireError } from './service.js';
import type { Unserved } from './unserved.js';
import { unservedReply, unservedRequest } from './unserved.js';

/**
 * One endpoint for the services (`kmsvol serve`): every request is read
 * whole, routed to its service as AWS routes it, and verified with SigV4
 * before the service sees it. The caller comes from the access key (an IAM
 * user, or a session from this endpoint's STS, whose token must match); the
 * region from the credential scope, each region being its own namespace.
 * Every answer, errors included, is in the called service's protocol and
 * carries x-amzn-RequestId.
 */
const MAX_BODY = PRE_AUTH_LIMITS.maxBody;
/** Known credentials are looked up (and their secrets unsealed) at most every few seconds, not per request. */
const CREDENTIALS_TTL_MS = 5000;
/** Regions with an open KMS; beyond this, the least recently used is closed. */
const MAX_OPEN_REGIONS = 32;

export interface EndpointOptions {
  home: Home;
  services: Service[];
  host?: string;
  port?: number;
  /** Serve only this region (requests scoped to another are refused); default: every AWS region. */
  region?: string;
  /** Serve regions that are not AWS's too (a credential scope of any name); default: AWS's regions only. */
  regionAllowAny?: boolean;
  clock?: Clock;
}

export interface Endpoint {
  url: string;
  close(): Promise<void>;
}

const tooLarge = () =>
  new ServiceError(
    'RequestEntityTooLargeException',
    `The request body exceeds ${MAX_BODY} bytes; these APIs take small requests (a KMS Plaintext is at most 4096 bytes).`,
    413,
  );

/** The body, whole; past MAX_BODY bytes, or past the parameter limit of a Query request (`count`), refused at once. */
function readBody(req: http.IncomingMessage, count: ParameterCount | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const refuse = (e: Error) => {
      // Stop keeping the body (drain the rest unread) so the answer still reaches the client.
      req.off('data', onData);
      parts.length = 0;
      req.resume();
      reject(e);
    };
    const onData = (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) return refuse(tooLarge());
      try {
        count?.body(d);
      } catch (e) {
        return refuse(e as Error);
      }
      parts.push(d);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', () => reject(ABORTED));
  });
}

/** The client went away mid-body: nothing to answer, nothing to log. */
const ABORTED = new ServiceError('RequestAborted', 'The client closed the connection before the request body was complete.');

/**
 * The service a request is for, as AWS tells: X-Amz-Target (the JSON
 * protocols), else the Query API's Action (known once the body is read), else
 * the credential scope's service. Before the body is read (`params`
 * undefined), errors are answered in the shape the headers point to.
 */
function route(services: Map<string, Service>, req: http.IncomingMessage, params?: URLSearchParams): Service {
  if (req.headers['x-amz-target']) return services.get('kms')!;
  const action = params?.get('Action');
  if (action && STS_ACTIONS.has(action) && services.has('sts')) return services.get('sts')!;
  for (const s of action ? services.values() : []) if (s.queryActions?.has(action!)) return s;
  // An action STS does not have, under STS's API version: STS answers it (InvalidAction), as AWS's STS endpoint would.
  if (params?.get('Version') === STS_VERSION && services.has('sts')) return services.get('sts')!;
  const scope = scopeOf(req);
  // An action a Query service does not have, signed for that service (`aws iam list-users`), is its own to refuse (InvalidAction).
  if (action && scope && services.get(scope)?.queryActions && !isEc2Operation(action)) return services.get(scope)!;
  if (action && services.has('ec2')) return services.get('ec2')!;
  if (scope && services.has(scope)) return services.get(scope)!;
  // An unsigned Query request (form body, no target) is answered as the Query services answer.
  if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
    return services.get('ec2') ?? services.get('sts') ?? services.get('kms')!;
  return services.get('kms')!;
}

/** The credential scope's service, when the Authorization header names one. */
const scopeOf = (req: http.IncomingMessage) => /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];

/** STS's Query API version (botocore's sts model); EC2's is 2016-11-15. */
const STS_VERSION = '2011-06-15';

const STS_ACTIONS = new Set([
  'AssumeRole',
  'GetCallerIdentity',
  'GetSessionToken',
  'AssumeRoleWithWebIdentity',
  'AssumeRoleWithSAML',
  'DecodeAuthorizationMessage',
  'GetAccessKeyInfo',
  'GetFederationToken',
]);

/** Is the body a Query protocol's form (EC2, STS)? */
function isForm(req: http.IncomingMessage): boolean {
  return String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

function queryOf(req: http.IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
}

/** The URL's query and a form body's parameters (already counted; URLSearchParams parses in one pass). */
function queryParams(req: http.IncomingMessage, body: Buffer): URLSearchParams {
  const params = new URLSearchParams(queryOf(req));
  if (isForm(req)) for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.append(k, v);
  return params;
}

export function serveEndpoint(opts: EndpointOptions): Promise<Endpoint> {
  const clock = opts.clock ?? clockFromEnv();
  const services = new Map(opts.services.map((s) => [s.name, s]));
  if (!services.has('kms')) throw new Error('the endpoint needs the kms service');
  const served = new Set(services.keys());
  const servedNames = [...served].map((s) => s.toUpperCase());
  const servedAction = (action: string) =>
    (services.has('sts') && STS_ACTIONS.has(action)) ||
    (services.has('ec2') && isEc2Operation(action)) ||
    opts.services.some((s) => s.queryActions?.has(action));
  const regions = new Map<string, Kms>();
  const kmsFor = (region: string): Kms => {
    let kms = regions.get(region);
    if (kms) {
      regions.delete(region);
    } else {
      kms = Kms.open({ home: opts.home, region, clock });
      if (regions.size >= MAX_OPEN_REGIONS) {
        const [oldest, k] = regions.entries().next().value as [string, Kms];
        regions.delete(oldest);
        k.close();
      }
    }
    regions.set(region, kms);
    return kms;
  };
  // The EC2 side's registry is opened on the first EC2 call, and kept open.
  const ec2 = new Ec2Contexts(opts.home);
  // Credentials are global (IAM is not regional): look them up in the home's default namespace.
  const iamKms = Kms.open({ home: opts.home, region: opts.region, clock, audit: false });
  const known = new Map<string, { value: NonNullable<ReturnType<typeof lookupAccessKey>>; at: number }>();
  const credentials = (accessKeyId: string) => {
    const now = Date.now();
    const hit = known.get(accessKeyId);
    if (hit && now - hit.at < CREDENTIALS_TTL_MS) return hit.value;
    const value = lookupAccessKey(iamKms.ctx, accessKeyId);
    if (!value) return undefined;
    if (known.size >= 1024) known.clear();
    known.set(accessKeyId, { value, at: now });
    return value;
  };

  /** Who signed: refused before the body is read when the Authorization header (or a presigned URL's query) is malformed or the access key unknown. */
  const signer = (url: string, rawHeaders: string[]) => {
    const auth = parseAuth(url, rawHeaders);
    const creds = credentials(auth.credential.accessKeyId);
    if (!creds) throw unknownAccessKey();
    return { auth, creds };
  };

  const authenticate = async (
    received: ReceivedRequest,
    service: Service,
    { auth, creds }: ReturnType<typeof signer>,
  ): Promise<{ caller: SignedCaller; region: string; signedHeaders: string[] }> => {
    const checked = checkRequest(received, auth, {
      service: service.name,
      mustSign: ['x-amz-target'],
      regionAllowed: (r) => (!opts.region || r === opts.region) && (opts.regionAllowAny === true || isAwsRegion(r)),
      now: Date.now(),
      maxSkewMs: service.maxClockSkewMs,
      allowUnsignedPayload: service.unsignedPayload?.(received.method, received.url),
    });
    const tokens = sessionTokens(received, auth);
    const session = creds.principal.session;
    if (session) {
      const given = tokens.length === 1 ? tokenHash(tokens[0]!.trim()) : Buffer.alloc(32);
      if (!crypto.timingSafeEqual(given, session.tokenHash)) throw invalidSessionToken();
      if (clock.now().getTime() >= session.expires) throw expiredSessionToken();
    } else if (tokens.length) {
      throw invalidSessionToken();
    }
    await verifySignature(received, auth, creds.secret, checked);
    const accountId = /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(creds.principal.arn)![1]!;
    const caller: SignedCaller = {
      arn: creds.principal.arn,
      accountId,
      accessKeyId: creds.principal.accessKeyId,
      ...(session ? { session: { roleArn: session.roleArn, roleId: session.roleId, sessionName: session.sessionName, expires: session.expires } } : {}),
    };
    return { caller, region: auth.credential.region, signedHeaders: auth.signedHeaders };
  };

  const server = http.createServer(serverOptions(), async (req, res) => {
    if (refused(req.socket)) return;
    const requestId = crypto.randomUUID();
    // Before the body is read, the URL's own Action (a presigned or GET Query request) already names the service.
    let service = route(services, req, new URLSearchParams(queryOf(req)));
    let reply: ServiceReply;
    let foreign: Unserved | undefined = unservedRequest(served, req, undefined, servedAction);
    try {
      if (foreign) throw new ServiceError('UnknownOperationException', 'unserved');
      if (service.name === 'kms' && !req.headers['x-amz-target'] && req.method !== 'POST')
        throw new ServiceError('UnknownOperationException', 'The KMS API is POST / with an X-Amz-Target header.', 404);
      if (service.name === 'kms' && (req.url ?? '/') !== '/')
        throw new ServiceError('UnknownOperationException', 'The KMS API is POST / with an X-Amz-Target header.', 404);
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw tooLarge();
      const count = new ParameterCount();
      count.query(queryOf(req));
      let who: ReturnType<typeof signer>;
      try {
        who = signer(req.url ?? '/', req.rawHeaders);
      } catch (e) {
        // Unsigned, or no credential scope to route by: a Query form names its service in the body (Action, Version),
        // so read it (bounded, as any body) and let that service refuse it in its own shape and status.
        if (e instanceof SigV4Error && isForm(req) && !scopeOf(req)) {
          service = route(services, req, queryParams(req, await readBody(req, count)));
        }
        throw e;
      }
      const body = await readBody(req, isForm(req) ? count : undefined);
      const params = queryParams(req, body);
      foreign = unservedRequest(served, req, params, servedAction);
      if (foreign) throw new ServiceError('UnknownOperationException', 'unserved');
      service = route(services, req, params);
      const received: ReceivedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, body };
      const { caller, region, signedHeaders } = await authenticate(received, service, who);
      // A presigned URL's X-Amz-* members authenticated it; they are not the operation's parameters.
      if (who.auth.query) for (const name of PRESIGNED_PARAMS) params.delete(name);
      const kms = kmsFor(region);
      const ec2For = () => ec2.contextFor(kms, caller.arn, region);
      reply = await service.handle({
        region,
        caller,
        requestId,
        headers: req.headers,
        body,
        params,
        home: opts.home,
        kms,
        ec2: ec2For,
        signedHeaders,
        method: received.method,
        url: received.url,
      });
    } catch (e) {
      if (e === ABORTED) return void res.destroy();
      // A request for a service this endpoint does not serve is answered in that service's shape, not the routed one's.
      reply = foreign ? unservedReply(foreign, servedNames, requestId) : service.error(wireError(e, service.name), requestId);
      // Refused before its body was read: let the body go by unread.
      if (!req.complete) req.resume();
    }
    res.writeHead(reply.status, { ...reply.headers, 'Content-Length': Buffer.byteLength(reply.body), 'x-amzn-RequestId': requestId });
    res.end(reply.body);
  });
  const refused = limitConnections(server);
  // An Expect other than 100-continue: node would answer a bare 417; answer it in the service's shape.
  server.on('checkExpectation', (req, res) => {
    const requestId = crypto.randomUUID();
    const reply = route(services, req, new URLSearchParams(queryOf(req))).error(
      { name: 'ExpectationFailed', message: `Expect: ${String(req.headers.expect)} is not supported; send 100-continue or no Expect header.`, status: 417 },
      requestId,
    );
    res.writeHead(reply.status, { ...reply.headers, 'Content-Length': Buffer.byteLength(reply.body), 'x-amzn-RequestId': requestId, Connection: 'close' });
    res.end(reply.body);
    req.resume();
  });
  // Malformed HTTP (bad request lines, oversized headers) still gets an answer in the KMS's shape.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Bytes after a request that asked to close the connection: it is closed, there is no one to answer.
    if (!socket.writable || err.code === 'HPE_CLOSED_CONNECTION' || refused(socket as Socket)) return socket.destroy();
    const requestId = crypto.randomUUID();
    const reply = services.get('kms')!.error(clientErrorOf(err), requestId);
    socket.end(
      `HTTP/1.1 ${reply.status} ${http.STATUS_CODES[reply.status]}\r\nConnection: close\r\nContent-Type: ${reply.headers['Content-Type']}\r\nContent-Length: ${Buffer.byteLength(reply.body)}\r\nx-amzn-RequestId: ${requestId}\r\n\r\n${reply.body}`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 4599, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`,
        close: () =>
          new Promise((r) =>
            server.close(() => {
              // Volumes being created and cards being started finish (or fail, with an event) before the stores close.
              void backgroundSettled().then(() => {
                ec2.close();
                for (const k of regions.values()) k.close();
                iamKms.close();
                r();
              });
            }),
          ),
      });
    });
  });
}

/** Malformed HTTP, oversized headers, or a request not in within its timeouts (node's clientError), as the error the client gets. */
function clientErrorOf(err: NodeJS.ErrnoException): WireError {
  const l = PRE_AUTH_LIMITS;
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return { name: 'RequestHeaderSectionTooLarge', message: `The request headers exceed the limit (${l.maxHeaderBytes / 1024} KiB).`, status: 431 };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return {
      name: 'RequestTimeout',
      message: `The request was not received in time: its headers must arrive within ${l.headersTimeoutMs / 1000} s and the whole request within ${l.requestTimeoutMs / 1000} s. Send it again at once.`,
      status: 408,
    };
  return { name: 'SerializationException', message: `The request is not valid HTTP/1.1 (${err.code ?? 'parse error'}).`, status: 400 };
}

/** Anything thrown while serving, as the error the client gets: typed errors keep their name; anything else is an internal error without detail. */
function wireError(e: unknown, service: string): WireError {
  if (e instanceof SigV4Error) return { name: e.code, message: e.message, status: e.status, ...(e.failure ? { failure: e.failure } : {}) };
  if (e instanceof ServiceError) return { name: e.name, message: e.message, status: e.httpStatus };
  process.stderr.write(`kmsvol serve: internal error in ${service}: ${(e as Error)?.stack ?? String(e)}\n`);
  return {
    name: service === 'kms' ? 'KMSInternalException' : 'InternalError',
    message: 'An internal error occurred. Retry; if it persists, see the server log.',
    status: 500,
  };
}
