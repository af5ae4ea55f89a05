// Made test/fixtures/volume-v1 once (kept for the record; tests never rerun it):
//   npx tsx scripts/make-fixture-v1.ts
// A home with one 1 GiB encrypted volume holding known sector patterns.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packImage } from '../test/helpers/sparse-image.js';

const out = path.resolve('test/fixtures/volume-v1');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-fixture-'));
const kv = (...a: string[]) => execFileSync(process.execPath, ['bin/kmsvol.js', ...a], { env: { ...process.env, KMSVOL_HOME: home }, encoding: 'utf8' }).trim();
const key = kv('kms', 'create-key', '--description', 'fixture v1', '--query', 'KeyMetadata.KeyId', '--output', 'text');
kv('kms', 'create-alias', '--alias-name', 'alias/fixture-v1', '--target-key-id', key);
const vol = kv('ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text');
const dev = JSON.parse(kv('ec2', 'attach-volume', '--volume-id', vol)).Device;
const fd = fs.openSync(dev, 'r+');
for (const s of [0, 1000, 262143]) fs.writeSync(fd, Buffer.alloc(4096, `kmsvol fixture v1 sector ${s}\n`), 0, 4096, s * 4096);
fs.fsyncSync(fd);
fs.closeSync(fd);
kv('ec2', 'detach-volume', '--volume-id', vol);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
// Every kmsvol process closes its databases, which checkpoints the WAL: the .db files are complete.
for (const f of ['kms.db', 'root.key', 'ec2.db']) fs.copyFileSync(path.join(home, f), path.join(out, f));
fs.writeFileSync(
  path.join(out, 'image.json'),
  JSON.stringify({ volumeId: vol, keyId: key, sectors: [0, 1000, 262143], image: packImage(path.join(home, 'volumes', `${vol}.img`)) }),
);
fs.rmSync(home, { recursive: true, force: true });
console.log(`fixture: ${vol} under ${key}`);
