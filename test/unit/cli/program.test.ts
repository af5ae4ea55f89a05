import { describe, expect, it } from 'vitest';
import { kmsCommand } from '../../../src/cli/kms.js';
import { buildProgram } from '../../../src/cli/main.js';

const ALL = ['kms', 'ec2', 'ebs', 'cloudhsmv2', 'iam', 'serve', 'events', 'demo', 'audit', 'luks', 'xks-proxy'];
const names = async (args: string[]) => (await buildProgram(args)).commands.map((c) => c.name());

describe('the CLI loads only the command it runs', () => {
  it('a kms call builds only the kms command (its start never loads the card, the volumes or the demo)', async () => {
    expect(await names(['kms', 'list-keys'])).toEqual(['kms']);
    expect(await names(['--region', 'eu-west-1', 'ec2', 'attach-volume', '--volume-id', 'vol-1'])).toEqual(['ec2']);
  });

  it('every command a word of the line could name is there, so a value that looks like a command does not hide the real one', async () => {
    expect(await names(['--profile', 'ec2', 'kms', 'list-keys'])).toEqual(['kms', 'ec2']);
  });

  it('help, no command and an unknown command list every command', async () => {
    for (const args of [[], ['--help'], ['kms', '--help'], ['help'], ['nope']]) expect(await names(args)).toEqual(ALL);
  });

  it('a kms call builds only the kms operation it runs; a misspelt or missing one gets them all (for help and suggestions)', async () => {
    const kms = (args: string[]) => kmsCommand(args).commands.map((c) => c.name());
    expect(kms(['kms', 'list-keys'])).toEqual(['list-keys']);
    expect(kms(['kms', 'seed', '--file', 'x'])).toEqual(['seed']);
    const all = kms(['kms', 'list-key']);
    expect(all).toContain('list-keys');
    expect(all).toContain('serve');
    expect(all.length).toBeGreaterThan(50);
    expect(kms(['kms', 'decrypt', '--help'])).toEqual(all);
    expect((await buildProgram(['kms', 'encrypt'])).commands[0]!.commands.map((c) => c.name())).toEqual(['encrypt']);
  });
});
