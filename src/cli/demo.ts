import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { Kmsvol } from '../api.js';
import { RootNeeded } from './errors.js';

/**
 * `kmsvol demo` (`npm start`): the seed story end to end on the embedded KMS,
 * in a temporary home that is removed afterwards, even on Ctrl-C.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('Run the seed story end to end (key, encrypted volume, ext4, disable, reattach) in a temporary home')
    .option('--keep', 'keep the temporary home for inspection')
    .action(async (opts: { keep?: boolean }) => {
      // Precondition: root, for the FUSE mount and the loop device the story attaches; said in one line before anything is made.
      if (process.geteuid?.() !== 0)
        throw new RootNeeded('kmsvol demo needs root: it attaches a volume through FUSE and a loop device. Run it as root (sudo npm start).');
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-demo-'));
      const story = new Story(root);
      const onSignal = () => {
        process.stdout.write('\ninterrupted: cleaning up\n');
        void story.cleanup(!opts.keep).finally(() => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await story.run();
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await story.cleanup(!opts.keep);
      }
    });
}

class Story {
  private readonly kv: Kmsvol;
  private readonly mnt: string;
  private volumeId = '';
  private n = 0;

  constructor(readonly root: string) {
    this.kv = Kmsvol.open({ home: root });
    this.mnt = path.join(root, 'mnt');
  }

  private get kms() {
    return this.kv.kms;
  }

  private step(what: string): void {
    process.stdout.write(`\n[${++this.n}] ${what}\n`);
  }

  private show(line: string): void {
    process.stdout.write(`    ${line}\n`);
  }

  private async attach(): Promise<string> {
    const a = await this.kv.attachVolume(this.volumeId, { loop: true });
    this.show(`attached: ${a.Device} as ${a.LoopDevice}`);
    return a.LoopDevice!;
  }

  /** The key's grants: while attached, the card's own, for Decrypt of this volume's data key only. */
  private showGrants(keyId: string): void {
    const grants = this.kms.invoke('ListGrants', { KeyId: keyId }).Grants;
    if (!grants.length) this.show('grants on the key: none');
    for (const g of grants) this.show(`grant ${g.Name}: ${g.GranteePrincipal} may ${g.Operations.join(', ')} with ${JSON.stringify(g.Constraints)}`);
  }

  private async attachFails(): Promise<void> {
    try {
      await this.attach();
    } catch (e) {
      this.show(`attach failed: An error occurred (${(e as Error).name}) when calling the AttachVolume operation: ${(e as Error).message}`);
      const ev = this.kv.events().at(-1)!;
      this.show(`event: ${ev['detail-type']} ${JSON.stringify(ev.detail)}`);
      return;
    }
    throw new Error('the attach should have failed');
  }

  async run(): Promise<void> {
    process.stdout.write(`kmsvol demo: temporary home ${this.root}\n`);
    this.step('Create a customer managed key with the alias alias/my-key, and a 1 GiB encrypted volume under it');
    const key = this.kms.invoke('CreateKey', { Description: 'kmsvol demo' }).KeyMetadata;
    this.kms.invoke('CreateAlias', { AliasName: 'alias/my-key', TargetKeyId: key.KeyId });
    const vol = await this.kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: 'alias/my-key' });
    this.volumeId = vol.VolumeId;
    this.show(`key ${key.Arn}`);
    this.show(`volume ${vol.VolumeId}: ${vol.Size} GiB, Encrypted ${vol.Encrypted}, KmsKeyId ${vol.KmsKeyId}`);

    this.step('Attach it with a loop device (the card decrypts the data key through a grant made for it), make an ext4 filesystem, mount it and write a file');
    let loop = await this.attach();
    this.showGrants(key.KeyId);
    execFileSync('mkfs.ext4', ['-q', '-F', loop]);
    fs.mkdirSync(this.mnt, { recursive: true });
    execFileSync('mount', [loop, this.mnt]);
    fs.writeFileSync(path.join(this.mnt, 'hello.txt'), 'Hello from an encrypted volume\n');
    this.show(`wrote ${path.join(this.mnt, 'hello.txt')}`);

    this.step('Disable the key. The attached volume keeps working: the card holds the data key');
    this.kms.invoke('DisableKey', { KeyId: key.KeyId });
    fs.appendFileSync(path.join(this.mnt, 'hello.txt'), 'written after the key was disabled\n');
    execFileSync('sync');
    this.show(`key state ${this.kms.invoke('DescribeKey', { KeyId: key.KeyId }).KeyMetadata.KeyState}; the write succeeded`);

    this.step('Unmount and detach: the card zeroizes the data key and its grant is retired');
    execFileSync('umount', [this.mnt]);
    await this.kv.detachVolume(this.volumeId);
    this.show(`volume state ${(await this.kv.describeVolumes({ VolumeIds: [this.volumeId] })).Volumes[0]!.State}`);
    this.showGrants(key.KeyId);

    this.step('Reattach: it fails with the KMS error, and the failure is recorded as an event');
    await this.attachFails();

    this.step('Enable the key and reattach: the file is intact');
    this.kms.invoke('EnableKey', { KeyId: key.KeyId });
    loop = await this.attach();
    execFileSync('mount', [loop, this.mnt]);
    for (const line of fs.readFileSync(path.join(this.mnt, 'hello.txt'), 'utf8').trimEnd().split('\n')) this.show(`hello.txt: ${line}`);
    execFileSync('umount', [this.mnt]);

    this.step('Detach');
    await this.kv.detachVolume(this.volumeId);
    this.show('detached');

    this.step('Schedule the key for deletion (7 days) and move the clock past the window: reattach fails for good');
    const del = this.kms.invoke('ScheduleKeyDeletion', { KeyId: key.KeyId, PendingWindowInDays: 7 });
    this.show(`DeletionDate ${del.DeletionDate.toISOString()}`);
    this.kv.clock.set(del.DeletionDate.getTime() + 60_000);
    this.show(`now (KMSVOL_NOW) ${this.kv.clock.now().toISOString()}`);
    await this.attachFails();
    process.stdout.write('\nThe story is complete.\n');
  }

  async cleanup(remove: boolean): Promise<void> {
    spawnSync('umount', ['-l', this.mnt]);
    await this.kv.close().catch(() => undefined);
    if (remove) fs.rmSync(this.root, { recursive: true, force: true });
  }
}
