import { readPrivate } from './home.js';

/** Read a JSON-lines log (the audit and event logs); a missing file is an empty log. */
export function readJsonLines<T>(file: string): T[] {
  const data = readPrivate(file);
  if (!data) return [];
  return data
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}
