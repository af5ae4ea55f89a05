import type { IncomingHttpHeaders } from 'node:http';
import { EbsErrors } from '../../ebs/errors.js';
import type { EbsMember, EbsOperation } from '../../ebs/operations.js';

/**
 * The REST-JSON wire of the EBS direct APIs, from the registry's entries:
 * which operation a method and path name, a request's members from the URI,
 * the query string, headers, the payload or the JSON body, and an answer's
 * status, headers and body. Knows the wire, never an operation.
 */
const compiled = new Map<EbsOperation, { re: RegExp; labels: string[] }>();

function pattern(op: EbsOperation) {
  let c = compiled.get(op);
  if (!c) {
    const labels: string[] = [];
    const re = new RegExp(
      `^${op.path.replace(/\{(\w+)\}|[^{]+/g, (m, label: string | undefined) => {
        if (!label) return m.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
        labels.push(label);
        return '([^/]+)';
      })}$`,
    );
    c = { re, labels };
    compiled.set(op, c);
  }
  return c;
}

/** The operation a request names, and its URI labels (decoded). */
export function routeOf(ops: Record<string, EbsOperation>, method: string, path: string): { name: string; labels: Record<string, string> } | undefined {
  for (const [name, op] of Object.entries(ops)) {
    if (op.method !== method) continue;
    const m = pattern(op).re.exec(path);
    if (!m) continue;
    const labels: Record<string, string> = {};
    pattern(op).labels.forEach((l, i) => {
      labels[l] = decodeURIComponent(m[i + 1]!);
    });
    return { name, labels };
  }
  return undefined;
}

function scalar(m: EbsMember, member: string, raw: string): unknown {
  if (m.type === 'integer') {
    if (!/^-?\d+$/.test(raw)) throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `${member} must be an integer; got '${raw}'.`);
    return Number(raw);
  }
  if (m.type === 'boolean') return raw === 'true';
  return raw;
}

export function decodeRequest(
  op: EbsOperation,
  labels: Record<string, string>,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  let json: Record<string, unknown> | undefined;
  for (const [member, m] of Object.entries(op.input)) {
    let v: unknown;
    if (m.location === 'uri') v = labels[m.name!] === undefined ? undefined : scalar(m, member, labels[m.name!]!);
    else if (m.location === 'querystring') v = query.has(m.name!) ? scalar(m, member, query.get(m.name!)!) : undefined;
    else if (m.location === 'header') {
      const h = headers[m.name!.toLowerCase()];
      v = typeof h === 'string' ? scalar(m, member, h.trim()) : undefined;
    } else if (m.location === 'payload') v = body;
    else {
      if (json === undefined) {
        try {
          json = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
        } catch {
          throw EbsErrors.validation('INVALID_PARAMETER_VALUE', 'The request body is not valid JSON.');
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json))
          throw EbsErrors.validation('INVALID_PARAMETER_VALUE', 'The request body must be a JSON object.');
      }
      v = json[member];
      const ok = v === undefined || (m.type === 'list' ? Array.isArray(v) : typeof v === (m.type === 'integer' ? 'number' : m.type));
      if (!ok) throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `${member} must be of type ${m.type}.`);
    }
    if (v !== undefined) req[member] = v;
  }
  for (const r of op.required) if (req[r] === undefined) throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `The request must contain the parameter ${r}.`);
  return req;
}

export interface EncodedReply {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

export function encodeResponse(op: EbsOperation, answer: Record<string, unknown>): EncodedReply {
  const headers: Record<string, string> = {};
  const json: Record<string, unknown> = {};
  let payload: Buffer | undefined;
  for (const [member, m] of Object.entries(op.output)) {
    const v = answer[member];
    if (v === undefined) continue;
    if (m.location === 'header') headers[m.name!] = String(v);
    else if (m.location === 'payload') payload = v as Buffer;
    else json[member] = v instanceof Date ? v.getTime() / 1000 : v;
  }
  if (payload) return { status: op.status, headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: payload };
  return { status: op.status, headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(json) };
}

export function encodeError(name: string, message: string, status: number, reason?: string): EncodedReply {
  return {
    status,
    headers: { 'Content-Type': 'application/json', 'x-amzn-ErrorType': name },
    body: JSON.stringify({ message, ...(reason ? { Reason: reason } : {}) }),
  };
}
