import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/index.js';
import { ROOT } from '../helpers/cli.js';

describe('the README example', () => {
  it('is in the README verbatim', () => {
    // The markers are whole lines of their own, so the patterns below (inside a line) cannot match them.
    const me = fs.readFileSync(path.join(ROOT, 'test/integration/readme-example.test.ts'), 'utf8');
    const body = /^ {4}\/\/ README:begin\n([\s\S]*?)^ {4}\/\/ README:end$/m.exec(me)![1]!.replace(/^ {4}/gm, '');
    expect(body).toContain('Kmsvol.open()');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /^```ts\n([\s\S]*?)^```$/m.exec(readme)![1]!;
    expect(block).toBe(`import fs from 'node:fs';\nimport { Kmsvol } from 'kmsvol';\n\n${body}`);
  });

  it('runs', async () => {
    // README:begin
    const kv = Kmsvol.open(); // a temporary home with the embedded KMS
    try {
      const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
      const vol = await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key });
      const { Device } = await kv.attachVolume(vol.VolumeId); // a real card process
      fs.writeFileSync(Device, 'hello', { flag: 'r+' });
      kv.kms.invoke('DisableKey', { KeyId: key }); // the attached volume keeps working
      await kv.detachVolume(vol.VolumeId); // the card zeroizes the key
      await expect(kv.attachVolume(vol.VolumeId)).rejects.toMatchObject({ name: 'DisabledException' });
      kv.kms.invoke('EnableKey', { KeyId: key });
      kv.kms.invoke('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
      kv.clock.advance(7 * 86_400_000); // move time past the deletion window
      await expect(kv.attachVolume(vol.VolumeId)).rejects.toMatchObject({ name: 'NotFoundException' });
    } finally {
      await kv.close(); // detaches anything left and removes the home
    }
    // README:end
  });
});
