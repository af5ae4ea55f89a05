import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';

/**
 * V8 checks a code cache against its source's length only: a cache altered,
 * or made for another build of the same length, would run bytecode that is
 * not the bundle's. bin/bundle.cjs uses a cache only when it names the
 * bundle's build and its checksum holds (scripts/bundle.mjs writes both).
 * Each case: a copy of bin/ and dist/, altered; a child process loads the
 * card bundle (a bad cache may crash V8) and prints whether V8 was given the
 * cache and took it ('false': taken; 'undefined': not given).
 */
function cacheTaken(alter: (copy: string) => void): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bundle-cache-'));
  onCleanup(() => fs.rmSync(copy, { recursive: true, force: true }));
  for (const d of ['bin', 'dist']) fs.cpSync(path.join(ROOT, d), path.join(copy, d), { recursive: true, preserveTimestamps: true });
  for (const f of ['package.json', 'native', 'node_modules']) fs.symlinkSync(path.join(ROOT, f), path.join(copy, f));
  alter(copy);
  const code = `const b = require(${JSON.stringify(path.join(copy, 'bin/bundle.cjs'))}).loadBundle('card'); console.log(String(b && b.script.cachedDataRejected));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return `${r.stdout.trim()}${r.status === 0 ? '' : ` (exit ${r.status}, signal ${r.signal})`}`;
}
const keepTimes = (file: string, change: (f: string) => void) => {
  const { atime, mtime } = fs.statSync(file);
  change(file);
  fs.utimesSync(file, atime, mtime);
};

describe('the bundle’s code cache is used only when it is that build’s, intact', () => {
  it('the control: the cache the build made is taken', () => {
    expect(cacheTaken(() => {})).toBe('false');
  });

  it('a cache with one byte flipped (same length) is not given to V8', () => {
    const r = cacheTaken((c) =>
      keepTimes(path.join(c, 'dist/card/card.cjs.cache'), (f) => {
        const b = fs.readFileSync(f);
        const i = b.length - 100;
        b[i] = b[i]! ^ 0x01;
        fs.writeFileSync(f, b);
      }),
    );
    expect(r).toBe('undefined');
  });

  it('a cache of another build of the same length is not given to V8', () => {
    // Another build: the same bundle with one character changed (its length kept); the cache is this build's.
    const r = cacheTaken((c) =>
      keepTimes(path.join(c, 'dist/card/card.cjs'), (f) => {
        const s = fs.readFileSync(f, 'utf8');
        const i = s.lastIndexOf('"id":"') + 6;
        fs.writeFileSync(f, s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1));
      }),
    );
    expect(r).toBe('undefined');
  });
});
