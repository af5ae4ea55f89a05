import fs from 'node:fs';
import { UsageError } from '../errors.js';

/**
 * Argument values as the AWS CLI reads them: `fileb://` (raw bytes), `file://`
 * (text), base64 blobs, `k=v,k2=v2` shorthand or JSON maps, and JSON lists.
 */
export function readParamText(value: string, name?: string): string {
  if (value.startsWith('file://')) return utf8Text(readFile(value.slice(7)), value.slice(7), name);
  if (value.startsWith('fileb://')) return readFile(value.slice(8)).toString('utf8');
  return value;
}

/**
 * A file:// parameter's text. Precondition: it is UTF-8, as the AWS CLI
 * requires (its words below); decoding with replacement would make files
 * that differ read as the same text.
 */
function utf8Text(bytes: Buffer, p: string, name: string | undefined): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new UsageError(
      `Error parsing parameter${name ? ` '--${name}'` : ''}: Unable to load paramfile (${p}), text contents could not be decoded.  If this is a binary file, please use the fileb:// prefix instead of the file:// prefix.`,
    );
  }
}

function readFile(p: string): Buffer {
  try {
    return fs.readFileSync(p);
  } catch (e) {
    throw new UsageError(
      `Error parsing parameter: Unable to load paramfile ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}`,
    );
  }
}

/**
 * A blob argument: `fileb://F` gives the file's bytes; anything else is
 * base64, or, with the AWS CLI v2's `--cli-binary-format raw-in-base64-out`,
 * the text itself (a `file://` file's bytes as they are).
 */
/**
 * A streaming blob argument (a REST body, such as `aws ebs put-snapshot-block --block-data`): the AWS CLI takes the
 * path of a file, not base64; `fileb://` is accepted too.
 */
export function parseStreamingBlob(value: string, name: string): Buffer {
  const file = value.startsWith('fileb://') ? value.slice(8) : value;
  if (!fs.existsSync(file)) throw new UsageError(`Error parsing parameter '--${name}': Blob values must be a path to a file.`);
  return readFile(file);
}

export function parseBlob(value: string, name: string, format: BinaryFormat = 'base64'): Buffer {
  if (value.startsWith('fileb://')) return readFile(value.slice(8));
  if (format === 'raw-in-base64-out') return value.startsWith('file://') ? readFile(value.slice(7)) : Buffer.from(value, 'utf8');
  const text = value.startsWith('file://') ? utf8Text(readFile(value.slice(7)), value.slice(7), name).trim() : value;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new UsageError(`Invalid base64 for --${name}. Pass base64 text, or fileb://FILE for raw bytes.`);
  }
  return Buffer.from(text, 'base64');
}

/** How blob arguments are read (the AWS CLI v2's --cli-binary-format). */
export type BinaryFormat = 'base64' | 'raw-in-base64-out';

/** A map argument: JSON `{"k":"v"}` or shorthand `k=v,k2=v2`. */
export function parseMap(value: string, name: string): Record<string, string> {
  const text = readParamText(value, name).trim();
  if (text.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`Error parsing parameter '--${name}': Invalid JSON: ${(e as Error).message}`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj) || Object.values(obj).some((v) => typeof v !== 'string')) {
      throw new UsageError(`Error parsing parameter '--${name}': expected a JSON object of strings.`);
    }
    return obj as Record<string, string>;
  }
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`Error parsing parameter '--${name}': Expected: '=', received: '${part}'. Use k=v,k2=v2 or JSON.`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** A list of structures: JSON, or shorthand items `TagKey=a,TagValue=b`. */
export function parseStructList(values: string[], name: string): Record<string, string>[] {
  if (values.length === 1 && /^\s*(\[|file:\/\/)/.test(values[0]!)) {
    try {
      const v = JSON.parse(readParamText(values[0]!, name));
      if (!Array.isArray(v)) throw new Error('expected a JSON list');
      return v;
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`Error parsing parameter '--${name}': ${(e as Error).message}`);
    }
  }
  return values.map((v) => parseMap(v, name));
}

export function parseInteger(value: string, name: string): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`Invalid value for --${name}: ${value} is not an integer.`);
  return Number(value);
}

/** A structure argument: JSON, shorthand `Member={k=v,k2=v2}` (as for grant Constraints), or flat `K=v,K2=v2`. */
export function parseStruct(value: string, name: string): Record<string, unknown> {
  const text = readParamText(value, name).trim();
  if (text.startsWith('{')) {
    try {
      const v = JSON.parse(text);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
      return v;
    } catch (e) {
      throw new UsageError(`Error parsing parameter '--${name}': ${(e as Error).message}`);
    }
  }
  // The AWS CLI's flat shorthand, `AccessKeyId=…,RawSecretAccessKey=…` (XksProxyAuthenticationCredential).
  if (/^[A-Za-z]+=[^{]/.test(text)) return parseShorthand(text, name);
  const out: Record<string, unknown> = {};
  for (const m of text.matchAll(/([A-Za-z]+)=\{([^}]*)\},?/g)) out[m[1]!] = parseMap(m[2]!, name);
  if (Object.keys(out).length === 0)
    throw new UsageError(`Error parsing parameter '--${name}': use JSON or Member={k=v,...}, e.g. EncryptionContextSubset={Department=IT}.`);
  return out;
}

/** A timestamp argument: ISO 8601 or epoch seconds, as the AWS CLI takes them. */
export function parseTimestamp(value: string, name: string): Date {
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`Invalid timestamp for --${name}: ${value}. Use ISO 8601 (2027-01-31T00:00:00Z) or epoch seconds.`);
  return new Date(ms);
}

/**
 * The AWS CLI's shorthand syntax for structures: `Key=Name,Value=web`,
 * nested `ResourceType=volume,Tags=[{Key=Name,Value=web},{Key=team,Value=blue}]`,
 * and list members that follow a key (`Name=status,Values=available,in-use`).
 */
export function parseShorthand(text: string, name: string): Record<string, unknown> {
  let i = 0;
  const fail = (what: string): never => {
    throw new UsageError(`Error parsing parameter '--${name}': ${what} at position ${i} of ${JSON.stringify(text)}. Use Key=Value,... shorthand or JSON.`);
  };
  const scalar = (): string => {
    const start = i;
    while (i < text.length && !',]}'.includes(text[i]!)) i++;
    return text.slice(start, i).trim();
  };
  const value = (): unknown => {
    if (text[i] === '[') {
      i++;
      const list: unknown[] = [];
      while (text[i] !== ']') {
        if (i >= text.length) fail("expected ']'");
        list.push(text[i] === '{' ? value() : scalar());
        if (text[i] === ',') i++;
      }
      i++;
      return list;
    }
    if (text[i] === '{') {
      i++;
      const s = struct('}');
      if (text[i] !== '}') fail("expected '}'");
      i++;
      return s;
    }
    return scalar();
  };
  const struct = (end: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    let last: string | undefined;
    while (i < text.length && text[i] !== end) {
      const eq = text.indexOf('=', i);
      const stop = [',', end].map((c) => text.indexOf(c, i)).filter((x) => x >= 0);
      const next = stop.length ? Math.min(...stop) : text.length;
      if (eq < 0 || eq > next) {
        // A bare value continues the previous member as a list.
        if (last === undefined) fail("expected '='");
        const more = scalar();
        out[last!] = [...(Array.isArray(out[last!]) ? (out[last!] as unknown[]) : [out[last!]]), more];
      } else {
        const key = text.slice(i, eq).trim();
        i = eq + 1;
        out[key] = value();
        last = key;
      }
      if (text[i] === ',') i++;
    }
    return out;
  };
  const out = struct('\u0000');
  if (i < text.length) fail('unexpected text');
  return out;
}

/** A list-of-structures argument: JSON (or file://), or one shorthand structure per value. */
export function parseShorthandList(values: string[], name: string): Record<string, unknown>[] {
  if (values.length === 1 && /^\s*(\[|file:\/\/)/.test(values[0]!)) {
    let v: unknown;
    try {
      v = JSON.parse(readParamText(values[0]!, name));
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`Error parsing parameter '--${name}': Invalid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(v)) throw new UsageError(`Error parsing parameter '--${name}': expected a JSON list.`);
    return v as Record<string, unknown>[];
  }
  return values.map((v) => parseShorthand(v, name));
}
