import crypto from 'node:crypto';
import type { KmsContext } from './context.js';
import { KmsError } from './errors.js';

/**
 * Local credentials for the KMS server: access keys that map to IAM-style
 * principals (arn:aws:iam::<account>:user/<name>). Secrets are sealed under
 * the root key like backing keys, and shown once, at creation.
 */
const NO_MATERIAL = Buffer.alloc(32);

export interface Principal {
  arn: string;
  userName: string;
  accessKeyId: string;
}

export function createAccessKey(k: KmsContext, userName: string) {
  if (!/^[\w+=,.@-]{1,64}$/.test(userName)) throw new KmsError('ValidationError', `The user name ${JSON.stringify(userName)} is not valid: use 1-64 of letters, digits and +=,.@_-.`);
  const accessKeyId = `AKIA${crypto.randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`;
  const secret = crypto.randomBytes(30).toString('base64').replace(/[+/=]/g, 'x').slice(0, 40);
  const created = k.now();
  k.store.write(() =>
    k.store.stmt('INSERT INTO iam_access_keys (access_key_id, user_name, sealed_secret, created) VALUES (?, ?, ?, ?)').run(accessKeyId, userName, k.rootKey.seal(accessKeyId, NO_MATERIAL, Buffer.from(secret)), created),
  );
  return { AccessKey: { UserName: userName, AccessKeyId: accessKeyId, Status: 'Active', SecretAccessKey: secret, CreateDate: new Date(created) } };
}

/** The principal and secret of an access key, or undefined when it is unknown. */
export function lookupAccessKey(k: KmsContext, accessKeyId: string): { principal: Principal; secret: string } | undefined {
  const row = k.store.stmt('SELECT user_name, sealed_secret FROM iam_access_keys WHERE access_key_id = ?').get(accessKeyId) as { user_name: string; sealed_secret: Buffer } | undefined;
  if (!row) return undefined;
  const secret = k.rootKey.unseal(accessKeyId, NO_MATERIAL, row.sealed_secret);
  try {
    return { principal: { arn: `arn:aws:iam::${k.account}:user/${row.user_name}`, userName: row.user_name, accessKeyId }, secret: secret.toString('utf8') };
  } finally {
    secret.fill(0);
  }
}
