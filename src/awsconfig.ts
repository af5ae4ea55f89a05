/**
 * The AWS config file (~/.aws/config) read as botocore reads it
 * (botocore/configloader.py over Python's configparser.RawConfigParser with
 * its defaults), so kmsvol and the user's AWS tools find the same region:
 *
 * - a line whose first non-blank character is `#` or `;` is a comment; there
 *   are no inline comments (`region = x # y` is the value `x # y`);
 * - `[name]` opens a section (the name is everything up to the last `]`);
 *   `[DEFAULT]` holds values every section inherits;
 * - an option is `name = value` or `name : value`, split at the first `=` or
 *   `:`; names are case-insensitive (`Region`), names and values trimmed;
 * - a line indented deeper than its option's line continues that value
 *   (a new line of it), and so do blank lines within it; trailing blank
 *   lines are dropped;
 * - a value that starts with a new line (`s3 =` then indented lines) is a
 *   nested block: a setting of its own, never the profile's;
 * - `[default]` is the profile "default", `[profile NAME]` the profile NAME
 *   (NAME as shlex splits it); when a section or an option in one section
 *   comes twice, configparser refuses the file, and so do we (undefined).
 */

type Section = Map<string, string[]>;

/** Python's whitespace (str.isspace, what str.strip removes); JavaScript's trim differs (it removes U+FEFF, keeps U+001C-U+001F). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: Python's whitespace includes U+001C-U+001F (the separators).
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const strip = (s: string) => s.replace(new RegExp(`^${PY_SPACE.source}+|${PY_SPACE.source}+$`, 'g'), '');
const stripEnd = (s: string) => s.replace(new RegExp(`${PY_SPACE.source}+$`), '');

/** The sections of the file, each option's lines; undefined when configparser would refuse the file. */
export function parseConfig(text: string): { sections: Map<string, Section>; defaults: Section } | undefined {
  const sections = new Map<string, Section>();
  const defaults: Section = new Map();
  const seen = new Set<string>();
  let current: Section | undefined;
  let sectionName = '';
  let option: string | undefined;
  let indent = Number.POSITIVE_INFINITY;
  for (const line of text.split(/\r\n|\n|\r/)) {
    const stripped = strip(line);
    if (stripped.startsWith('#') || stripped.startsWith(';')) continue;
    if (!stripped) {
      // A blank line inside a value is part of it (configparser's empty_lines_in_values).
      if (current && option) current.get(option)?.push('');
      continue;
    }
    const level = line.length - line.replace(new RegExp(`^${PY_SPACE.source}+`), '').length;
    if (current && option && level > indent) {
      current.get(option)!.push(stripped);
      continue;
    }
    indent = level;
    const header = /^\[(.+)\]/.exec(stripped);
    if (header) {
      sectionName = header[1]!;
      if (seen.has(sectionName)) return undefined;
      if (sectionName === 'DEFAULT') current = defaults;
      else {
        seen.add(sectionName);
        current = new Map();
        sections.set(sectionName, current);
      }
      option = undefined;
      continue;
    }
    if (!current) return undefined;
    const kv = /^(.*?)\s*[=:]\s*(.*)$/.exec(stripped);
    if (!kv?.[1]) return undefined;
    option = stripEnd(kv[1]).toLowerCase();
    const key = `${sectionName}\0${option}`;
    if (seen.has(key)) return undefined;
    seen.add(key);
    current.set(option, [strip(kv[2]!)]);
  }
  return { sections, defaults };
}

/** shlex.split (POSIX mode, no comments) for a section name: words split on blanks, quotes removed; undefined for an unclosed quote. */
function words(s: string): string[] | undefined {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (quote === '"' && c === '\\' && i + 1 < s.length && '"\\$`\n'.includes(s[i + 1]!)) word += s[++i];
      else word += c;
      continue;
    }
    if (PY_SPACE.test(c)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < s.length) word += s[++i];
    else word += c;
  }
  if (quote) return undefined;
  if (inWord) out.push(word);
  return out;
}

/** The value of `name` in `profile` as botocore reads it (a nested block is not a value), or undefined. */
export function profileSetting(text: string, profile: string, name: string): string | undefined {
  const parsed = parseConfig(text);
  if (!parsed) return undefined;
  let found: Section | undefined;
  for (const [section, options] of parsed.sections) {
    if (section === 'default' && profile === 'default') found = options;
    else if (section.startsWith('profile')) {
      const parts = words(section);
      if (parts?.length === 2 && parts[1] === profile) found = options;
    }
  }
  if (!found) return undefined;
  const lines = found.get(name) ?? parsed.defaults.get(name);
  if (!lines) return undefined;
  const value = stripEnd(lines.join('\n'));
  return value.startsWith('\n') || value === '' ? undefined : value;
}
