import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { tempHome } from '../helpers/home.js';

describe('logs', () => {
  it('redact every field that could carry a secret, at any depth', () => {
    const file = path.join(tempHome(), 'log');
    const fd = fs.openSync(file, 'w');
    const log = createLogger('test', fd);
    log.info({ Plaintext: 'c2VjcmV0', key: 'k1', nested: { dataKey: 'k2', deeper: { keyMaterial: 'k3' } }, keyBytes: 64 }, 'hello');
    log.flush();
    fs.closeSync(fd);
    const line = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(line.Plaintext).toBe('[redacted]');
    expect(line.key).toBe('[redacted]');
    expect(line.nested.dataKey).toBe('[redacted]');
    expect(line.nested.deeper.keyMaterial).toBe('[redacted]');
    expect(line.keyBytes).toBe(64);
    expect(fs.readFileSync(file, 'utf8')).not.toMatch(/c2VjcmV0|k1|k2|k3/);
  });
});
