import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

describe('seed 003: the KMS session replays with aws replaced by kmsvol', () => {
  it('create-key, alias, generate-data-key, decrypt, update-alias, re-encrypt, disable-key', () => {
    const home = tempHome();
    const k1 = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    expect(k1).toMatch(/^[0-9a-f-]{36}$/);
    expect(kmsvol(home, ['kms', 'create-alias', '--alias-name', 'alias/my-key', '--target-key-id', k1]).code).toBe(0);

    const aliases = kmsvol(home, ['kms', 'list-aliases']).json;
    expect(aliases.Aliases[0]).toMatchObject({ AliasName: 'alias/my-key', AliasArn: 'arn:aws:kms:us-east-1:000000000000:alias/my-key', TargetKeyId: k1 });
    expect(aliases.Aliases[0].CreationDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);

    const gdk = kmsvol(home, ['kms', 'generate-data-key', '--key-id', 'alias/my-key', '--key-spec', 'AES_256']).json;
    expect(gdk.KeyId).toBe(`arn:aws:kms:us-east-1:000000000000:key/${k1}`);
    expect(Buffer.from(gdk.Plaintext, 'base64')).toHaveLength(32);

    const dec = kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', gdk.CiphertextBlob]).json;
    expect(dec).toEqual({ KeyId: gdk.KeyId, Plaintext: gdk.Plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', KeyMaterialId: gdk.KeyMaterialId });

    const k2 = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const upd = kmsvol(home, ['kms', 'update-alias', '--alias-name', 'alias/my-key', '--target-key-id', k2]);
    expect(upd.code).toBe(0);
    expect(upd.stdout).toBe('');
    expect(kmsvol(home, ['kms', 'list-aliases']).json.Aliases[0].TargetKeyId).toBe(k2);

    const re = kmsvol(home, ['kms', 're-encrypt', '--ciphertext-blob', gdk.CiphertextBlob, '--destination-key-id', 'alias/my-key']).json;
    expect(re).toMatchObject({
      SourceKeyId: `arn:aws:kms:us-east-1:000000000000:key/${k1}`,
      KeyId: `arn:aws:kms:us-east-1:000000000000:key/${k2}`,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });

    expect(kmsvol(home, ['kms', 'disable-key', '--key-id', k1]).code).toBe(0);
    const fail = kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', gdk.CiphertextBlob]);
    expect(fail.code).toBe(254);
    expect(fail.stderr.trim()).toBe(
      `An error occurred (DisabledException) when calling the Decrypt operation: arn:aws:kms:us-east-1:000000000000:key/${k1} is disabled.`,
    );
    const ok = kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', re.CiphertextBlob]).json;
    expect(ok.Plaintext).toBe(gdk.Plaintext);
    expect(ok.KeyId).toBe(`arn:aws:kms:us-east-1:000000000000:key/${k2}`);
  });
});

describe('CLI arguments and output', () => {
  it('fileb://, file://, k=v contexts, JSON contexts, --output text and --query', () => {
    const home = tempHome();
    const key = kmsvol(home, ['kms', 'create-key', '--description', 'cli', '--tags', 'TagKey=a,TagValue=1', 'TagKey=b,TagValue=2']).json.KeyMetadata.KeyId;
    const plain = path.join(home, 'plain.bin');
    fs.writeFileSync(plain, Buffer.from([0, 1, 2, 255]));
    const enc = kmsvol(home, [
      'kms',
      'encrypt',
      '--key-id',
      key,
      '--plaintext',
      `fileb://${plain}`,
      '--encryption-context',
      'purpose=test,app=kmsvol',
      '--query',
      'CiphertextBlob',
      '--output',
      'text',
    ]);
    expect(enc.code).toBe(0);
    const blobFile = path.join(home, 'blob.bin');
    fs.writeFileSync(blobFile, Buffer.from(enc.stdout.trim(), 'base64'));
    const ctxFile = path.join(home, 'ctx.json');
    fs.writeFileSync(ctxFile, '{"app":"kmsvol","purpose":"test"}');
    const dec = kmsvol(home, [
      'kms',
      'decrypt',
      '--ciphertext-blob',
      `fileb://${blobFile}`,
      '--encryption-context',
      `file://${ctxFile}`,
      '--output',
      'text',
      '--query',
      'Plaintext',
    ]);
    expect(Buffer.from(dec.stdout.trim(), 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
    const wrongCtx = kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--encryption-context', '{"app":"other","purpose":"test"}']);
    expect(wrongCtx.code).toBe(254);
    expect(wrongCtx.stderr).toContain('(InvalidCiphertextException)');
    // Paginated as the AWS CLI does (the full result has no Truncated); one page as the service answers it.
    const tags = kmsvol(home, ['kms', 'list-resource-tags', '--key-id', key, '--output', 'text']);
    expect(tags.stdout).toBe('TAGS\ta\t1\nTAGS\tb\t2\n');
    const page = kmsvol(home, ['kms', 'list-resource-tags', '--key-id', key, '--output', 'text', '--no-paginate']);
    expect(page.stdout).toBe('False\nTAGS\ta\t1\nTAGS\tb\t2\n');
  });

  it('usage errors exit 252 and service errors 254', () => {
    const home = tempHome();
    const missing = kmsvol(home, ['kms', 'encrypt', '--plaintext', 'aGk=']);
    expect(missing.code).toBe(252);
    expect(missing.stderr).toContain('the following arguments are required: --key-id');
    expect(kmsvol(home, ['kms', 'no-such-op']).code).toBe(252);
    expect(kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', 'fileb:///nonexistent/file']).code).toBe(252);
    expect(kmsvol(home, ['kms', 'decrypt', '--ciphertext-blob', '!!notbase64']).code).toBe(252);
    const nf = kmsvol(home, ['kms', 'describe-key', '--key-id', 'alias/nope']);
    expect(nf.code).toBe(254);
    expect(nf.stderr).toContain(
      'An error occurred (NotFoundException) when calling the DescribeKey operation: Alias arn:aws:kms:us-east-1:000000000000:alias/nope is not found.',
    );
  });

  it('KMSVOL_NOW moves the clock across a deletion window', () => {
    const home = tempHome();
    const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text'], { KMSVOL_NOW: '2030-01-01T00:00:00Z' }).stdout.trim();
    const s = kmsvol(home, ['kms', 'schedule-key-deletion', '--key-id', key, '--pending-window-in-days', '7'], { KMSVOL_NOW: '2030-01-01T00:00:00Z' });
    expect(s.json.DeletionDate).toBe('2030-01-08T00:00:00.000000+00:00');
    expect(kmsvol(home, ['kms', 'describe-key', '--key-id', key], { KMSVOL_NOW: '2030-01-07T23:00:00Z' }).json.KeyMetadata.KeyState).toBe('PendingDeletion');
    const gone = kmsvol(home, ['kms', 'describe-key', '--key-id', key], { KMSVOL_NOW: '2030-01-08T00:00:00Z' });
    expect(gone.code).toBe(254);
    expect(gone.stderr).toContain('(NotFoundException)');
    expect(kmsvol(home, ['kms', 'describe-key', '--key-id', key], { KMSVOL_NOW: 'yesterday' }).code).toBe(255);
  });

  it('kmsvol audit shows the calls', () => {
    const home = tempHome();
    kmsvol(home, ['kms', 'create-key']);
    kmsvol(home, ['kms', 'describe-key', '--key-id', 'alias/missing']);
    const events = kmsvol(home, ['audit']).json.Events;
    expect(events.map((e: { eventName: string }) => e.eventName)).toEqual(['CreateKey', 'DescribeKey']);
    expect(events[1].errorCode).toBe('NotFoundException');
    expect(kmsvol(home, ['audit', '--event-name', 'CreateKey', '--max-results', '1']).json.Events).toHaveLength(1);
  });
});
