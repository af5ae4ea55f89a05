import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPERATIONS } from '../../../src/ec2/operations.js';
import { SUMMARIES } from '../../../src/ec2/summaries.js';
import { BIN } from '../../helpers/cli.js';

/**
 * `kmsvol ec2 <command> --help` says what the command does: the first
 * sentence of botocore's documentation of the operation (HTML stripped),
 * except where kmsvol differs, listed here with the reason.
 */
const MODEL = JSON.parse(fs.readFileSync('/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15/service-2.json', 'utf8'));
const DIFFERS: Record<string, string> = {
  CreateSnapshot: 'a snapshot is kept in the home, not in Amazon S3',
  CopySnapshot: 'a snapshot is kept in the home, not in Amazon S3',
};
const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
function firstSentence(doc: string): string {
  const text = doc
    .replace(/<[^>]+>/g, ' ')
    .replace(/&[a-z#0-9]+;/g, (e) => entities[e] ?? e)
    .replace(/\s+/g, ' ')
    .trim();
  return /^(.+?\.)(\s|$)/.exec(text)?.[1] ?? text;
}

describe('the ec2 commands’ summaries', () => {
  it("every operation's summary is botocore's first sentence, or listed with the reason it differs", () => {
    for (const op of Object.keys(OPERATIONS)) {
      const theirs = firstSentence(MODEL.operations[op].documentation);
      if (DIFFERS[op]) expect(SUMMARIES[op], op).not.toBe(theirs);
      else expect(SUMMARIES[op], op).toBe(theirs);
    }
  });

  it('--help shows it', () => {
    const r = spawnSync(process.execPath, [BIN, 'ec2', 'detach-volume', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Detaches an EBS volume from an instance.');
    expect(r.stdout).toMatch(/--wait\s+wait/);
  });
});
