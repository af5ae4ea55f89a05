import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { ManualClock } from '../clock.js';
import { isServiceError } from '../errors.js';
import { Kms } from '../kms/kms.js';

/**
 * `kmsvol demo`: the seed story end to end on the embedded KMS, in a temporary
 * home that is removed afterwards, even on Ctrl-C.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('Run the end-to-end story of the seeds on the embedded KMS, in a temporary home')
    .option('--keep', 'keep the temporary home for inspection')
    .action(async (opts: { keep?: boolean }) => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-demo-'));
      const cleanup = () => {
        if (!opts.keep) fs.rmSync(home, { recursive: true, force: true });
      };
      const onSignal = () => {
        cleanup();
        process.exit(130);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await runKmsStory(home);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        cleanup();
      }
    });
}

function step(n: number, what: string): void {
  process.stdout.write(`\n[${n}] ${what}\n`);
}

function show(line: string): void {
  process.stdout.write(`    ${line}\n`);
}

function expectFailure(fn: () => unknown, name: string): string {
  try {
    fn();
  } catch (e) {
    if (isServiceError(e, name)) return `${e.name}: ${e.message}`;
    throw e;
  }
  throw new Error(`expected ${name}, but the call succeeded`);
}

/** Seed 003's KMS story: alias as manual rotation, ReEncrypt, disable, the deletion window. */
async function runKmsStory(home: string): Promise<void> {
  const clock = new ManualClock(new Date());
  const kms = Kms.open({ home, clock });
  try {
    process.stdout.write(`kmsvol demo — temporary home ${home}\n`);
    step(1, 'Create a customer managed key and the alias alias/my-key');
    const k1 = kms.invoke('CreateKey', { Description: 'demo key 1' }).KeyMetadata;
    kms.invoke('CreateAlias', { AliasName: 'alias/my-key', TargetKeyId: k1.KeyId });
    show(`key ${k1.Arn}`);

    step(2, 'GenerateDataKey under alias/my-key, then Decrypt the wrapped copy');
    const dk = kms.invoke('GenerateDataKey', { KeyId: 'alias/my-key', KeySpec: 'AES_256', EncryptionContext: { purpose: 'demo' } });
    const back = kms.invoke('Decrypt', { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { purpose: 'demo' } });
    show(`data key: 32 bytes, wrapped blob ${dk.CiphertextBlob.length} bytes; Decrypt returns the same key: ${back.Plaintext.equals(dk.Plaintext)}`);
    dk.Plaintext.fill(0);
    back.Plaintext.fill(0);

    step(3, 'Manual rotation: a second key, and UpdateAlias points alias/my-key at it');
    const k2 = kms.invoke('CreateKey', { Description: 'demo key 2' }).KeyMetadata;
    kms.invoke('UpdateAlias', { AliasName: 'alias/my-key', TargetKeyId: k2.KeyId });
    show(`alias/my-key -> ${kms.invoke('ListAliases', {}).Aliases[0]!.TargetKeyId}`);

    step(4, 'ReEncrypt the blob under the alias (now key 2)');
    const re = kms.invoke('ReEncrypt', { CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: { purpose: 'demo' }, DestinationKeyId: 'alias/my-key', DestinationEncryptionContext: { purpose: 'demo' } });
    show(`source ${re.SourceKeyId}\n    destination ${re.KeyId}`);

    step(5, 'Disable key 1: the old blob fails, the re-encrypted one still decrypts');
    kms.invoke('DisableKey', { KeyId: k1.KeyId });
    show(expectFailure(() => kms.invoke('Decrypt', { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { purpose: 'demo' } }), 'DisabledException'));
    const ok = kms.invoke('Decrypt', { CiphertextBlob: re.CiphertextBlob, EncryptionContext: { purpose: 'demo' } });
    show(`re-encrypted blob decrypts under ${ok.KeyId}`);
    ok.Plaintext.fill(0);

    step(6, 'Schedule deletion of key 2 with a 7-day window, then move the clock');
    kms.invoke('ScheduleKeyDeletion', { KeyId: k2.KeyId, PendingWindowInDays: 7 });
    clock.advance(6 * 86_400_000 + 23 * 3_600_000);
    show(`+6d23h: ${expectFailure(() => kms.invoke('Decrypt', { CiphertextBlob: re.CiphertextBlob, EncryptionContext: { purpose: 'demo' } }), 'KMSInvalidStateException')}`);
    kms.invoke('CancelKeyDeletion', { KeyId: k2.KeyId });
    show(`cancelled: key 2 is ${kms.invoke('DescribeKey', { KeyId: k2.KeyId }).KeyMetadata.KeyState} (a cancelled key comes back Disabled)`);
    kms.invoke('ScheduleKeyDeletion', { KeyId: k2.KeyId, PendingWindowInDays: 7 });
    clock.advance(7 * 86_400_000);
    show(`+7d: ${expectFailure(() => kms.invoke('Decrypt', { CiphertextBlob: re.CiphertextBlob, EncryptionContext: { purpose: 'demo' } }), 'NotFoundException')}`);

    process.stdout.write('\nDone. Encrypted volumes (attach, detach, reattach) are not in this release yet; see the README status.\n');
  } finally {
    kms.close();
  }
}
