import crypto from 'node:crypto';
import { ServiceError } from '../errors.js';
import type { KmsContext } from './context.js';
import { KmsError } from './errors.js';
import type { RequestFacts } from './identity.js';
import { CARD_ROLE, requireIdentityAllow } from './identity.js';
import { principalMatch, wildcard } from './policy.js';
import { LEGACY_ADMIN_POLICY, LEGACY_ADMIN_POLICY_NAME } from './schema.js';

/**
 * Local IAM and STS for the endpoint: access keys that map to IAM users
 * (arn:aws:iam::<account>:user/<name>), roles with a trust policy, and
 * temporary credentials from AssumeRole, whose caller is the role session
 * (arn:aws:sts::<account>:assumed-role/<role>/<session>). Secrets are sealed
 * under the root key like backing keys and shown once; a session token is
 * kept only as its SHA-256.
 */
const NO_MATERIAL = Buffer.alloc(32);

export { CARD_ROLE };
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43200;

export interface Principal {
  arn: string;
  accessKeyId: string;
  /** For temporary credentials: the session token's SHA-256, when they expire, and the role's unique id (AROA…). */
  session?: { tokenHash: Buffer; expires: number; roleArn: string; roleId: string; sessionName: string };
}

const iamError = (name: string, message: string, status = 400) => new ServiceError(name, message, status);

function randomId(prefix: string): string {
  return prefix + crypto.randomBytes(10).toString('hex').toUpperCase().slice(0, 16);
}

function randomSecret(): string {
  return crypto.randomBytes(30).toString('base64').replace(/[+/=]/g, 'x').slice(0, 40);
}

export function userArn(k: KmsContext, name: string): string {
  return `arn:aws:iam::${k.account}:user/${name}`;
}

/** A stable unique id for an IAM user, in AWS's form (AIDA + 17 characters). */
export function userIdOf(arn: string): string {
  return `AIDA${crypto.createHash('sha256').update(arn).digest('hex').toUpperCase().slice(0, 17)}`;
}

function checkUserName(userName: string): void {
  if (!/^[\w+=,.@-]{1,64}$/.test(userName))
    throw new KmsError('ValidationError', `The user name ${JSON.stringify(userName)} is not valid: use 1-64 of letters, digits and +=,.@_-.`);
}

/**
 * IAM CreateUser: a user with no permissions until a policy is attached
 * (PutUserPolicy). "Names are not distinguished by case. For example, you
 * cannot create resources named both "MyResource" and "myresource"" (IAM
 * CreateUser, CreateRole): a name taken in any case is EntityAlreadyExists;
 * the name keeps the case it was created with.
 */
export function createUser(k: KmsContext, userName: string) {
  checkUserName(userName);
  const created = k.now();
  const arn = userArn(k, userName);
  k.store.write(() => {
    if (!k.store.insertUser({ user_name: userName, user_id: userIdOf(arn), created }))
      throw iamError('EntityAlreadyExists', `User with name ${userName} already exists.`, 409);
  });
  return { User: { Path: '/', UserName: userName, UserId: userIdOf(arn), Arn: arn, CreateDate: new Date(created) } };
}

/** A user's name as it was created, found without regard to case (`CAROL` names user carol); the name asked for when there is none. */
export function canonicalUserName(k: KmsContext, userName: string): string {
  return k.store.userName(userName) ?? userName;
}

/** A role's name as it was created, found without regard to case; the name asked for when there is none. */
export function canonicalRoleName(k: KmsContext, roleName: string): string {
  return k.store.roleName(roleName) ?? roleName;
}

export function getUser(k: KmsContext, asked: string) {
  const userName = canonicalUserName(k, asked);
  const row = k.store.user(userName);
  if (!row) throw noSuchUser(asked);
  return { User: { Path: '/', UserName: userName, UserId: userIdOf(userArn(k, userName)), Arn: userArn(k, userName), CreateDate: new Date(row.created) } };
}

export const noSuchUser = (name: string) => iamError('NoSuchEntity', `The user with name ${name} cannot be found.`, 404);

/**
 * An access key for a user. Over the wire (IAM CreateAccessKey) the user must
 * exist (`mustExist`). `kmsvol iam create-access-key` is the local shortcut:
 * for a user that does not exist yet it creates one with the `kmsvol-admin`
 * inline policy (every action), as an account's first administrator is made;
 * a user made by CreateUser has only the policies put on it. A name that
 * differs from an existing user's only in case names that user (IAM names
 * are not distinguished by case): the key is that user's, under its name.
 */
export function createAccessKey(k: KmsContext, asked: string, opts: { mustExist?: boolean } = {}) {
  checkUserName(asked);
  const accessKeyId = randomId('AKIA');
  const secret = randomSecret();
  const created = k.now();
  let userName = asked;
  k.store.write(() => {
    userName = canonicalUserName(k, asked);
    if (!k.store.user(userName)) {
      if (opts.mustExist) throw noSuchUser(userName);
      k.store.insertUser({ user_name: userName, user_id: userIdOf(userArn(k, userName)), created });
      k.store.putIdentityPolicy({ kind: 'user', owner: userName, policy_name: LEGACY_ADMIN_POLICY_NAME, document: LEGACY_ADMIN_POLICY });
    }
    k.store.insertAccessKey({
      access_key_id: accessKeyId,
      user_name: userName,
      sealed_secret: k.rootKey.seal(accessKeyId, NO_MATERIAL, Buffer.from(secret)),
      created,
    });
  });
  return { AccessKey: { UserName: userName, AccessKeyId: accessKeyId, Status: 'Active', SecretAccessKey: secret, CreateDate: new Date(created) } };
}

/** The principal and secret of an access key (long-term or temporary), or undefined when it is unknown. */
export function lookupAccessKey(k: KmsContext, accessKeyId: string): { principal: Principal; secret: string } | undefined {
  const user = k.store.accessKey(accessKeyId);
  const session = user ? undefined : k.store.session(accessKeyId);
  const row = user ?? session;
  if (!row) return undefined;
  const secret = k.rootKey.unseal(accessKeyId, NO_MATERIAL, row.sealed_secret);
  try {
    const principal: Principal = user
      ? { arn: `arn:aws:iam::${k.account}:user/${user.user_name}`, accessKeyId }
      : {
          arn: `arn:aws:sts::${k.account}:assumed-role/${session!.role_name}/${session!.session_name}`,
          accessKeyId,
          session: {
            tokenHash: session!.token_hash,
            expires: session!.expires,
            roleArn: roleArn(k, session!.role_name),
            roleId: session!.role_id,
            sessionName: session!.session_name,
          },
        };
    return { principal, secret: secret.toString('utf8') };
  } finally {
    secret.fill(0);
  }
}

export function tokenHash(token: string): Buffer {
  return crypto.createHash('sha256').update(token, 'utf8').digest();
}

function roleArn(k: KmsContext, name: string): string {
  return `arn:aws:iam::${k.account}:role/${name}`;
}

/** A trust policy: who may call sts:AssumeRole on the role. Validated when the role is created. */
interface TrustStatement {
  Effect: 'Allow' | 'Deny';
  Principal: string[];
  Action: string[];
}

function parseTrustPolicy(text: string): TrustStatement[] {
  let doc: { Statement?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    throw iamError('MalformedPolicyDocument', 'The assume-role policy document is not valid JSON.');
  }
  const raw = Array.isArray(doc?.Statement) ? doc.Statement : doc?.Statement ? [doc.Statement] : [];
  if (raw.length === 0) throw iamError('MalformedPolicyDocument', 'The assume-role policy document has no Statement.');
  const list = (v: unknown) => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(String);
  return raw.map((s: { Effect?: unknown; Principal?: unknown; Action?: unknown; Condition?: unknown }) => {
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw iamError('MalformedPolicyDocument', 'Each statement needs "Effect": "Allow" or "Deny".');
    // A condition kmsvol would not evaluate must not be accepted and then ignored.
    if (s.Condition !== undefined)
      throw iamError(
        'MalformedPolicyDocument',
        'Conditions in trust policies are not supported by kmsvol: name the principals that may assume the role instead.',
      );
    const p = s.Principal === '*' ? ['*'] : list((s.Principal as { AWS?: unknown } | undefined)?.AWS);
    if (p.length === 0) throw iamError('MalformedPolicyDocument', 'Each statement of an assume-role policy needs "Principal": {"AWS": ...}.');
    const actions = list(s.Action);
    if (actions.length === 0) throw iamError('MalformedPolicyDocument', 'Each statement needs an "Action" such as "sts:AssumeRole".');
    return { Effect: s.Effect, Principal: p, Action: actions };
  });
}

/** `kmsvol iam create-role` and IAM CreateRole: a role that the principals its trust policy names may assume, for sessions of at most MaxSessionDuration. */
export function createRole(k: KmsContext, roleName: string, trustPolicy: string, opts: { maxSessionDuration?: number; description?: string } = {}) {
  if (!/^[\w+=,.@-]{1,64}$/.test(roleName))
    throw iamError('ValidationError', `The role name ${JSON.stringify(roleName)} is not valid: use 1-64 of letters, digits and +=,.@_-.`);
  const max = opts.maxSessionDuration ?? ROLE_MAX_SESSION_SECONDS;
  checkMaxSessionDuration(max);
  if (opts.description !== undefined && opts.description.length > 1000)
    throw iamError(
      'ValidationError',
      "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
    );
  parseTrustPolicy(trustPolicy);
  // The card role is kmsvol's, as a service-linked role is AWS's: it exists in every account (roleRow), and no CreateRole may
  // make it first with a trust policy of its own (whoever could assume it would use every volume's card grant).
  if (roleName.toLowerCase() === CARD_ROLE) throw iamError('EntityAlreadyExists', `Role with name ${roleName} already exists.`, 409);
  const created = k.now();
  const roleId = randomId('AROA');
  k.store.write(() => {
    if (
      !k.store.insertRole({
        role_name: roleName,
        role_id: roleId,
        trust_policy: trustPolicy,
        created,
        max_session_duration: max,
        description: opts.description ?? null,
      })
    )
      throw iamError('EntityAlreadyExists', `Role with name ${roleName} already exists.`, 409);
  });
  return getRole(k, roleName);
}

export const noSuchRole = (name: string) => iamError('NoSuchEntity', `The role with name ${name} cannot be found.`, 404);

/**
 * The card role, like a service-linked role, is changed by kmsvol only: PutRolePolicy, DeleteRolePolicy and UpdateRole
 * on it are UnmodifiableEntity, in IAM's words.
 */
export function requireModifiableRole(roleName: string): void {
  if (roleName.toLowerCase() === CARD_ROLE)
    throw iamError(
      'UnmodifiableEntity',
      `Cannot perform the operation on the protected role '${CARD_ROLE}' - this role is only modifiable by kmsvol (its volumes' cards assume it).`,
    );
}

/** `kmsvol iam update-role --max-session-duration`: sessions issued afterwards may last up to it (those issued keep theirs). */
export function updateRoleMaxSessionDuration(k: KmsContext, roleName: string, maxSessionDuration: number): Record<string, never> {
  checkMaxSessionDuration(maxSessionDuration);
  requireModifiableRole(roleName);
  k.store.write(() => {
    if (!k.store.setRoleMaxSessionDuration(roleName, maxSessionDuration)) throw noSuchRole(roleName);
  });
  return {};
}

/** IAM's bounds of MaxSessionDuration, in IAM's words. */
function checkMaxSessionDuration(seconds: number): void {
  const fail = (bound: string) =>
    iamError(
      'ValidationError',
      `1 validation error detected: Value '${seconds}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value ${bound}`,
    );
  if (!Number.isInteger(seconds)) throw fail(`between ${ROLE_MAX_SESSION_SECONDS} and ${MAX_SESSION_SECONDS}`);
  if (seconds < ROLE_MAX_SESSION_SECONDS) throw fail(`greater than or equal to ${ROLE_MAX_SESSION_SECONDS}`);
  if (seconds > MAX_SESSION_SECONDS) throw fail(`less than or equal to ${MAX_SESSION_SECONDS}`);
}

/** IAM GetRole. */
export function getRole(k: KmsContext, asked: string) {
  const roleName = canonicalRoleName(k, asked);
  const r = roleRow(k, roleName);
  if (!r) throw noSuchRole(asked);
  return {
    Role: {
      Path: '/',
      RoleName: roleName,
      RoleId: r.role_id,
      Arn: roleArn(k, roleName),
      CreateDate: new Date(r.created),
      AssumeRolePolicyDocument: r.trust_policy,
      ...(r.description !== null ? { Description: r.description } : {}),
      MaxSessionDuration: r.max_session_duration,
    },
  };
}

/** The card role exists in every account, trusted by the account's own principals (as a service-linked role is). */
function cardRoleTrust(account: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' }],
  });
}

/**
 * A role's row; the card role is made the first time it is named, and its
 * trust is always kmsvol's (a row a CreateRole of an older kmsvol made under
 * that name keeps its id, never its trust policy).
 */
export function roleRow(k: KmsContext, name: string) {
  if (name !== CARD_ROLE) return k.store.role(name);
  if (!k.store.role(name))
    k.store.write(() => k.store.insertRole({ role_name: name, role_id: randomId('AROA'), trust_policy: cardRoleTrust(k.account), created: k.now() }));
  const row = k.store.role(name);
  return row && { ...row, trust_policy: cardRoleTrust(k.account) };
}

export interface AssumeRoleRequest {
  RoleArn?: string;
  RoleSessionName?: string;
  DurationSeconds?: number;
}

/** A role's MaxSessionDuration when CreateRole names none: AWS's default (1 hour). AssumeRole refuses a longer session as STS does. */
export const ROLE_MAX_SESSION_SECONDS = 3600;

/** AWS's cap on a session made by a role session (role chaining). */
export const CHAINED_SESSION_SECONDS = 3600;

/**
 * STS AssumeRole: temporary credentials for a role session, if the role's
 * trust policy allows the caller. `mayAssume` is the role's own extra rule
 * (the card role: only for a volume whose card grant the caller could make).
 */
export function assumeRole(
  k: KmsContext,
  caller: string,
  req: AssumeRoleRequest,
  mayAssume?: (role: string, session: string) => boolean,
  facts: RequestFacts = { region: k.region },
) {
  const { RoleArn: arn, RoleSessionName: session } = req;
  if (!arn) throw iamError('MissingParameter', 'The request must contain the parameter RoleArn.');
  if (!session) throw iamError('MissingParameter', 'The request must contain the parameter RoleSessionName.');
  if (!/^[\w+=,.@-]{2,64}$/.test(session))
    throw iamError(
      'ValidationError',
      `1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2-64`,
    );
  const duration = req.DurationSeconds ?? 3600;
  if (!Number.isInteger(duration) || duration < MIN_SESSION_SECONDS || duration > MAX_SESSION_SECONDS) {
    throw iamError(
      'ValidationError',
      `1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${MIN_SESSION_SECONDS} and ${MAX_SESSION_SECONDS}`,
    );
  }
  if (caller.includes(':assumed-role/') && duration > CHAINED_SESSION_SECONDS) {
    throw iamError('ValidationError', `The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.`);
  }
  const m = /^arn:aws:iam::(\d{12}):role\/([\w+=,.@-]{1,64})$/.exec(arn);
  const denied = () => iamError('AccessDenied', `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${arn}`, 403);
  if (!m || m[1] !== k.account) throw denied();
  const role = roleRow(k, m[2]!);
  if (!role) throw denied();
  // A trust statement that names the caller lets it assume the role; one that names only its account
  // (arn:aws:iam::<account>:root) lets in the account's principals whose identity policies allow sts:AssumeRole.
  const statements = parseTrustPolicy(role.trust_policy)
    .filter((s) => s.Action.some((a) => wildcard(a.toLowerCase(), 'sts:assumerole')))
    .map((s) => {
      const hits = s.Principal.map((p) => principalMatch(p, caller));
      return { ...s, via: hits.includes('direct') ? 'direct' : hits.includes('account') ? 'account' : undefined };
    })
    .filter((s) => s.via !== undefined);
  if (statements.length === 0 || statements.some((s) => s.Effect === 'Deny')) throw denied();
  if (!statements.some((s) => s.via === 'direct')) requireIdentityAllow(k.store, k.account, caller, 'sts:AssumeRole', arn, { now: k.now(), ...facts });
  if (mayAssume && !mayAssume(m[2]!, session)) throw denied();
  if (duration > role.max_session_duration)
    throw iamError(
      'ValidationError',
      `The requested DurationSeconds exceeds the MaxSessionDuration set for this role. Its MaxSessionDuration is ${role.max_session_duration} seconds; ask for at most that.`,
    );
  const accessKeyId = randomId('ASIA');
  const secret = randomSecret();
  const token = crypto.randomBytes(96).toString('base64');
  const expires = k.now() + duration * 1000;
  k.store.write(() =>
    k.store.insertSession(
      {
        access_key_id: accessKeyId,
        sealed_secret: k.rootKey.seal(accessKeyId, NO_MATERIAL, Buffer.from(secret)),
        token_hash: tokenHash(token),
        role_name: m[2]!,
        session_name: session,
        expires,
      },
      k.now() - 86_400_000,
    ),
  );
  return {
    Credentials: { AccessKeyId: accessKeyId, SecretAccessKey: secret, SessionToken: token, Expiration: new Date(expires) },
    AssumedRoleUser: { AssumedRoleId: `${role.role_id}:${session}`, Arn: `arn:aws:sts::${k.account}:assumed-role/${m[2]}/${session}` },
  };
}
