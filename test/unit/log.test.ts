import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED_FIELDS } from '../../src/log.js';
import { tempHome } from '../helpers/home.js';

function logged(record: object): { line: any; text: string } {
  const file = path.join(tempHome(), 'log');
  const fd = fs.openSync(file, 'w');
  const log = createLogger('test', fd);
  log.info(record, 'hello');
  log.flush();
  fs.closeSync(fd);
  const text = fs.readFileSync(file, 'utf8');
  return { line: JSON.parse(text), text };
}

describe('logs', () => {
  it('redact every field that could carry a secret, at any depth', () => {
    const { line, text } = logged({
      Plaintext: 'c2VjcmV0',
      key: 'k1',
      nested: { dataKey: 'k2', deeper: { keyMaterial: 'k3', d4: { d5: { key: 'k5deep' } } } },
      list: [{ d: { secret: 'k6inlist' } }],
      keyBytes: 64,
    });
    expect(line.Plaintext).toBe('[redacted]');
    expect(line.key).toBe('[redacted]');
    expect(line.nested.dataKey).toBe('[redacted]');
    expect(line.nested.deeper.keyMaterial).toBe('[redacted]');
    expect(line.nested.deeper.d4.d5.key).toBe('[redacted]');
    expect(line.list[0].d.secret).toBe('[redacted]');
    expect(line.keyBytes).toBe(64);
    expect(text).not.toMatch(/c2VjcmV0|k1|k2|k3|k5deep|k6inlist/);
  });

  it.each(REDACTED_FIELDS)('redacts %s at the top and four levels down', (field) => {
    const { text } = logged({ [field]: 'TOPSECRETVALUE', a: { b: { c: { d: { [field]: 'DEEPSECRETVALUE' } } } } });
    expect(text).toContain('[redacted]');
    expect(text).not.toMatch(/TOPSECRETVALUE|DEEPSECRETVALUE/);
  });

  it('redacts the AWS credentials SDKs put in objects (SecretAccessKey, secretAccessKey)', () => {
    const { text } = logged({
      credentials: { AccessKeyId: 'AKIDEXAMPLE', SecretAccessKey: 'wJalrXUtnFEMIK7MDENG' },
      client: { config: { creds: { secretAccessKey: 'bPxRfiCYEXAMPLEKEY' } } },
    });
    expect(text).toContain('AKIDEXAMPLE');
    expect(text).not.toMatch(/wJalrXUtnFEMIK7MDENG|bPxRfiCYEXAMPLEKEY/);
  });

  it('logs a Buffer as its length, never its bytes', () => {
    const { line, text } = logged({ blob: Buffer.from('BUFFERSECRET') });
    expect(line.blob).toBe('12 bytes');
    expect(text).not.toContain('BUFFERSECRET');
  });
});
