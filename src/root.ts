import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The package's root: the nearest directory above this module holding
 * kmsvol's package.json. The module runs from src/ (tests), dist/ (tsc) or
 * dist/cli/kmsvol.cjs (the CLI bundle, where every module's import.meta.url
 * is the bundle's), so files the package ships (dist/card/main.js, the native
 * addon) are named from here, never relative to a module.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'kmsvol') return (root = dir);
    } catch {
      // no package.json here, or not readable as one: look higher
    }
    if (path.dirname(dir) === dir) throw new Error(`kmsvol's package.json is not above ${fileURLToPath(import.meta.url)}`);
  }
}
