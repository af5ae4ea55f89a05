import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { runs, SEED } from './counts.js';

/** Commands and the options they take, the raw material of malformed invocations. */
const COMMANDS: [string[], string[]][] = [
  [
    ['kms', 'create-key'],
    ['--description', '--key-usage', '--key-spec', '--origin', '--tags', '--policy', '--multi-region'],
  ],
  [
    ['kms', 'encrypt'],
    ['--key-id', '--plaintext', '--encryption-context', '--grant-tokens'],
  ],
  [
    ['kms', 'decrypt'],
    ['--ciphertext-blob', '--key-id', '--encryption-context'],
  ],
  [
    ['kms', 'generate-data-key'],
    ['--key-id', '--key-spec', '--number-of-bytes', '--encryption-context'],
  ],
  [['kms', 'describe-key'], ['--key-id']],
  [
    ['kms', 'schedule-key-deletion'],
    ['--key-id', '--pending-window-in-days'],
  ],
  [
    ['kms', 'create-alias'],
    ['--alias-name', '--target-key-id'],
  ],
  [
    ['kms', 'create-grant'],
    ['--key-id', '--grantee-principal', '--operations', '--constraints'],
  ],
  [
    ['ec2', 'create-volume'],
    ['--size', '--encrypted', '--kms-key-id', '--snapshot-id', '--volume-type'],
  ],
  [
    ['ec2', 'describe-volumes'],
    ['--volume-ids', '--filters', '--max-results'],
  ],
  [
    ['ec2', 'attach-volume'],
    ['--volume-id', '--device'],
  ],
  [
    ['ec2', 'detach-volume'],
    ['--volume-id', '--force'],
  ],
  [
    ['ec2', 'create-snapshot'],
    ['--volume-id', '--description'],
  ],
  [
    ['ec2', 'copy-snapshot'],
    ['--source-snapshot-id', '--kms-key-id', '--encrypted'],
  ],
  [['audit'], ['--max-results', '--event-name']],
  [['events'], ['--volume-id']],
];

// An argv cannot hold a NUL byte (no shell can pass one), so none is generated.
const value = fc.oneof(
  fc.string({ maxLength: 20 }).map((v) => v.replaceAll('\0', '')),
  fc.constantFrom(
    '',
    '-3',
    '0',
    '99999999999999999999',
    '1.5',
    'fileb:///nonexistent',
    'file:///dev/null',
    '{',
    '{"a":1}',
    '[]',
    'a=b,c',
    '=',
    'vol-',
    'snap-00000000000000000',
    'alias/',
    'arn:aws:kms:us-east-1:000000000000:key/x',
    '!!',
    'AAAA',
    'Zm9v',
  ),
);

const invocation = fc
  .constantFrom(...COMMANDS)
  .chain(([cmd, opts]) =>
    fc.tuple(
      fc.constant(cmd),
      fc.array(
        fc.oneof(
          fc.tuple(fc.constantFrom(...opts, '--bogus-option', '--output', '--query', '--region'), value),
          fc.tuple(fc.constantFrom(...opts), fc.constant(undefined)),
        ),
        { maxLength: 4 },
      ),
    ),
  );

function run(home: string, argv: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...argv], { env: { ...process.env, KMSVOL_HOME: home } });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.stdout.resume();
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('fuzz: malformed CLI invocations', () => {
  it(`${runs(60, 1_000)} malformed invocations: exit 0, 252 or 254, an AWS-style message, never a stack trace (seed ${SEED})`, async () => {
    const home = tempHome();
    const bad: string[] = [];
    const cases = fc.sample(invocation, { numRuns: runs(60, 1_000), seed: SEED });
    // Four at a time: each is a real process.
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async ([cmd, opts]) => {
          const argv = [...cmd, ...opts.flatMap(([o, v]) => (v === undefined ? [o] : [o, v]))];
          if (argv.includes('attach-volume') && !argv.includes('--volume-id')) return; // a valid attach needs a volume; none exists
          const r = await run(home, argv);
          const lines = r.stderr.trim().split('\n').filter(Boolean);
          const ok =
            [0, 252, 254].includes(r.code!) &&
            !/^\s+at /m.test(r.stderr) &&
            (r.code === 0 ||
              (r.code === 254
                ? lines.length === 1 && /^An error occurred \(\S+\) when calling the \w+ operation: /.test(lines[0]!)
                : /^kmsvol: error: |^error: /m.test(r.stderr)));
          if (!ok) bad.push(`${JSON.stringify(argv)} -> ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
        }),
      );
    }
    expect(bad).toEqual([]);
  }, 900_000);
});
