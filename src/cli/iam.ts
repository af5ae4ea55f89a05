import { Command } from 'commander';
import { createAccessKey, createRole, createUser, getRole, getUser, updateRoleMaxSessionDuration } from '../kms/iam.js';
import type { PolicyOwner } from '../kms/iam-policies.js';
import { deletePolicy, getPolicy, listPolicies, putPolicy } from '../kms/iam-policies.js';
import { Kms } from '../kms/kms.js';
import { parseInteger, readParamText } from './args.js';
import { globalsOf, homeOf, print, withGlobals } from './common.js';
import { OperationContext } from './errors.js';

/**
 * `kmsvol iam …`: local IAM for `kmsvol serve`, as the account root uses it
 * (the endpoint's IAM answers the same operations over the wire). Policy
 * documents are printed as JSON objects, as the AWS CLI prints them.
 */
type Globals = ReturnType<typeof globalsOf>;

async function withKms<T>(op: string, g: Globals, fn: (kms: Kms) => T): Promise<void> {
  await OperationContext.run(op, async () => {
    const kms = Kms.open({ home: homeOf(g), audit: false });
    try {
      const out = fn(kms);
      if (out && Object.keys(out).length) print(out, g);
    } finally {
      kms.close();
    }
  });
}

/** A role as the AWS CLI prints it: its trust policy decoded into JSON. */
function shownRole(r: ReturnType<typeof getRole>) {
  return { Role: { ...r.Role, AssumeRolePolicyDocument: JSON.parse(r.Role.AssumeRolePolicyDocument) } };
}

function command(name: string, description: string): Command {
  return withGlobals(new Command(name)).description(description);
}

/** The inline-policy commands of users (kind 'user') or roles. */
function policyCommands(kind: PolicyOwner): Command[] {
  const Owner = kind === 'user' ? 'User' : 'Role';
  const flag = `--${kind}-name <name>`;
  const ownerOf = (o: { userName?: string; roleName?: string }) => (kind === 'user' ? o.userName : o.roleName)!;
  return [
    command(`put-${kind}-policy`, `Add or replace an inline identity policy of a ${kind}`)
      .requiredOption(flag)
      .requiredOption('--policy-name <name>')
      .requiredOption('--policy-document <json>', 'the policy (JSON, or file://FILE): Effect, Action, Resource, optional Condition; no Principal')
      .action(async (o: { policyName: string; policyDocument: string; userName?: string; roleName?: string }, self: Command) => {
        await withKms(`Put${Owner}Policy`, globalsOf(self), (kms) => putPolicy(kms.ctx, kind, ownerOf(o), o.policyName, readParamText(o.policyDocument)));
      }),
    command(`get-${kind}-policy`, `Show an inline identity policy of a ${kind}`)
      .requiredOption(flag)
      .requiredOption('--policy-name <name>')
      .action(async (o: { policyName: string; userName?: string; roleName?: string }, self: Command) => {
        await withKms(`Get${Owner}Policy`, globalsOf(self), (kms) => {
          const r = getPolicy(kms.ctx, kind, ownerOf(o), o.policyName);
          return { ...r, PolicyDocument: JSON.parse(r.PolicyDocument as string) };
        });
      }),
    command(`delete-${kind}-policy`, `Delete an inline identity policy of a ${kind}`)
      .requiredOption(flag)
      .requiredOption('--policy-name <name>')
      .action(async (o: { policyName: string; userName?: string; roleName?: string }, self: Command) => {
        await withKms(`Delete${Owner}Policy`, globalsOf(self), (kms) => deletePolicy(kms.ctx, kind, ownerOf(o), o.policyName));
      }),
    command(`list-${kind}-policies`, `List the names of a ${kind}'s inline identity policies`)
      .requiredOption(flag)
      .action(async (o: { userName?: string; roleName?: string }, self: Command) => {
        await withKms(`List${Owner}Policies`, globalsOf(self), (kms) => listPolicies(kms.ctx, kind, ownerOf(o), undefined, 1000));
      }),
  ];
}

export function iamCommand(): Command {
  const iam = new Command('iam').description('Local IAM for `kmsvol serve`: users, access keys, roles and their inline identity policies (docs/iam.md)');
  const commands = [
    command('create-user', 'Create an IAM user with no permissions (give it some with put-user-policy)')
      .requiredOption('--user-name <name>')
      .action(async (o: { userName: string }, self: Command) => {
        await withKms('CreateUser', globalsOf(self), (kms) => createUser(kms.ctx, o.userName));
      }),
    command('get-user', 'Show an IAM user')
      .requiredOption('--user-name <name>')
      .action(async (o: { userName: string }, self: Command) => {
        await withKms('GetUser', globalsOf(self), (kms) => getUser(kms.ctx, o.userName));
      }),
    command(
      'create-access-key',
      'Create an access key (the secret is shown once). A user that does not exist yet is created as an administrator (inline policy kmsvol-admin: every action)',
    )
      .requiredOption('--user-name <name>')
      .action(async (o: { userName: string }, self: Command) => {
        await withKms('CreateAccessKey', globalsOf(self), (kms) => createAccessKey(kms.ctx, o.userName));
      }),
    command('create-role', 'Create a role that the principals named by its trust policy may assume through STS')
      .requiredOption('--role-name <name>')
      .requiredOption('--assume-role-policy-document <json>', 'the trust policy: who may sts:AssumeRole (JSON, or file://FILE)')
      .option('--max-session-duration <seconds>', 'the longest session AssumeRole may give (3600-43200; default 3600)')
      .option('--description <text>')
      .action(async (o: { roleName: string; assumeRolePolicyDocument: string; maxSessionDuration?: string; description?: string }, self: Command) => {
        await withKms('CreateRole', globalsOf(self), (kms) =>
          shownRole(
            createRole(kms.ctx, o.roleName, readParamText(o.assumeRolePolicyDocument), {
              maxSessionDuration: o.maxSessionDuration === undefined ? undefined : parseInteger(o.maxSessionDuration, 'max-session-duration'),
              description: o.description,
            }),
          ),
        );
      }),
    command('update-role', "Change a role's MaxSessionDuration (sessions already issued keep theirs)")
      .requiredOption('--role-name <name>')
      .requiredOption('--max-session-duration <seconds>', 'the longest session AssumeRole may give from now on (3600-43200)')
      .action(async (o: { roleName: string; maxSessionDuration: string }, self: Command) => {
        await withKms('UpdateRole', globalsOf(self), (kms) =>
          updateRoleMaxSessionDuration(kms.ctx, o.roleName, parseInteger(o.maxSessionDuration, 'max-session-duration')),
        );
      }),
    command('get-role', 'Show a role')
      .requiredOption('--role-name <name>')
      .action(async (o: { roleName: string }, self: Command) => {
        await withKms('GetRole', globalsOf(self), (kms) => shownRole(getRole(kms.ctx, o.roleName)));
      }),
    ...policyCommands('user'),
    ...policyCommands('role'),
  ];
  for (const c of commands) iam.addCommand(c);
  return iam;
}
