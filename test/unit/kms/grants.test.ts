import { describe, expect, it } from 'vitest';
import { errorName, testKms } from '../../helpers/home.js';

const ACCT = '000000000000';
const CARD_A = `arn:aws:sts::${ACCT}:assumed-role/kmsvol-card/vol-a`;
const CARD_B = `arn:aws:sts::${ACCT}:assumed-role/kmsvol-card/vol-b`;

function setup() {
  const t = testKms();
  const id = t.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const blobFor = (vol: string) =>
    t.kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: id, NumberOfBytes: 64, EncryptionContext: { 'aws:ebs:id': vol } }).CiphertextBlob;
  return { ...t, id, blobFor };
}

describe('grants', () => {
  it("a grant with EncryptionContextSubset allows Decrypt only for its volume's context", () => {
    const { kms, id, blobFor } = setup();
    const a = blobFor('vol-a');
    const b = blobFor('vol-b');
    const decrypt = (who: string, blob: Uint8Array, vol: string, tokens?: string[]) => () =>
      kms.invokeAs(who, 'Decrypt', { CiphertextBlob: blob, EncryptionContext: { 'aws:ebs:id': vol }, ...(tokens ? { GrantTokens: tokens } : {}) });
    expect(errorName(decrypt(CARD_A, a, 'vol-a'))).toBe('AccessDeniedException');
    const g = kms.invoke('CreateGrant', {
      KeyId: id,
      GranteePrincipal: CARD_A,
      Operations: ['Decrypt'],
      Constraints: { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } },
    });
    expect(g.GrantId).toMatch(/^[0-9a-f]{64}$/);
    const pt = decrypt(CARD_A, a, 'vol-a', [g.GrantToken])().Plaintext;
    expect(pt.length).toBe(64);
    pt.fill(0);
    expect(errorName(decrypt(CARD_A, b, 'vol-b', [g.GrantToken]))).toBe('AccessDeniedException');
    expect(errorName(decrypt(CARD_B, a, 'vol-a'))).toBe('AccessDeniedException');
    // Only the operations granted: not Encrypt, not GenerateDataKey.
    expect(errorName(() => kms.invokeAs(CARD_A, 'GenerateDataKey', { KeyId: id, KeySpec: 'AES_256', EncryptionContext: { 'aws:ebs:id': 'vol-a' } }))).toBe(
      'AccessDeniedException',
    );
    expect(kms.invoke('ListGrants', { KeyId: id }).Grants).toEqual([
      {
        KeyId: `arn:aws:kms:us-east-1:${ACCT}:key/${id}`,
        GrantId: g.GrantId,
        CreationDate: expect.any(Date),
        GranteePrincipal: CARD_A,
        IssuingAccount: `arn:aws:iam::${ACCT}:root`,
        Operations: ['Decrypt'],
        Constraints: { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } },
      },
    ]);
  });

  it('EncryptionContextEquals needs exactly that context', () => {
    const { kms, id } = setup();
    const who = `arn:aws:iam::${ACCT}:role/app`;
    const session = `arn:aws:sts::${ACCT}:assumed-role/app/worker-1`;
    kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: who, Operations: ['Encrypt', 'Decrypt'], Constraints: { EncryptionContextEquals: { app: 'x' } } });
    const enc = (ctx: Record<string, string>) => () => kms.invokeAs(session, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: ctx });
    expect(enc({ app: 'x' })().KeyId).toContain(id); // a role's grant serves its sessions
    expect(errorName(enc({ app: 'x', more: 'y' }))).toBe('AccessDeniedException');
    expect(errorName(enc({ app: 'y' }))).toBe('AccessDeniedException');
  });

  it('grant constraints compare context keys without case and values with it; another spelling of a key never satisfies a constraint', () => {
    // AWS GrantConstraints: "in a grant constraint, the key in each key-value pair is not case sensitive, but the value is case sensitive".
    const { kms, id } = setup();
    const session = `arn:aws:sts::${ACCT}:assumed-role/app/worker-1`;
    const grant = (constraints: object) =>
      kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: `arn:aws:iam::${ACCT}:role/app`, Operations: ['Encrypt'], Constraints: constraints }).GrantId;
    const enc = (ctx: Record<string, string>) => () => kms.invokeAs(session, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: ctx });
    const subset = grant({ EncryptionContextSubset: { Dept: 'IT' } });
    expect(enc({ dept: 'IT' })().KeyId).toContain(id);
    expect(enc({ DEPT: 'IT', other: 'x' })().KeyId).toContain(id);
    expect(errorName(enc({ Dept: 'it' }))).toBe('AccessDeniedException');
    // Both spellings: "Dept" and "dept" are one key to the constraint, and one of its values is not IT.
    expect(errorName(enc({ Dept: 'IT', dept: 'HR' }))).toBe('AccessDeniedException');
    expect(errorName(enc({ dept: 'HR', Dept: 'IT' }))).toBe('AccessDeniedException');
    kms.invoke('RevokeGrant', { KeyId: id, GrantId: subset });
    grant({ EncryptionContextEquals: { Dept: 'IT' } });
    expect(enc({ dept: 'IT' })().KeyId).toContain(id);
    expect(errorName(enc({ dept: 'IT', Dept: 'HR' }))).toBe('AccessDeniedException');
    expect(errorName(enc({ Dept: 'IT', dEpt: 'HR' }))).toBe('AccessDeniedException');
    expect(errorName(enc({ Dept: 'IT', other: 'x' }))).toBe('AccessDeniedException');
    // The cryptography itself stays exact: a blob made under {"Dept":"IT"} does not decrypt under {"dept":"IT"}.
    const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: { Dept: 'IT' } }).CiphertextBlob;
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { dept: 'IT' } }))).toBe('InvalidCiphertextException');
    // A grant made through a grant narrows it when it names the same key in another spelling.
    const parent = kms.invoke('CreateGrant', {
      KeyId: id,
      GranteePrincipal: CARD_A,
      Operations: ['Encrypt', 'CreateGrant'],
      Constraints: { EncryptionContextSubset: { Dept: 'IT' } },
    });
    expect(parent.GrantId).toBeTruthy();
    const child = (cons: object) => () =>
      kms.invokeAs(CARD_A, 'CreateGrant', {
        KeyId: id,
        GranteePrincipal: CARD_B,
        Operations: ['Encrypt'],
        Constraints: cons,
        GrantTokens: [parent.GrantToken],
      });
    expect(child({ EncryptionContextSubset: { dept: 'IT' } })().GrantId).toMatch(/^[0-9a-f]{64}$/);
    expect(errorName(child({ EncryptionContextSubset: { dept: 'it' } }))).toBe('AccessDeniedException');
    expect(errorName(child({ EncryptionContextSubset: { Dept: 'IT', dept: 'HR' } }))).toBe('AccessDeniedException');
  });

  it('a retired or revoked grant stops working; RetireGrant only by those allowed to', () => {
    const { kms, id, blobFor } = setup();
    const a = blobFor('vol-a');
    const dec = () => kms.invokeAs(CARD_A, 'Decrypt', { CiphertextBlob: a, EncryptionContext: { 'aws:ebs:id': 'vol-a' } }).Plaintext.fill(0);
    const mk = () =>
      kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, RetiringPrincipal: `arn:aws:iam::${ACCT}:user/ops`, Operations: ['Decrypt'] });
    const g1 = mk();
    dec();
    expect(errorName(() => kms.invokeAs(CARD_A, 'RetireGrant', { GrantToken: g1.GrantToken }))).toBe('AccessDeniedException');
    expect(errorName(() => kms.invokeAs(`arn:aws:iam::${ACCT}:user/eve`, 'RetireGrant', { GrantToken: g1.GrantToken }))).toBe('AccessDeniedException');
    expect(kms.invoke('ListRetirableGrants', { RetiringPrincipal: `arn:aws:iam::${ACCT}:user/ops` }).Grants.map((g) => g.GrantId)).toEqual([g1.GrantId]);
    kms.invokeAs(`arn:aws:iam::${ACCT}:user/ops`, 'RetireGrant', { GrantToken: g1.GrantToken });
    expect(errorName(dec)).toBe('AccessDeniedException');
    expect(errorName(() => kms.invoke('RetireGrant', { GrantToken: g1.GrantToken }))).toBe('NotFoundException');
    const g2 = mk();
    dec();
    kms.invoke('RevokeGrant', { KeyId: id, GrantId: g2.GrantId });
    expect(errorName(dec)).toBe('AccessDeniedException');
    expect(kms.invoke('ListGrants', { KeyId: id }).Grants).toEqual([]);
    expect(errorName(() => kms.invoke('RevokeGrant', { KeyId: id, GrantId: g2.GrantId }))).toBe('NotFoundException');
    // The grantee may retire its own grant when the grant says so.
    const g3 = kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, Operations: ['Decrypt', 'RetireGrant'] });
    kms.invokeAs(CARD_A, 'RetireGrant', { KeyId: id, GrantId: g3.GrantId });
    expect(kms.invoke('ListGrants', { KeyId: id }).Grants).toEqual([]);
  });

  it('a repeated CreateGrant with the same Name and parameters is idempotent', () => {
    const { kms, id } = setup();
    const req = {
      KeyId: id,
      GranteePrincipal: CARD_A,
      Operations: ['Decrypt'],
      Name: 'kmsvol-card-vol-a',
      Constraints: { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } },
    };
    const g1 = kms.invoke('CreateGrant', req);
    const g2 = kms.invoke('CreateGrant', req);
    expect(g2.GrantId).toBe(g1.GrantId);
    expect(kms.invoke('ListGrants', { KeyId: id }).Grants).toHaveLength(1);
    // The same Name with other parameters is another grant.
    const g3 = kms.invoke('CreateGrant', { ...req, Operations: ['Decrypt', 'Encrypt'] });
    expect(g3.GrantId).not.toBe(g1.GrantId);
    expect(kms.invoke('ListGrants', { KeyId: id, GranteePrincipal: CARD_A }).Grants).toHaveLength(2);
  });

  it('validates grants and grant tokens; a grant made through a grant can only narrow it', () => {
    const { kms, id } = setup();
    expect(errorName(() => kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, Operations: ['Fly'] }))).toBe('ValidationException');
    expect(
      errorName(() =>
        kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, Operations: ['DescribeKey'], Constraints: { EncryptionContextSubset: { a: 'b' } } }),
      ),
    ).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: 'nobody', Operations: ['Decrypt'] }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('DescribeKey', { KeyId: id, GrantTokens: ['not-a-token'] }))).toBe('InvalidGrantTokenException');
    expect(errorName(() => kms.invoke('RetireGrant', { GrantToken: 'kmsvolgt1.AAAA' }))).toBe('InvalidGrantTokenException');
    const parent = kms.invoke('CreateGrant', {
      KeyId: id,
      GranteePrincipal: CARD_A,
      Operations: ['Decrypt', 'CreateGrant'],
      Constraints: { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } },
    });
    expect(parent.GrantId).toBeTruthy();
    const child = (ops: string[], cons?: object) => () =>
      kms.invokeAs(CARD_A, 'CreateGrant', { KeyId: id, GranteePrincipal: CARD_B, Operations: ops, ...(cons ? { Constraints: cons } : {}) });
    expect(child(['Decrypt'], { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } })().GrantId).toMatch(/^[0-9a-f]{64}$/);
    expect(errorName(child(['Decrypt']))).toBe('AccessDeniedException');
    expect(errorName(child(['Encrypt'], { EncryptionContextSubset: { 'aws:ebs:id': 'vol-a' } }))).toBe('AccessDeniedException');
  });

  it('a key that is deleted takes its grants with it', () => {
    const { kms, id, clock } = setup();
    kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, Operations: ['Decrypt'] });
    kms.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 });
    expect(errorName(() => kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: CARD_A, Operations: ['Decrypt'] }))).toBe('KMSInvalidStateException');
    clock.advance(8 * 24 * 3600_000);
    expect(errorName(() => kms.invoke('ListGrants', { KeyId: id }))).toBe('NotFoundException');
    expect((kms.ctx.store.stmt('SELECT COUNT(*) AS n FROM grants').get() as { n: number }).n).toBe(0);
  });
});
