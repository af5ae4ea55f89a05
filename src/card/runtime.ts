import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import type { Home } from '../home.js';
import { ensureDir, openPrivate } from '../home.js';
import type { Caller } from '../kms/authz.js';
import type { KmsClient } from '../kms/client/index.js';
import { createLogger } from '../log.js';
import type { FuseServer, GuardedKey } from '../native/index.js';
import { backend, lockExclusive, setNonDumpable, startFuseServer } from '../native/index.js';
import { syncFileSystem } from '../native/loop.js';
import { Ec2Errors } from '../volume/errors.js';
import { EventLog } from '../volume/events.js';
import { imageFile, volumeLockPath, volumeRunPaths } from '../volume/images.js';
import { checkImageLength, checkPayload, decodeHeader, HDR_SIZE, openImage } from '../volume/luks2.js';
import { GiB } from '../volume/offsets.js';
import type { VolumeRow } from '../volume/registry.js';
import { Registry } from '../volume/registry.js';
import type { ControlReply, ControlRequest } from './control.js';
import { FREEZE_LEASE_MS, serveControl } from './control.js';
import { Freezes } from './freeze.js';
import { cardPrincipal, viaEc2 } from './grants.js';
import { unwrapVerifiedKey } from './keys.js';
import { HeldLoop } from './loop.js';
import type { HeldDir } from './paths.js';
import { walkMountDir } from './paths.js';
import { linkDevice, unlinkDevice } from './system.js';
import { ChangeTracker } from './tracking.js';

export interface CardOptions {
  home: Home;
  volumeId: string;
  /** Directory where the decrypted volume appears as one file. */
  mountDir: string;
  loop: boolean;
  clock: Clock;
  region: string;
  account: string;
  /** The KMS to unwrap through, for the card's caller; the card closes it once the key is unwrapped. */
  kms: (caller: Partial<Caller>) => KmsClient;
  /** The grant the control plane made for this card (see card/grants.ts). */
  grantToken?: string;
  /** Track the blocks written (card/tracking.ts); false only for benchmarks (KMSVOL_CHANGE_TRACKING=0). */
  changeTracking: boolean;
}

export interface CardAttachment {
  VolumeId: string;
  Device: string;
  LoopDevice?: string;
  State: 'attached';
  AttachTime: Date;
  InstanceId: string;
  DeleteOnTermination: false;
}

export const lockPath = volumeLockPath;

/** A freeze's lease: what the request asks for, within 0.1 s .. 10 min, or FREEZE_LEASE_MS. */
function leaseOf(req: ControlRequest): number {
  const ms = Number(req.leaseMs);
  return Number.isFinite(ms) && ms >= 100 && ms <= 600_000 ? ms : FREEZE_LEASE_MS;
}
export function socketPath(home: Home, volumeId: string): string {
  return volumeRunPaths(home, volumeId).socket;
}

/**
 * A running card: holds the volume's lock and its key in guarded memory,
 * serves the decrypted volume through FUSE (and a loop device), and answers
 * detach on its control socket. `start()` runs the attach steps in this
 * order, numbered in its body: 1. the volume's exclusive lock, 2-3. KMS
 * Decrypt straight into guarded memory, 4. the FUSE mount, 5. the loop
 * device, then the control socket and the registry's attachment (the parent
 * learns of readiness when start() resolves). `stopped` resolves once it has
 * detached.
 */
export class Card {
  private key: GuardedKey | null = null;
  private fd = -1;
  private lockFd = -1;
  /** Only the card that holds the volume's lock touches its socket and run files. */
  private ownsLock = false;
  private mount: FuseServer | null = null;
  /** The loop device, held by descriptor for as long as the card serves (autoclear frees it when the card is gone). */
  private loop: HeldLoop | null = null;
  private control: ReturnType<typeof serveControl> | null = null;
  /** The blocks written since the volume's base snapshot (opened under the lock, before anything is served). */
  private changes: ChangeTracker | null = null;
  private stopping: Promise<void> | null = null;
  private resolveStopped!: () => void;
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private readonly registry: Registry;
  private readonly events: EventLog;
  private readonly log = createLogger('card');
  private readonly freezes: Freezes;

  constructor(private readonly o: CardOptions) {
    this.registry = new Registry(o.home.registryDb);
    this.events = new EventLog(o.home.eventLog, o.region, o.account);
    this.freezes = new Freezes(o.volumeId, () => ({ mount: this.mount, loop: this.loop }), this.log);
  }

  async start(): Promise<CardAttachment> {
    const { home, volumeId } = this.o;
    try {
      const v = this.registry.getVolume(volumeId);
      if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(volumeId);
      ensureDir(home.runDir);
      // 1. The exclusive lock: a second attach gets VolumeInUse.
      this.lockFd = openPrivate(lockPath(home, volumeId), 'a', true);
      if (!lockExclusive(this.lockFd)) throw Ec2Errors.volumeInUse(volumeId, ' (another card, or a delete, holds its lock)');
      this.ownsLock = true;
      // A delete that ran before we took the lock has removed the volume: we must not serve it.
      const now = this.registry.getVolume(volumeId);
      if (!now || now.state === 'deleted' || now.state === 'deleting') throw Ec2Errors.volumeNotFound(volumeId);
      setNonDumpable();
      const image = imageFile(home, v);
      this.fd = openImage(image, 'r+');
      this.changes = ChangeTracker.open(home, volumeId, this.fd, v.size * GiB, this.o.changeTracking, this.log);
      // The mount directory, walked by this card itself (card/paths.ts; the parent's check was an early
      // error only) and held from here on; before any key is unwrapped, so a refused path costs no Decrypt.
      const dir = walkMountDir(this.o.mountDir, 'create');
      let mount: FuseServer;
      try {
        mount = await this.serve(v, image, dir);
      } finally {
        fs.closeSync(dir.fd);
      }
      const volumeFile = path.join(this.o.mountDir, volumeId);
      // The mount's identity, recorded at once (read without a request to this card's own server): cleanup after a
      // card killed from here on releases this mount and no other, and can abort its connection (card/system.ts).
      const id = mount.identity();
      this.registry.write(() => this.registry.recordServed(volumeId, { served_dev: id.dev, served_mnt: id.mnt }));
      const served = { served_dev: id.dev, served_ino: this.servedInode(), served_mnt: id.mnt };
      // 5. The loop device: LOOP_CONFIGURE on a descriptor of the decrypted file opened through the mount (never by name).
      if (this.o.loop) {
        const fileFd = mount.openServed(true);
        try {
          this.loop = HeldLoop.attach(fileFd, volumeId);
        } finally {
          fs.closeSync(fileFd);
        }
        linkDevice(volumeId, this.loop.path);
      }
      this.control = serveControl(socketPath(home, volumeId), (r) => this.handle(r));
      const attachTime = this.o.clock.now();
      this.registry.write(() => {
        this.registry.putAttachment({
          volume_id: volumeId,
          volume_file: volumeFile,
          mount_dir: this.o.mountDir,
          loop_device: this.loop?.path ?? null,
          attach_time: attachTime.getTime(),
          pid: process.pid,
          state: 'attached',
          grant_token: this.o.grantToken ?? null,
          ...served,
        });
        this.registry.setVolumeState(volumeId, 'in-use');
      });
      this.events.record(volumeId, 'attachVolume', 'attached');
      this.log.info({ volumeId, device: volumeFile, loop: this.loop?.path ?? null }, 'attached');
      process.once('SIGTERM', () => void this.signalled('SIGTERM'));
      process.once('SIGINT', () => void this.signalled('SIGINT'));
      return {
        VolumeId: volumeId,
        Device: volumeFile,
        ...(this.loop ? { LoopDevice: this.loop.path } : {}),
        State: 'attached',
        AttachTime: attachTime,
        InstanceId: 'local',
        DeleteOnTermination: false,
      };
    } catch (e) {
      this.log.warn({ volumeId, error: (e as Error).name, message: (e as Error).message }, 'attach failed');
      await this.teardown();
      throw e;
    }
  }

  /** Steps 2-4 of start(): the image's header checked, the key unwrapped and verified (encrypted volumes), the FUSE mount on `dir`. */
  private async serve(v: VolumeRow, image: string, dir: HeldDir): Promise<FuseServer> {
    const { volumeId } = this.o;
    let payloadOffset = 0;
    if (v.encrypted) {
      const head = Buffer.alloc(2 * HDR_SIZE);
      const n = fs.readSync(this.fd, head, 0, head.length, 0);
      const header = decodeHeader(head.subarray(0, n), image);
      payloadOffset = header.payloadOffset;
      checkPayload(image, this.fd, header, v.size * GiB);
      // 2-3. KMS Decrypt with the volume's context, as the card's own principal
      // through its grant, straight into guarded memory.
      const caller = { principal: cardPrincipal(header.token.keyArn, volumeId), viaService: viaEc2(this.o.region) };
      const kms = this.o.kms(caller);
      try {
        this.key = await unwrapVerifiedKey(kms, header, image, this.o.grantToken);
      } finally {
        kms.close();
      }
      this.log.info({ volumeId, keyArn: header.token.keyArn, keyBytes: this.key.length, engine: backend() }, 'data key unwrapped into guarded memory');
    } else {
      checkImageLength(image, this.fd, 0, v.size * GiB);
    }
    // 4. FUSE: the decrypted volume as one file, mounted on the held directory. A --device keeps its mode: the mount covers it.
    this.mount = startFuseServer(this.key, this.fd, payloadOffset, v.size * GiB, dir, volumeId, this.o.changeTracking);
    this.changes?.serving(this.mount);
    return this.mount;
  }

  /** The served file's st_ino, through a descriptor opened through the held mount (never by path): a loop device's backing inode. */
  private servedInode(): number {
    const fd = this.mount!.openServed();
    try {
      return fs.fstatSync(fd).ino;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Grow while attached (EBS Elastic Volumes): the control plane has extended
   * the image; serve the larger file, wait until the kernel sees its new size
   * (FUSE attributes are cached for a second), and refresh the loop device.
   */
  private async resize(bytes: number): Promise<void> {
    if (!this.mount) throw Ec2Errors.incorrectState(`Volume ${this.o.volumeId} is not being served.`);
    this.mount.resize(bytes);
    this.changes?.resize(bytes);
    const volumeFile = path.join(this.o.mountDir, this.o.volumeId);
    const end = Date.now() + 10_000;
    while ((await fs.promises.stat(volumeFile)).size !== bytes) {
      if (Date.now() > end) throw Ec2Errors.incorrectState(`${volumeFile} did not show its new size of ${bytes} bytes within 10 s.`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.loop?.setCapacity();
    this.log.info({ volumeId: this.o.volumeId, bytes }, 'grown');
  }

  private async handle(req: ControlRequest): Promise<ControlReply> {
    if (req.op === 'status') return { ok: true, volumeId: this.o.volumeId, loop: this.loop?.path ?? null, pid: process.pid };
    if (req.op === 'freeze') {
      return { ok: true, freezeId: await this.freezes.freeze(leaseOf(req)) };
    }
    if (req.op === 'renew' || req.op === 'thaw') {
      const id = Number(req.freezeId);
      if (req.op === 'renew' ? this.freezes.renew(id, leaseOf(req)) : await this.freezes.thaw(id)) return { ok: true };
      throw Ec2Errors.incorrectState(
        `The freeze of ${this.o.volumeId} for this snapshot ended before the copy did (nobody renewed it for ${leaseOf(req) / 1000} s): writes went on during the copy, so it is not a point-in-time snapshot. Take the snapshot again.`,
      );
    }
    if (req.op === 'take-changes' || req.op === 'commit-changes' || req.op === 'abort-changes') return this.handleChanges(req);
    if (req.op === 'resize') {
      await this.resize(Number(req.size));
      return { ok: true };
    }
    if (req.op === 'detach') {
      // Precondition: nothing but the card holds the loop device (a mount, a holder, swap, or any
      // process with it open), as umount refuses a busy file system; only --force cuts them off.
      const busy = req.force ? undefined : this.loop?.busy();
      if (busy) throw Ec2Errors.incorrectState(`Volume ${this.o.volumeId} is busy: ${busy}, or detach with --force.`);
      // Precondition: nothing is mounted on or in the volume's mount (as umount refuses a busy mount point).
      if (!req.force && this.mount?.covered()) {
        throw Ec2Errors.incorrectState(
          `Volume ${this.o.volumeId} is busy: another file system is mounted on or in ${this.o.mountDir} (see: findmnt -R ${this.o.mountDir}). Unmount it first, or detach with --force.`,
        );
      }
      // Precondition: nobody else has the decrypted volume file open (as umount refuses a busy
      // file system). The kernel sends RELEASE after close() returns, so give a just-closed file a moment.
      if (!req.force && !(await this.settled())) {
        const n = this.mount!.stats().openFiles - (this.loop ? 1 : 0);
        throw Ec2Errors.incorrectState(
          `Volume ${this.o.volumeId} is busy: the decrypted volume file is open ${n} time(s) (see: fuser -v ${path.join(this.o.mountDir, this.o.volumeId)}). Close it first, or detach with --force.`,
        );
      }
      // Postcondition: whoever opened the loop device after busy() looked is not cut off (the kernel decides, in one step).
      if (!req.force && this.loop && !this.loop.releaseIfSole()) {
        throw Ec2Errors.incorrectState(
          `Volume ${this.o.volumeId} is busy: ${this.loop.busy() ?? `${this.loop.path} was opened by another process just now. Close it first`}, or detach with --force.`,
        );
      }
      setImmediate(() => void this.stop(!!req.force));
      return { ok: true };
    }
    throw Ec2Errors.invalidParameter(`unknown control operation ${String((req as { op: unknown }).op)}`);
  }

  /**
   * A snapshot's use of the change bitmap (card/tracking.ts). Precondition:
   * a take happens while frozen: a write in flight has set its bit but not
   * yet written its data, and a take then would lose the block for the next
   * snapshot.
   */
  private handleChanges(req: ControlRequest): ControlReply {
    const changes = this.changes;
    if (!changes || !this.mount) throw Ec2Errors.incorrectState(`Volume ${this.o.volumeId} is not being served.`);
    if (req.op === 'take-changes') {
      if (!this.freezes.active) throw Ec2Errors.incorrectState(`Volume ${this.o.volumeId} is not frozen; its changes are taken only while it is.`);
      return { ok: true, ...changes.take() };
    }
    const id = String(req.takeId);
    if (req.op === 'abort-changes') {
      changes.abort(id);
      return { ok: true };
    }
    if (typeof req.snapshotId !== 'string' || !/^snap-[0-9a-f]{17}$/.test(req.snapshotId)) throw Ec2Errors.invalidId('Snapshot', String(req.snapshotId));
    return { ok: true, committed: changes.commit(id, req.snapshotId, this.fd) };
  }

  /** True once no one but the loop device has the volume file open (waits up to 2 s for late RELEASEs). */
  private async settled(): Promise<boolean> {
    const others = () => (this.mount?.stats().openFiles ?? 0) - (this.loop ? 1 : 0);
    for (const end = Date.now() + 2000; others() > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    return others() <= 0;
  }

  /**
   * A signal (a shutdown, `kill`) detaches even a busy volume, as --force
   * does; but first what the file system on the loop device (or the loop
   * device itself) holds in the page cache is flushed through this card to
   * the image, so writes it acknowledged and nobody synced are not lost.
   */
  private async signalled(signal: string): Promise<void> {
    const target = this.loop?.mountPoint() ?? this.loop?.path;
    this.log.info({ volumeId: this.o.volumeId, signal, flushing: target ?? null }, 'signalled: detaching');
    if (this.loop) {
      try {
        const fsFd = this.loop.openFileSystem();
        if (fsFd === undefined) await this.loop.flush();
        else {
          try {
            syncFileSystem(fsFd);
          } finally {
            fs.closeSync(fsFd);
          }
        }
      } catch (e) {
        this.log.warn({ volumeId: this.o.volumeId, target, message: (e as Error).message }, 'could not flush what is above the card before detaching');
      }
    }
    await this.stop(false);
  }

  /** Detach: drain, fsync, release the loop device, unmount, zeroize, record. */
  stop(force: boolean): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.teardown();
        this.log.info({ volumeId: this.o.volumeId, force }, 'detached; data key zeroized');
        // Postcondition: the key is gone and the card exits even when the home cannot be
        // written (a full disk): the next command finds the card dead and reconciles the registry.
        // The volume is not available yet: it is, once the card's grant is retired (card/cleanup.ts, finishDetach).
        try {
          this.registry.write(() => this.registry.markCardGone(this.o.volumeId, process.pid));
        } catch (e) {
          this.log.warn(
            { volumeId: this.o.volumeId, error: (e as Error).name, message: (e as Error).message },
            'detached, but the registry could not be updated; the next command will',
          );
        }
      } finally {
        this.registry.close();
        this.resolveStopped();
      }
    })();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    try {
      await this.freezes.thaw();
      this.control?.close();
      this.control = null;
      if (this.loop) {
        // Released on the descriptor the card holds: the number cannot be anyone else's yet.
        unlinkDevice(this.o.volumeId, this.loop.path);
        this.loop.release();
        this.loop = null;
      }
    } finally {
      // Postcondition: whatever failed above, the FUSE server is stopped, the image flushed
      // and closed, the key zeroized and the lock released (the card exits after this).
      try {
        if (this.mount?.covered()) {
          // A mount over ours (root's) would be what umount releases: leave both, and end this card the way kill -9 does.
          this.log.error({ volumeId: this.o.volumeId, mountDir: this.o.mountDir }, 'another mount covers the volume; the card exits without unmounting');
          process.kill(process.pid, 'SIGKILL');
        }
        if (this.mount) {
          // Unmounting waits for in-flight requests; then the backing file is fsynced.
          const stats = this.mount.stats();
          this.mount.stop();
          if (stats.errors) this.log.warn({ volumeId: this.o.volumeId, ...stats }, 'requests failed while attached');
          this.mount = null;
        }
        if (this.fd >= 0) fs.fdatasyncSync(this.fd);
        // Only now (nothing can write, the image is durable) are the bits whole: saved, and the file marked clean.
        if (this.fd >= 0) this.changes?.save(this.fd);
      } finally {
        this.changes?.release();
        this.changes = null;
        this.key?.zeroize();
        this.key = null;
        if (this.fd >= 0) fs.closeSync(this.fd);
        this.fd = -1;
        if (this.ownsLock) fs.rmSync(socketPath(this.o.home, this.o.volumeId), { force: true });
        if (this.lockFd >= 0) fs.closeSync(this.lockFd);
        this.lockFd = -1;
        this.ownsLock = false;
      }
    }
  }
}
