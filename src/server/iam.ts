import { ServiceError } from '../errors.js';
import { canonicalRoleName, canonicalUserName, createAccessKey, createRole, createUser, getRole, getUser, userArn } from '../kms/iam.js';
import type { PolicyOwner } from '../kms/iam-policies.js';
import { deletePolicy, getPolicy, listPolicies, putPolicy } from '../kms/iam-policies.js';
import { GLOBAL_SERVICE_REGION, requireIdentityAllow } from '../kms/identity.js';
import { QUERY_AUTH } from './query-auth.js';
import type { Service, ServiceCall, ServiceReply, WireError } from './service.js';
import { ATTRIBUTE, xmlDocument } from './xml.js';

/**
 * AWS IAM over the Query protocol (`Action=…&Version=2010-05-08`, XML
 * answers), for the identities the endpoint's KMS and STS decide by: users,
 * roles and their inline policies. One table of operations (members from
 * botocore's IAM model, 2010-05-08) and one codec; the work is in
 * src/kms/iam.ts and src/kms/iam-policies.ts. IAM is global: every region's
 * scope reaches the same users and roles.
 *
 * Who may call it: the account root, and principals whose identity policies
 * allow `iam:<Action>` on the user or role named (identity.ts).
 */
const NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const VERSION = '2010-05-08';

type Params = URLSearchParams;
interface Operation {
  /** Members the operation takes (botocore's input shape); `required` must be present. */
  members: readonly string[];
  required: readonly string[];
  /** Members kmsvol does not model: refused with this reason, never ignored. */
  refused?: Record<string, string>;
  /** The IAM resource the call acts on, for identity policies. */
  resource: (call: ServiceCall, p: Params) => string;
  run: (call: ServiceCall, p: Params) => Record<string, unknown>;
}

// The resource is named as the user or role was created: a Deny on user/carol must reach a call that asks for CAROL.
const userRes = (call: ServiceCall, p: Params) => userArn(call.kms.ctx, canonicalUserName(call.kms.ctx, p.get('UserName') ?? ''));
const roleRes = (call: ServiceCall, p: Params) => `arn:aws:iam::${call.kms.account}:role/${canonicalRoleName(call.kms.ctx, p.get('RoleName') ?? '')}`;
const NOT_MODELLED = {
  PermissionsBoundary: 'permissions boundaries are not modelled by kmsvol (docs/iam.md)',
  Tags: 'IAM tags are not kept by kmsvol',
};

/** The inline-policy operations of users and roles, which differ only in their owner's member. */
function policyOps(kind: PolicyOwner): Record<string, Operation> {
  const Owner = kind === 'user' ? 'User' : 'Role';
  const owner = `${Owner}Name`;
  const resource = kind === 'user' ? userRes : roleRes;
  const o = (p: Params) => p.get(owner)!;
  return {
    [`Put${Owner}Policy`]: {
      members: [owner, 'PolicyName', 'PolicyDocument'],
      required: [owner, 'PolicyName', 'PolicyDocument'],
      resource,
      run: (c, p) => putPolicy(c.kms.ctx, kind, o(p), p.get('PolicyName')!, p.get('PolicyDocument')!),
    },
    [`Get${Owner}Policy`]: {
      members: [owner, 'PolicyName'],
      required: [owner, 'PolicyName'],
      resource,
      run: (c, p) => {
        const r = getPolicy(c.kms.ctx, kind, o(p), p.get('PolicyName')!);
        // IAM sends policy documents URL-encoded (RFC 3986); the SDKs decode them.
        return { ...r, PolicyDocument: encodeURIComponent(r.PolicyDocument as string) };
      },
    },
    [`Delete${Owner}Policy`]: {
      members: [owner, 'PolicyName'],
      required: [owner, 'PolicyName'],
      resource,
      run: (c, p) => deletePolicy(c.kms.ctx, kind, o(p), p.get('PolicyName')!),
    },
    [`List${Owner}Policies`]: {
      members: [owner, 'Marker', 'MaxItems'],
      required: [owner],
      resource,
      run: (c, p) => listPolicies(c.kms.ctx, kind, o(p), p.get('Marker') ?? undefined, integer(p, 'MaxItems') ?? 100),
    },
  };
}

function integer(p: Params, name: string): number | undefined {
  const v = p.get(name);
  if (v === null) return undefined;
  if (!/^-?\d{1,10}$/.test(v))
    throw new ServiceError('ValidationError', `1 validation error detected: Value '${v}' at '${name}' failed to satisfy constraint: Member must be an integer`);
  return Number(v);
}

const roleOut = (r: ReturnType<typeof getRole>) => ({ Role: { ...r.Role, AssumeRolePolicyDocument: encodeURIComponent(r.Role.AssumeRolePolicyDocument) } });

export const IAM_OPERATIONS: Record<string, Operation> = {
  CreateUser: {
    members: ['Path', 'UserName', 'PermissionsBoundary', 'Tags'],
    required: ['UserName'],
    refused: NOT_MODELLED,
    resource: userRes,
    run: (c, p) => createUser(c.kms.ctx, p.get('UserName')!),
  },
  GetUser: {
    members: ['UserName'],
    required: [],
    resource: (c, p) => (p.get('UserName') === null ? c.caller.arn : userRes(c, p)),
    run: (c, p) => {
      const name = p.get('UserName') ?? /:user\/(?:.*\/)?([^/]+)$/.exec(c.caller.arn)?.[1];
      if (!name) throw new ServiceError('ValidationError', 'Must specify userName when calling with non-User credentials');
      return getUser(c.kms.ctx, name);
    },
  },
  CreateAccessKey: {
    members: ['UserName'],
    required: ['UserName'],
    resource: userRes,
    run: (c, p) => {
      const { AccessKey: a } = createAccessKey(c.kms.ctx, p.get('UserName')!, { mustExist: true });
      return { AccessKey: { ...a, CreateDate: a.CreateDate } };
    },
  },
  CreateRole: {
    members: ['Path', 'RoleName', 'AssumeRolePolicyDocument', 'Description', 'MaxSessionDuration', 'PermissionsBoundary', 'Tags'],
    required: ['RoleName', 'AssumeRolePolicyDocument'],
    refused: NOT_MODELLED,
    resource: roleRes,
    run: (c, p) =>
      roleOut(
        createRole(c.kms.ctx, p.get('RoleName')!, p.get('AssumeRolePolicyDocument')!, {
          maxSessionDuration: integer(p, 'MaxSessionDuration'),
          description: p.get('Description') ?? undefined,
        }),
      ),
  },
  GetRole: {
    members: ['RoleName'],
    required: ['RoleName'],
    resource: roleRes,
    run: (c, p) => roleOut(getRole(c.kms.ctx, p.get('RoleName')!)),
  },
  ...policyOps('user'),
  ...policyOps('role'),
};

/** The Query actions this service answers (the endpoint routes them here). */
export const IAM_ACTIONS: ReadonlySet<string> = new Set(Object.keys(IAM_OPERATIONS));

/** Check the request's members against the operation's: unknown ones and unmodelled ones refused, required ones present. */
function checkMembers(action: string, op: Operation, p: Params): void {
  for (const name of p.keys()) {
    if (name === 'Action' || name === 'Version') continue;
    const top = name.split('.')[0]!;
    if (op.refused?.[top]) throw new ServiceError('InvalidInput', `${top} is not supported by this endpoint's IAM: ${op.refused[top]}.`);
    if (!op.members.includes(top)) throw new ServiceError('InvalidInput', `${action} has no member ${top}.`);
    if (top === 'Path' && p.get('Path') !== '/') throw new ServiceError('InvalidInput', 'Only the path "/" is supported by this endpoint\'s IAM.');
  }
  for (const r of op.required) {
    if (p.get(r) === null)
      throw new ServiceError(
        'ValidationError',
        `1 validation error detected: Value null at '${r[0]!.toLowerCase()}${r.slice(1)}' failed to satisfy constraint: Member must not be null`,
      );
  }
}

/** A value as Query XML: dates ISO 8601, booleans true/false, lists as <member>, structures by member name. */
function toXml(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return { member: v.map(toXml) };
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toXml(x)]));
  return v;
}

function reply(status: number, doc: Record<string, unknown>): ServiceReply {
  return { status, headers: { 'Content-Type': 'text/xml' }, body: xmlDocument(doc) };
}

export const iamService: Service = {
  name: 'iam',
  maxClockSkewMs: 15 * 60 * 1000,
  queryActions: IAM_ACTIONS,
  async handle(call: ServiceCall): Promise<ServiceReply> {
    const p = call.params;
    const action = p.get('Action') ?? '';
    if (p.get('Version') !== VERSION) throw new ServiceError('InvalidParameterValue', `Version must be ${VERSION} for IAM; got '${p.get('Version') ?? ''}'.`);
    const op = Object.hasOwn(IAM_OPERATIONS, action) ? IAM_OPERATIONS[action] : undefined;
    if (!op)
      throw new ServiceError(
        'InvalidAction',
        `Could not find operation ${action || '(no Action)'} for version ${VERSION}: this endpoint's IAM answers ${[...IAM_ACTIONS].join(', ')}.`,
      );
    checkMembers(action, op, p);
    // Precondition: an IAM call is allowed by the caller's identity policies (the account root has every permission),
    // with the global condition keys AWS sets for it (IAM is global: aws:RequestedRegion is us-east-1).
    const k = call.kms.ctx;
    requireIdentityAllow(k.store, k.account, call.caller.arn, `iam:${action}`, op.resource(call, p), { region: GLOBAL_SERVICE_REGION, now: k.now() });
    const out = op.run(call, p);
    const body = Object.keys(out).length ? { [`${action}Result`]: toXml(out) } : {};
    return reply(200, { [`${action}Response`]: { [`${ATTRIBUTE}xmlns`]: NS, ...body, ResponseMetadata: { RequestId: call.requestId } } });
  },
  error(e: WireError, requestId: string): ServiceReply {
    const w = e.failure ? QUERY_AUTH[e.failure](e.message) : e;
    return reply(w.status, {
      ErrorResponse: {
        [`${ATTRIBUTE}xmlns`]: NS,
        Error: { Type: w.status >= 500 ? 'Receiver' : 'Sender', Code: w.name, Message: w.message },
        RequestId: requestId,
      },
    });
  },
};
