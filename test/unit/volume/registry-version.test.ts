import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../../src/kms/schema.js';
import { KmsStore } from '../../../src/kms/store.js';
import { BLOCK_SIZE, blockHash, blockPath } from '../../../src/volume/blocks.js';
import { REGISTRY_VERSION, Registry } from '../../../src/volume/registry.js';
import { ROOT } from '../../helpers/cli.js';
import { tempHome } from '../../helpers/home.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 68 ms (test/helpers/timeouts.ts).
fileTimeout(340);

/** test/fixtures/home-v0: a home made by kmsvol before the registry carried a schema version (scripts/make-fixture-home-v0.ts). */
const FIXTURE = path.join(ROOT, 'test/fixtures/home-v0');
const meta = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'home.json'), 'utf8')) as { volumeId: string; snapshotId: string; keyId: string };

function copyOfFixture(): string {
  const home = tempHome('kmsvol-home-v0-');
  for (const f of ['ec2.db', 'kms.db', 'root.key']) {
    fs.copyFileSync(path.join(FIXTURE, f), path.join(home, f));
    fs.chmodSync(path.join(home, f), 0o600);
  }
  return home;
}

/** Set a database's user_version behind kmsvol's back, as a newer kmsvol would have left it. */
function setUserVersion(file: string, v: number): void {
  const db = new Database(file);
  db.pragma(`user_version = ${v}`);
  db.close();
}

/** Today's attach claims a volume, then writes every column of an attachment: the migrated table must take them all. */
function attachmentRoundTrips(r: Registry, volumeId: string): void {
  const claim = {
    volume_id: volumeId,
    volume_file: '',
    mount_dir: '/m',
    loop_device: null,
    attach_time: 1,
    pid: 1,
    state: 'attaching',
    grant_token: null,
  } as const;
  expect(r.write(() => r.claimAttachment(claim))).toBe(true);
  expect(r.write(() => r.claimAttachment(claim))).toBe(false);
  r.write(() =>
    r.putAttachment({
      volume_id: volumeId,
      volume_file: '/d',
      mount_dir: '/m',
      loop_device: null,
      attach_time: 1,
      pid: 1,
      state: 'attached',
      grant_token: 'g',
      device_name: '/dev/sdf',
      served_dev: 2,
      served_ino: 3,
      served_mnt: 4,
    }),
  );
  expect(r.getAttachment(volumeId)).toMatchObject({
    volume_file: '/d',
    grant_token: 'g',
    device_name: '/dev/sdf',
    served_dev: 2,
    served_ino: 3,
    served_mnt: 4,
  });
}

describe('the volume registry carries its schema version (PRAGMA user_version)', () => {
  it('a new registry is made at the current version', () => {
    const r = new Registry(path.join(tempHome(), 'ec2.db'));
    expect(r.schemaVersion()).toBe(REGISTRY_VERSION);
    r.close();
  });

  it("a registry made by yesterday's kmsvol (fixture home-v0, version 0) is migrated, and everything in it is kept", () => {
    const file = path.join(copyOfFixture(), 'ec2.db');
    const r = new Registry(file);
    expect(r.schemaVersion()).toBe(REGISTRY_VERSION);
    const v = r.getVolume(meta.volumeId)!;
    expect({ size: v.size, state: v.state, encrypted: v.encrypted, volume_type: v.volume_type }).toEqual({
      size: 2,
      state: 'available',
      encrypted: 1,
      volume_type: 'gp3',
    });
    expect(r.getSnapshot(meta.snapshotId)).toMatchObject({ volume_id: meta.volumeId, state: 'completed', description: 'fixture v0' });
    expect(r.tagsOf(meta.volumeId)).toEqual([{ resource_id: meta.volumeId, key: 'Name', value: 'fixture-v0' }]);
    expect(r.getModification(meta.volumeId)).toMatchObject({ state: 'completed', original_size: 1, target_size: 2 });
    expect(r.getSetting('ebs_encryption_by_default')).toBe('true');
    attachmentRoundTrips(r, meta.volumeId);
    r.close();
    // Opened again, it is not migrated twice.
    const again = new Registry(file);
    expect(again.schemaVersion()).toBe(REGISTRY_VERSION);
    again.close();
  });

  it('the oldest registry kept (fixture volume-v1, before grants: attachments without their later columns) is migrated too', () => {
    const home = tempHome('kmsvol-volume-v1-');
    const file = path.join(home, 'ec2.db');
    fs.copyFileSync(path.join(ROOT, 'test/fixtures/volume-v1/ec2.db'), file);
    fs.chmodSync(file, 0o600);
    const { volumeId } = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/volume-v1/image.json'), 'utf8')) as { volumeId: string };
    const r = new Registry(file);
    expect(r.schemaVersion()).toBe(REGISTRY_VERSION);
    expect(r.getVolume(volumeId)?.state).toBe('available');
    attachmentRoundTrips(r, volumeId);
    r.close();
  });

  it('a whole-image snapshot of a version-2 registry becomes a block map: data blocks stored once, holes and zero blocks not, the image file removed', () => {
    const home = copyOfFixture();
    const file = path.join(home, 'ec2.db');
    fs.mkdirSync(path.join(home, 'snapshots'), { mode: 0o700 });
    const image = path.join(home, 'snapshots', 'snap-0123456789abcdef0.img');
    const fd = fs.openSync(image, 'wx', 0o600);
    const block = Buffer.alloc(BLOCK_SIZE, 7);
    for (const i of [0, 3, 9]) fs.writeSync(fd, block, 0, BLOCK_SIZE, i * BLOCK_SIZE); // 9 and 0 alike: stored once
    fs.writeSync(fd, Buffer.alloc(BLOCK_SIZE), 0, BLOCK_SIZE, 5 * BLOCK_SIZE); // written zeros: not stored
    fs.writeSync(fd, Buffer.from('x'), 0, 1, 4 * BLOCK_SIZE + 100);
    fs.ftruncateSync(fd, 1024 ** 3);
    fs.closeSync(fd);
    const db = new Database(file);
    db.prepare(
      "INSERT INTO snapshots (snapshot_id, volume_id, state, progress, start_time, encrypted, kms_key_id, volume_size, description, image) VALUES ('snap-0123456789abcdef0', 'vol-0123456789abcdef0', 'completed', '100%', 1, 0, NULL, 1, '', 'snapshots/snap-0123456789abcdef0.img')",
    ).run();
    db.close();
    const r = new Registry(file);
    expect(r.blockMap('snap-0123456789abcdef0').map((b) => b.block_index)).toEqual([0, 3, 4, 9]);
    expect(r.getSnapshot('snap-0123456789abcdef0')).toMatchObject({ image: '', header: null, payload_offset: 0 });
    expect(fs.existsSync(image)).toBe(false);
    const files = fs.readdirSync(path.join(home, 'blocks'), { recursive: true }).filter((f) => /[0-9a-f]{64}$/.test(String(f)));
    expect(files.length).toBe(2);
    expect(fs.statSync(blockPath(home, blockHash(block))).mode & 0o777).toBe(0o600);
    r.close();
  });

  it('Precondition: a registry from a newer kmsvol is refused, naming its version and what to do, and is left as it was', () => {
    const file = path.join(copyOfFixture(), 'ec2.db');
    setUserVersion(file, REGISTRY_VERSION + 1);
    const before = fs.readFileSync(file);
    expect(() => new Registry(file)).toThrow(
      `has schema version ${REGISTRY_VERSION + 1}; this kmsvol reads versions up to ${REGISTRY_VERSION}. A newer kmsvol wrote it: use that release (or a later one) with this home, or another KMSVOL_HOME.`,
    );
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});

describe('the KMS store carries its schema version (meta schema_version)', () => {
  it("the fixture's store (version 3) opens, migrated to this version, with its key", () => {
    const store = new KmsStore(path.join(copyOfFixture(), 'kms.db'));
    expect(store.getMeta('schema_version')).toBe(SCHEMA_VERSION);
    expect(store.listKeys('local').map((k) => k.key_id)).toContain(meta.keyId);
    store.close();
  });

  it('Precondition: a store from a newer kmsvol is refused, naming its version and what to do, and is left as it was', () => {
    const file = path.join(copyOfFixture(), 'kms.db');
    // A newer schema, which (say) has no key_last_usage table any more: this kmsvol must not put its own back.
    const db = new Database(file);
    db.exec("UPDATE meta SET v = '9' WHERE k = 'schema_version'; DROP TABLE key_last_usage;");
    db.close();
    const before = fs.readFileSync(file);
    expect(() => new KmsStore(file)).toThrow(
      `has schema version 9; this kmsvol reads version ${SCHEMA_VERSION}. A newer kmsvol wrote it: use that release (or a later one) with this home, or another KMSVOL_HOME.`,
    );
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});
