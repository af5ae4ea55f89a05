import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { Kms } from '../../src/kms/kms.js';

/** A fresh home directory per test, removed afterwards even when the test fails. */
export function tempHome(prefix = 'kmsvol-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch {
      /* best effort */
    }
  }
});

export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

/** A KMS on a temp home with a manual clock starting at a fixed date. */
export function testKms(opts: { home?: string; start?: string } = {}): { kms: Kms; clock: ManualClock; home: string } {
  const home = opts.home ?? tempHome();
  const clock = new ManualClock(new Date(opts.start ?? '2030-01-01T00:00:00Z'));
  const kms = Kms.open({ home, clock });
  onCleanup(() => kms.close());
  return { kms, clock, home };
}

/** Run fn and return the thrown error's name (fails the test if nothing is thrown). */
export function errorName(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).name;
  }
  throw new Error('expected an error, but the call succeeded');
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
