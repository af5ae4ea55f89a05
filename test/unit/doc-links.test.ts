import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

/**
 * Every file the README and docs/ point to is in the repository: markdown
 * links to local files, and the Markdown files they name in passing (a
 * DESIGN.md that was never committed was cited by docs/architecture.md).
 */
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

function referencesIn(doc: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
  const refs = new Set<string>();
  for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) if (!/^[a-z]+:/.test(m[1]!)) refs.add(m[1]!);
  for (const m of text.matchAll(/(?<![\w/.-])((?:[\w.-]+\/)*[A-Za-z][\w-]*\.md)\b/g)) refs.add(m[1]!);
  return [...refs];
}

describe('the documents cite files that exist', () => {
  it('every local link and every .md named in README.md and docs/*.md resolves, from the document or the repository root', () => {
    const missing: string[] = [];
    for (const doc of DOCS)
      for (const ref of referencesIn(doc)) {
        const here = path.resolve(path.dirname(path.join(ROOT, doc)), ref);
        if (!fs.existsSync(here) && !fs.existsSync(path.join(ROOT, ref))) missing.push(`${doc}: ${ref}`);
      }
    expect(missing).toEqual([]);
  });
});
