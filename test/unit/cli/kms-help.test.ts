import { describe, expect, it } from 'vitest';
import { kmsCommand } from '../../../src/cli/kms.js';
import { firstSentence } from '../../../src/cli/kms-help.js';

/** `kmsvol kms … --help` describes every command and every option, in the words of AWS's model documentation. */
describe('kmsvol kms --help', () => {
  it('every operation has its description and every option one', () => {
    const kms = kmsCommand(['--help']);
    const bare: string[] = [];
    for (const cmd of kms.commands) {
      if (!cmd.description() || /^KMS [A-Z]/.test(cmd.description())) bare.push(cmd.name());
      for (const o of cmd.options) if (!o.description) bare.push(`${cmd.name()} ${o.long}`);
    }
    expect(kms.commands.length).toBeGreaterThanOrEqual(54);
    expect(bare).toEqual([]);
    const encrypt = kms.commands.find((c) => c.name() === 'encrypt')!;
    expect(encrypt.description()).toBe('Encrypts plaintext of up to 4,096 bytes using a KMS key.');
    expect(encrypt.options.find((o) => o.long === '--key-id')!.description).toBe('Identifies the KMS key to use in the encryption operation. (required)');
  });

  it('an ordinary call reads no documentation', () => {
    const encrypt = kmsCommand(['encrypt', '--key-id', 'k']).commands.find((c) => c.name() === 'encrypt')!;
    expect(encrypt.description()).toBe('KMS Encrypt');
  });

  it('the first sentence, as plain text', () => {
    expect(firstSentence(' * <p>Creates a <code>KeyId</code>. More.</p>\n *  x')).toBe('Creates a KeyId.');
    expect(firstSentence(' * <p>Uses 1.5 and e.g. <a>this</a>. Then</p>')).toBe('Uses 1.5 and e.g. this.');
  });
});
