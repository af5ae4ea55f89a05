// Made test/fixtures/home-v0 once, with the code of main at 599aced (kept for the record; tests never rerun it):
//   npx tsx scripts/make-fixture-home-v0.ts
// A home as kmsvol wrote it before the volume registry carried a schema version (PRAGMA user_version 0):
// a key, an encrypted volume with a tag, a snapshot of it, a finished modification and an account setting.
// Only the databases and the root key are kept; the image is not (test/unit/volume/registry-version.test.ts
// opens the registry, it attaches nothing).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const out = path.resolve('test/fixtures/home-v0');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-fixture-'));
const kv = (...a: string[]) => execFileSync(process.execPath, ['bin/kmsvol.js', ...a], { env: { ...process.env, KMSVOL_HOME: home }, encoding: 'utf8' }).trim();
const key = kv('kms', 'create-key', '--description', 'fixture home v0', '--query', 'KeyMetadata.KeyId', '--output', 'text');
const vol = kv('ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text');
kv('ec2', 'create-tags', '--resources', vol, '--tags', 'Key=Name,Value=fixture-v0');
const snap = kv('ec2', 'create-snapshot', '--volume-id', vol, '--description', 'fixture v0', '--query', 'SnapshotId', '--output', 'text');
kv('ec2', 'modify-volume', '--volume-id', vol, '--size', '2');
kv('ec2', 'enable-ebs-encryption-by-default');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
// Every kmsvol process closes its databases, which checkpoints the WAL: the .db files are complete.
for (const f of ['kms.db', 'root.key', 'ec2.db']) fs.copyFileSync(path.join(home, f), path.join(out, f));
fs.writeFileSync(path.join(out, 'home.json'), `${JSON.stringify({ volumeId: vol, snapshotId: snap, keyId: key }, null, 2)}\n`);
fs.rmSync(home, { recursive: true, force: true });
console.log(`fixture: ${vol}, ${snap} under ${key}`);
