import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cardPrincipal } from '../../src/card/grants.js';
import { Kms } from '../../src/kms/kms.js';
import { decodeHeader } from '../../src/volume/luks2.js';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';
import { attach, createVolume, detach, head, volumeHome } from '../helpers/volumes.js';

function tokenOf(home: string, vol: string) {
  return decodeHeader(head(path.join(home, 'volumes', `${vol}.img`), 32768)).token;
}

function openKms(home: string): Kms {
  const kms = Kms.open({ home });
  onCleanup(() => kms.close());
  return kms;
}

describe('the EBS grant flow', () => {
  it("an attached card can decrypt only its own volume's data key, and only until detach", () => {
    const ctx = volumeHome();
    const volA = createVolume(ctx.home, ctx.key);
    const volB = createVolume(ctx.home, ctx.key);
    const a = tokenOf(ctx.home, volA);
    const b = tokenOf(ctx.home, volB);
    attach(ctx.home, volA);
    const kms = openKms(ctx.home);
    const registry = new Registry(path.join(ctx.home, 'ec2.db'));
    onCleanup(() => registry.close());
    const grantToken = registry.getAttachment(volA)!.grant_token!;
    const card = cardPrincipal(a.keyArn, volA);
    expect(card).toBe(`arn:aws:sts::000000000000:assumed-role/kmsvol-card/${volA}`);

    // The grant: Decrypt only, for this volume's context only, retirable by the account.
    const grants = kms.invoke('ListGrants', { KeyId: ctx.key }).Grants;
    expect(grants).toEqual([
      expect.objectContaining({
        Name: `kmsvol-card-${volA}`,
        GranteePrincipal: card,
        RetiringPrincipal: 'arn:aws:iam::000000000000:root',
        Operations: ['Decrypt'],
        Constraints: { EncryptionContextSubset: { 'aws:ebs:id': volA } },
      }),
    ]);

    const decrypt = (t: typeof a) => () =>
      kms.invokeAs({ principal: card, viaService: 'ec2.local.amazonaws.com' }, 'Decrypt', {
        CiphertextBlob: Buffer.from(t.ciphertextBlob, 'base64'),
        EncryptionContext: t.encryptionContext,
        GrantTokens: [grantToken],
      });
    // The card tries another volume's key: refused.
    try {
      decrypt(b)();
      expect.unreachable();
    } catch (e) {
      expect((e as Error).name).toBe('AccessDeniedException');
      expect((e as Error).message).toContain(`User: ${card} is not authorized to perform: kms:Decrypt`);
    }
    // Its own volume's key: allowed, through the grant.
    const own = decrypt(a)().Plaintext;
    expect(own.length).toBe(64);
    own.fill(0);

    // The card process itself unwrapped through the grant, as its own principal.
    kms.flushAudit();
    const audit = fs
      .readFileSync(path.join(ctx.home, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const cardCalls = audit.filter((r) => r.userIdentity.arn === card && r.eventName === 'Decrypt' && !r.errorCode);
    expect(cardCalls.length).toBeGreaterThanOrEqual(2);
    expect(cardCalls[0].userIdentity.type).toBe('AssumedRole');
    expect(cardCalls[0].additionalEventData.authorization).toEqual([
      { action: 'kms:Decrypt', resource: a.keyArn, effect: 'Allow', by: `grant ${grants[0]!.GrantId}` },
    ]);
    const denied = audit.find((r) => r.userIdentity.arn === card && r.errorCode === 'AccessDeniedException');
    // The default policy's account statement reaches the card's role session, but the kmsvol-card role has no identity policy.
    expect(denied.additionalEventData.authorization[0]).toMatchObject({
      effect: 'Deny',
      by: 'key policy statement Enable IAM User Permissions, but no IAM policy',
    });

    // Both volumes attached: two grants, each for its own volume.
    attach(ctx.home, volB);
    expect(
      kms
        .invoke('ListGrants', { KeyId: ctx.key })
        .Grants.map((g) => g.GranteePrincipal)
        .sort(),
    ).toEqual([card, cardPrincipal(b.keyArn, volB)].sort());

    detach(ctx.home, volA);
    expect(kms.invoke('ListGrants', { KeyId: ctx.key }).Grants.map((g) => g.GranteePrincipal)).toEqual([cardPrincipal(b.keyArn, volB)]);
    expect(() => decrypt(a)()).toThrow(/not authorized to perform: kms:Decrypt/);
    detach(ctx.home, volB);
    expect(kms.invoke('ListGrants', { KeyId: ctx.key }).Grants).toEqual([]);
  });

  it("a killed card's grant is retired when the volume is cleaned up", () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    attach(ctx.home, vol);
    const kms = openKms(ctx.home);
    expect(kms.invoke('ListGrants', { KeyId: ctx.key }).Grants).toHaveLength(1);
    const registry = new Registry(path.join(ctx.home, 'ec2.db'));
    onCleanup(() => registry.close());
    process.kill(registry.getAttachment(vol)!.pid, 'SIGKILL');
    // describe-volumes notices the dead card and cleans up after it, grant included.
    for (let i = 0; i < 100 && kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State !== 'available'; i++)
      execFileSync('sleep', ['0.1']);
    expect(kms.invoke('ListGrants', { KeyId: ctx.key }).Grants).toEqual([]);
  });
});

/** Seed 004's story through the CLI: openssl wraps the material, as in AWS's documentation. */
describe('imported key material (BYOK) under a volume', () => {
  it('imports, expires, refuses to attach, takes the same material back (data intact), and refuses other material', () => {
    const ctx = volumeHome();
    const dir = fs.mkdtempSync(path.join(ctx.home, 'byok-'));
    const t0 = Date.now();
    const at = (days: number) => ({ KMSVOL_NOW: new Date(t0 + days * 86400_000).toISOString() });
    const cli = (args: string[], env = at(0)) => kmsvol(ctx.home, args, env);
    const key = cli(['kms', 'create-key', '--origin', 'EXTERNAL', '--description', 'BYOK', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    expect(cli(['kms', 'describe-key', '--key-id', key]).json.KeyMetadata.KeyState).toBe('PendingImport');

    const wrapAndImport = (material: string, extra: string[], env: Record<string, string>) => {
      const p = cli(
        ['kms', 'get-parameters-for-import', '--key-id', key, '--wrapping-algorithm', 'RSAES_OAEP_SHA_256', '--wrapping-key-spec', 'RSA_2048'],
        env,
      );
      expect(p.code, p.stderr).toBe(0);
      fs.writeFileSync(path.join(dir, 'PublicKey.der'), Buffer.from(p.json.PublicKey, 'base64'));
      fs.writeFileSync(path.join(dir, 'ImportToken.bin'), Buffer.from(p.json.ImportToken, 'base64'));
      execFileSync('openssl', [
        'pkeyutl',
        '-encrypt',
        '-in',
        material,
        '-out',
        path.join(dir, 'EncryptedKeyMaterial.bin'),
        '-inkey',
        path.join(dir, 'PublicKey.der'),
        '-keyform',
        'DER',
        '-pubin',
        '-pkeyopt',
        'rsa_padding_mode:oaep',
        '-pkeyopt',
        'rsa_oaep_md:sha256',
      ]);
      return cli(
        [
          'kms',
          'import-key-material',
          '--key-id',
          key,
          '--encrypted-key-material',
          `fileb://${dir}/EncryptedKeyMaterial.bin`,
          '--import-token',
          `fileb://${dir}/ImportToken.bin`,
          ...extra,
        ],
        env,
      );
    };
    const material = path.join(dir, 'PlaintextKeyMaterial.bin');
    execFileSync('openssl', ['rand', '-out', material, '32']);

    // 1. Material valid for one day; a volume under the key attaches.
    const validTo = new Date(t0 + 86400_000).toISOString();
    const imp = wrapAndImport(material, ['--expiration-model', 'KEY_MATERIAL_EXPIRES', '--valid-to', validTo], at(0));
    expect(imp.code, imp.stderr).toBe(0);
    expect(cli(['kms', 'describe-key', '--key-id', key]).json.KeyMetadata).toMatchObject({ KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_EXPIRES' });
    const vol = cli(['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key]).json.VolumeId;
    const data = crypto.randomBytes(1 << 20);
    let a = cli(['ec2', 'attach-volume', '--volume-id', vol]);
    expect(a.code, a.stderr).toBe(0);
    const fd = fs.openSync(a.json.Device, 'r+');
    fs.writeSync(fd, data, 0, data.length, 5 << 20);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    expect(cli(['ec2', 'detach-volume', '--volume-id', vol]).code).toBe(0);

    // 2. Two days on, the material has expired: PendingImport, and attach fails with the KMS's error.
    expect(cli(['kms', 'describe-key', '--key-id', key], at(2)).json.KeyMetadata.KeyState).toBe('PendingImport');
    const refused = cli(['ec2', 'attach-volume', '--volume-id', vol], at(2));
    expect(refused.code).toBe(254);
    expect(refused.stderr).toContain('KMSInvalidStateException');
    expect(refused.stderr).toContain('is pending import');

    // 4 (before 3, while the key still waits). Other material is refused.
    const other = path.join(dir, 'other.bin');
    execFileSync('openssl', ['rand', '-out', other, '32']);
    const wrong = wrapAndImport(other, ['--expiration-model', 'KEY_MATERIAL_DOES_NOT_EXPIRE'], at(2));
    expect(wrong.code).toBe(254);
    expect(wrong.stderr).toContain('IncorrectKeyMaterialException');

    // 3. The same material again: attach works and the data is intact.
    expect(wrapAndImport(material, ['--expiration-model', 'KEY_MATERIAL_DOES_NOT_EXPIRE'], at(2)).code).toBe(0);
    a = cli(['ec2', 'attach-volume', '--volume-id', vol], at(2));
    expect(a.code, a.stderr).toBe(0);
    const back = Buffer.alloc(data.length);
    const rfd = fs.openSync(a.json.Device, 'r');
    fs.readSync(rfd, back, 0, back.length, 5 << 20);
    fs.closeSync(rfd);
    expect(back.equals(data)).toBe(true);
    expect(cli(['ec2', 'detach-volume', '--volume-id', vol], at(2)).code).toBe(0);
  });
});
