import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kms } from '../../src/kms/kms.js';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

function worker(home: string, tag: string, rounds: number): Promise<{ made: string[]; failures: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/kms-worker.ts'), home, tag, String(rounds)], { cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve({ ...JSON.parse(out), stderr: err }) : reject(new Error(`worker ${tag} exited ${code}: ${err}`))));
  });
}

describe('concurrency', () => {
  it('8 processes x 200 CreateKey + CreateAlias + GenerateDataKey on one home: nothing lost, never "database is locked"', async () => {
    const home = tempHome();
    Kms.open({ home }).close(); // create the store first, as `kmsvol` would on first use
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => worker(home, `p${i}`, 200)));
    for (const r of results) {
      expect(r.stderr).not.toMatch(/locked|busy/i);
      expect(r.failures).toBe(0);
      expect(r.made).toHaveLength(200);
    }
    const kms = Kms.open({ home, audit: false });
    try {
      const keys = new Set<string>();
      let marker: string | undefined;
      do {
        const page = kms.invoke('ListKeys', { Limit: 1000, ...(marker ? { Marker: marker } : {}) });
        for (const k of page.Keys) keys.add(k.KeyId);
        marker = page.NextMarker;
      } while (marker);
      expect(keys.size).toBe(1600);
      for (const r of results) for (const id of r.made) expect(keys.has(id)).toBe(true);
      const aliases = kms.ctx.store.listAliases(kms.region);
      expect(aliases).toHaveLength(1600);
    } finally {
      kms.close();
    }
  });
});
