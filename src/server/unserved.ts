import type http from 'node:http';
import type { ServiceReply } from './service.js';
import { xmlDocument } from './xml.js';

/**
 * A request for an AWS service this endpoint does not serve (an `aws lambda …`
 * or `aws sns …` sent here with --endpoint-url, say) is answered naming that
 * service and the operation, in the shape its own client parses: awsJson for
 * an X-Amz-Target, a Query ErrorResponse for an Action, the REST protocols'
 * error otherwise. It is never run, and never answered as if it were KMS.
 */
export interface Unserved {
  service: string;
  operation: string;
  protocol: 'json' | 'query' | 'rest-json' | 'rest-xml';
}

/** X-Amz-Target prefixes of the served JSON protocol (KMS). */
const SERVED_TARGETS = ['TrentService.'];
/** Services whose REST protocol answers errors in XML. */
const REST_XML = new Set(['s3', 's3-control', 'route53', 'cloudfront']);

const scopeOf = (req: http.IncomingMessage) => /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];

/** The AWS CLI names its command in the User-Agent ("command/lambda.list-functions"): the operation, in the model's words. */
function cliOperation(req: http.IncomingMessage): string | undefined {
  const m = /\bcommand\/([\w-]+)\.([\w-]+)/.exec(String(req.headers['user-agent'] ?? ''));
  // `aws s3 ls`, `cp`, `sync` … are the CLI's own commands, not operations: those are named by method and path.
  if (m?.[1] === 's3') return undefined;
  return m?.[2]?.replace(/(^|-)([a-z0-9])/g, (_, _d, c: string) => c.toUpperCase());
}

/**
 * The unserved service and operation a request is for, or undefined when a
 * served service should answer it (including with its own scope error).
 * `params` is the URL's query and the form body, once read; `servedAction`
 * tells a Query action of a served service.
 */
export function unservedRequest(
  served: ReadonlySet<string>,
  req: http.IncomingMessage,
  params?: URLSearchParams,
  servedAction: (action: string) => boolean = () => false,
): Unserved | undefined {
  const target = req.headers['x-amz-target'];
  const scope = scopeOf(req);
  if (typeof target === 'string' && target !== '') {
    if (SERVED_TARGETS.some((p) => target.startsWith(p))) return undefined;
    const [prefix, operation] = target.split('.', 2);
    return { service: scope && !served.has(scope) ? scope : prefix!, operation: operation ?? target, protocol: 'json' };
  }
  if (!scope || served.has(scope)) return undefined;
  const action = params?.get('Action') ?? new URLSearchParams(/\?(.*)$/.exec(req.url ?? '')?.[1] ?? '').get('Action');
  // An action a served service has (EC2's, STS's) signed for another service: that service answers, with its scope error.
  if (action) return servedAction(action) ? undefined : { service: scope, operation: action, protocol: 'query' };
  const form = String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
  // A form body not read yet may still carry the Action: decide once it is read.
  if (form && !params) return undefined;
  const path = (req.url ?? '/').split('?')[0];
  return { service: scope, operation: cliOperation(req) ?? `${req.method} ${path}`, protocol: REST_XML.has(scope) ? 'rest-xml' : 'rest-json' };
}

/** The answer to an unserved request: 400, UnknownOperationException (InvalidAction for Query), naming the service and operation. */
export function unservedReply(u: Unserved, served: readonly string[], requestId: string): ServiceReply {
  const message = `This endpoint (kmsvol) serves ${served.join(', ')}; it does not serve ${u.service}, so ${u.service} ${u.operation} was not run. Send ${u.service} requests to AWS itself (leave out --endpoint-url).`;
  const code = u.protocol === 'query' ? 'InvalidAction' : 'UnknownOperationException';
  if (u.protocol === 'query' || u.protocol === 'rest-xml') {
    // ErrorResponse/Error, the Query shape: botocore's REST-XML parser reads it as well as S3's bare <Error> root.
    const doc = { ErrorResponse: { Error: { Type: 'Sender', Code: code, Message: message }, RequestId: requestId } };
    return { status: 400, headers: { 'Content-Type': 'text/xml' }, body: xmlDocument(doc) };
  }
  const contentType = u.protocol === 'json' ? 'application/x-amz-json-1.1' : 'application/json';
  return { status: 400, headers: { 'Content-Type': contentType, 'x-amzn-ErrorType': code }, body: JSON.stringify({ __type: code, message }) };
}
