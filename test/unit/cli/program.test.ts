import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/main.js';

const ALL = ['kms', 'ec2', 'iam', 'serve', 'events', 'demo', 'audit'];
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
});
