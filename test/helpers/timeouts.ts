import { vi } from 'vitest';

/**
 * A test file's timeout, set at its top: at most 5 times its slowest test as
 * vitest reported it in any of several runs (`npx vitest run FILE
 * --reporter=json`, alone, beside integration tests, and in the whole
 * test/unit run, on the shared 2-core machine), instead of the config's
 * 120 s. A test of a few milliseconds can take ten times that in a loaded run
 * (a garbage collection, the first compile): its slowest run is the measure. A slower CI scales every such timeout with KMSVOL_TEST_TIME_SCALE
 * (for example 4 on a small shared runner); nothing else changes.
 */
export function fileTimeout(ms: number): void {
  const scale = Number(process.env.KMSVOL_TEST_TIME_SCALE ?? 1);
  vi.setConfig({ testTimeout: Math.ceil(ms * (Number.isFinite(scale) && scale > 0 ? scale : 1)) });
}
