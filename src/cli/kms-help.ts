import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * `kmsvol kms <operation> --help` in AWS's words: the first sentence of each
 * operation's and each request member's documentation, read from the model
 * documentation that @aws-sdk/client-kms ships (dist-types). Read only when
 * help is asked for, so an ordinary call pays nothing for it.
 */
export interface KmsHelp {
  operation(op: string): string | undefined;
  member(op: string, member: string): string | undefined;
}

/** The first sentence of a doc comment, as plain text. */
export function firstSentence(doc: string): string {
  const text = doc
    .replace(/^\s*\*\s?/gm, ' ')
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
  // A sentence ends at a period before a capital letter or the end, not in "e.g." or "i.e.".
  const end = /(?<!\b(?:e\.g|i\.e))\.(?=\s+[A-Z]|$)/.exec(text);
  return end ? text.slice(0, end.index + 1) : text;
}

function typesDir(): string | undefined {
  try {
    return path.join(path.dirname(createRequire(import.meta.url).resolve('@aws-sdk/client-kms')), '../dist-types');
  } catch {
    return undefined;
  }
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function loadKmsHelp(): KmsHelp {
  const dir = typesDir();
  const members = new Map<string, string>();
  if (dir) {
    const models = fs.existsSync(path.join(dir, 'models'))
      ? fs
          .readdirSync(path.join(dir, 'models'))
          .filter((f) => f.endsWith('.d.ts'))
          .map((f) => read(path.join(dir, 'models', f)))
          .join('\n')
      : '';
    for (const m of models.matchAll(/export interface (\w+)Request \{([\s\S]*?)\n\}/g))
      for (const d of m[2]!.matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s*(\w+)\??:/g)) members.set(`${m[1]}.${d[2]}`, firstSentence(d[1]!));
  }
  return {
    operation(op) {
      if (!dir) return undefined;
      const src = read(path.join(dir, 'commands', `${op}Command.d.ts`));
      const m = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export declare class ${op}Command\\b`).exec(src);
      return m ? firstSentence(m[1]!.replace(/@(public|example|see)[\s\S]*$/, '')) : undefined;
    },
    member: (op, member) => members.get(`${op}.${member}`),
  };
}
