import { createRequire } from 'node:module';
import path from 'node:path';
import { ServiceError } from '../errors.js';
import { packageRoot } from '../root.js';

/**
 * The TypeScript face of native/ (its binding, native/src/binding.c): it
 * validates every argument (the engine trusts what it is handed; the binding
 * only checks handle types) and turns native status codes into typed errors.
 * The limits it checks come from C (`constants`), so the two cannot disagree.
 */
interface Addon {
  constants: NativeConstants;
  keyCreate(len: number): object;
  keyLoad(key: object, src: Uint8Array): boolean;
  keyView(key: object): ArrayBuffer;
  keyProtect(key: object, writable: boolean): boolean;
  keyZeroize(key: object): void;
  keyInfo(key: object): KeyInfo;
  xtsSync(key: object, src: Uint8Array, dst: Uint8Array, first: number, ss: number, enc: boolean): void;
  xtsAsync(key: object, src: Uint8Array, dst: Uint8Array, first: number, ss: number, enc: boolean): Promise<void>;
  setNonDumpable(): void;
  backend(): string;
  keyPbkdf2(key: object, salt: Uint8Array, iterations: number, out: Uint8Array): void;
  keyLuks2Keyslot(key: object, pass: Uint8Array, salt: Uint8Array, iterations: number, stripes: number, out: Uint8Array): void;
  lockExclusive(fd: number): number;
  fuseStart(key: object | null, fd: number, payloadOffset: number, size: number, dirFd: number, name: string, track: boolean): object;
  fuseOpen(server: object, direct: boolean): number;
  fuseCovered(server: object): boolean;
  fuseIdentity(server: object): { dev: number; mnt: number };
  fuseStop(server: object): void;
  fuseStats(server: object): FuseStats;
  fuseFreeze(server: object, on: boolean): void;
  fuseResize(server: object, size: number): void;
  fuseChanges(server: object, op: number, bits: Uint8Array): void;
  recryptAsync(
    oldKey: object | null,
    newKey: object | null,
    srcFd: number,
    srcOff: number,
    dstFd: number,
    dstOff: number,
    first: number,
    scratch: Uint8Array,
  ): Promise<number>;
  seekExtent(fd: number, off: number, hole: boolean): number;
  /** native/src/paths.c; their TypeScript face is src/native/paths.ts. Each returns an fd, or an errno (negated for the opens). */
  openRoot(): number;
  openAt(dirFd: number, name: string, directory: boolean): number;
  mkdirAt(dirFd: number, name: string, mode: number): number;
  mountIdOf(fd: number): number;
  umountFd(fd: number): number;
}

/** The limits the C side holds (native/src/engine.h and fuse_server.h), exported by the binding. */
interface NativeConstants {
  /** The volume sector: what the FUSE server serves and recrypt copies. */
  SECTOR_SIZE: number;
  /** XTS runs on whole multiples of this; the plain64 IV counts in these units. */
  XTS_UNIT: number;
  XTS_KEY_BYTES: number;
  /** The largest read or write the kernel sends the FUSE server in one request. */
  MAX_IO: number;
  /** The longest served file name, in bytes. */
  NAME_MAX: number;
  /** The longest mount directory, in bytes. */
  MOUNT_PATH_MAX: number;
  /** flock's errno when another process holds the lock. */
  EWOULDBLOCK: number;
  /** Change tracking's block: one bit of the FUSE server's change bitmap covers this many bytes of the volume. */
  CHANGE_BLOCK: number;
}

export interface KeyInfo {
  zeroized: boolean;
  loaded: boolean;
  locked: boolean;
  wipeOnFork: boolean;
  /** Address of the key pages; for tests that check the mapping, never logged. */
  address: number;
  lockedBytes: number;
  backend: string;
}

/** KMSVOL_XTS_BACKEND: the backends the engine knows; anything else is refused before the engine loads. */
export const XTS_BACKENDS = ['vaes', 'aesni', 'openssl'] as const;

function loadAddon(): Addon {
  const want = process.env.KMSVOL_XTS_BACKEND;
  if (want !== undefined && want !== '' && !(XTS_BACKENDS as readonly string[]).includes(want)) {
    throw new Error(`KMSVOL_XTS_BACKEND=${want} is not a backend; use one of ${XTS_BACKENDS.join(', ')}, or unset it for the best the CPU has.`);
  }
  const require = createRequire(import.meta.url);
  try {
    return require(path.join(packageRoot(), 'native/build/Release/kmsvol_native.node')) as Addon;
  } catch (e) {
    throw new Error(
      `The kmsvol native engine is not built (${(e as Error).message.split('\n')[0]}). Build it with: npm run build (it needs: apt-get install -y build-essential python3)`,
    );
  }
}

/** @internal The loaded addon, for the TypeScript faces in src/native/ only (paths.ts, loop.ts). */
export const addon = loadAddon();

export const { SECTOR_SIZE, XTS_KEY_BYTES, MAX_IO, NAME_MAX, MOUNT_PATH_MAX, CHANGE_BLOCK } = addon.constants;
/** The sector sizes the XTS calls take: the XTS unit (512, as dm-crypt's default) and the volume sector. */
export const SECTOR_SIZES: readonly number[] = [addon.constants.XTS_UNIT, SECTOR_SIZE];
/** A served file name: 1..NAME_MAX of [A-Za-z0-9._-]. */
const FILE_NAME = new RegExp(`^[A-Za-z0-9._-]{1,${NAME_MAX}}$`);

/** Engine errors carry stable names: KeyZeroized, KeyNotLoaded, InvalidKey, MlockFailed, InvalidArgument, IoError, FuseMountFailed, EngineFailure. */
export class EngineError extends ServiceError {
  constructor(
    name: string,
    message: string,
    readonly errno?: number,
  ) {
    super(name, message, 500);
  }
}

function translate(e: unknown): never {
  if (e instanceof EngineError) throw e;
  const err = e as Error & { code?: string; errno?: number };
  switch (err.code) {
    case 'KMSVOL_KEY_ZEROIZED':
      throw new EngineError('KeyZeroized', 'The data key has been zeroized (the volume was detached); attach it again to get a new key.');
    case 'KMSVOL_KEY_NOT_LOADED':
      throw new EngineError('KeyNotLoaded', 'The guarded key holds no key yet; load it first.');
    case 'KMSVOL_MLOCK':
      throw new EngineError('MlockFailed', err.message);
    default:
      throw new EngineError('EngineFailure', err.message);
  }
}

function arg(cond: boolean, msg: string): void {
  if (!cond) throw new EngineError('InvalidArgument', msg);
}

/**
 * A key held only in guarded native memory. Reachable through few accessors:
 * load, writeInPlace, zeroize, isZeroized. Its bytes never enter a JS string.
 */
export class GuardedKey {
  readonly #handle: object;
  #zeroized = false;
  readonly length: number;

  constructor(length: number = XTS_KEY_BYTES) {
    arg(Number.isInteger(length) && length > 0 && length <= 4096 && length % 2 === 0, `a guarded key is 2..4096 bytes, even; got ${length}`);
    this.length = length;
    try {
      this.#handle = addon.keyCreate(length);
    } catch (e) {
      translate(e);
    }
  }

  /**
   * Copy `src` into guarded memory and zero `src`. Precondition: the two halves
   * differ (XTS needs two different AES keys); otherwise InvalidKey, nothing kept.
   */
  static fromBuffer(src: Buffer | Uint8Array): GuardedKey {
    const k = new GuardedKey(src.byteLength);
    try {
      k.load(src);
      return k;
    } catch (e) {
      k.zeroize();
      throw e;
    } finally {
      src.fill(0);
    }
  }

  load(src: Uint8Array): void {
    this.#live();
    arg(src instanceof Uint8Array && src.byteLength === this.length, `key must be ${this.length} bytes`);
    let ok: boolean;
    try {
      ok = addon.keyLoad(this.#handle, src);
    } catch (e) {
      translate(e);
    }
    if (!ok) throw new EngineError('InvalidKey', 'The two halves of the XTS key are equal; XTS needs two different AES keys. Generate the key again.');
  }

  /** Let `fn` write the key straight into the guarded pages (no intermediate Buffer). */
  writeInPlace(fn: (view: Uint8Array) => void): void {
    this.#live();
    const view = new Uint8Array(addon.keyView(this.#handle));
    addon.keyProtect(this.#handle, true);
    let loaded = false;
    try {
      fn(view);
    } finally {
      loaded = addon.keyProtect(this.#handle, false);
    }
    if (!loaded) throw new EngineError('InvalidKey', 'The two halves of the XTS key are equal; XTS needs two different AES keys. Generate the key again.');
  }

  /** The raw view over the (normally no-access) key pages. Touching it while locked is SIGSEGV; for tests of the guard. */
  unsafeView(): ArrayBuffer {
    this.#live();
    return addon.keyView(this.#handle);
  }

  get isZeroized(): boolean {
    return this.#zeroized;
  }

  info(): KeyInfo {
    return addon.keyInfo(this.#handle);
  }

  /** explicit_bzero, munmap, free the cipher contexts, detach the JS view. Idempotent. */
  zeroize(): void {
    if (this.#zeroized) return;
    addon.keyZeroize(this.#handle);
    this.#zeroized = true;
  }

  #live(): void {
    if (this.#zeroized) throw new EngineError('KeyZeroized', 'The data key has been zeroized (the volume was detached); attach it again to get a new key.');
  }

  /** PBKDF2-HMAC-SHA256 of the key into `out` (for the LUKS2 key digest); the key never leaves native memory. */
  pbkdf2Sha256(salt: Uint8Array, iterations: number, out: Uint8Array): void {
    arg(salt instanceof Uint8Array && salt.byteLength > 0 && salt.byteLength <= 1024, 'salt must be 1..1024 bytes');
    arg(Number.isInteger(iterations) && iterations >= 1 && iterations <= 10_000_000, 'iterations must be 1..10,000,000');
    arg(out instanceof Uint8Array && out.byteLength > 0 && out.byteLength <= 64, 'out must be 1..64 bytes');
    try {
      addon.keyPbkdf2(this.handle, salt, iterations, out);
    } catch (e) {
      translate(e);
    }
  }

  /**
   * The encrypted LUKS2 keyslot area of this key (native/src/keyslot.c): the
   * key AF-split into `stripes` stripes and encrypted with aes-xts-plain64
   * under PBKDF2-HMAC-SHA256(`pass`, `salt`, `iterations`). `out` receives
   * the area (the split key never leaves native memory unencrypted).
   */
  luks2Keyslot(pass: Uint8Array, salt: Uint8Array, iterations: number, stripes: number, out: Uint8Array): void {
    arg(pass instanceof Uint8Array && pass.byteLength > 0 && pass.byteLength <= 512, 'pass must be 1..512 bytes');
    arg(salt instanceof Uint8Array && salt.byteLength > 0 && salt.byteLength <= 1024, 'salt must be 1..1024 bytes');
    arg(Number.isInteger(iterations) && iterations >= 1 && iterations <= 10_000_000, 'iterations must be 1..10,000,000');
    arg(Number.isInteger(stripes) && stripes >= 1 && stripes <= 4000, 'stripes must be 1..4000');
    arg(out instanceof Uint8Array && out.byteLength >= Math.ceil((this.length * stripes) / 512) * 512, 'out is too small for the keyslot area');
    try {
      addon.keyLuks2Keyslot(this.handle, pass, salt, iterations, stripes, out);
    } catch (e) {
      translate(e);
    }
  }

  /** @internal */
  get handle(): object {
    this.#live();
    return this.#handle;
  }
}

function checkSectors(src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void {
  arg(SECTOR_SIZES.includes(sectorSize), `sectorSize must be ${SECTOR_SIZES.join(' or ')}; got ${sectorSize}`);
  arg(src instanceof Uint8Array && dst instanceof Uint8Array, 'src and dst must be Buffers');
  arg(src.byteLength > 0 && src.byteLength % sectorSize === 0, `length ${src.byteLength} is not a positive multiple of the ${sectorSize}-byte sector`);
  arg(dst.byteLength === src.byteLength, `dst is ${dst.byteLength} bytes; it must equal src (${src.byteLength})`);
  arg(src.byteLength <= 0x7fffffff, 'one batch is at most 2 GiB');
  arg(Number.isSafeInteger(firstSector) && firstSector >= 0, `firstSector must be a non-negative safe integer; got ${firstSector}`);
  arg(
    Number.isSafeInteger((firstSector + src.byteLength / sectorSize) * (sectorSize / addon.constants.XTS_UNIT)),
    'sector numbers overflow the 64-bit IV range this engine accepts',
  );
}

function checkFile(fd: number, offset: number): void {
  arg(Number.isInteger(fd) && fd >= 0, `fd must be an open file descriptor; got ${fd}`);
  arg(Number.isSafeInteger(offset) && offset >= 0, `file offset must be a non-negative safe integer; got ${offset}`);
}

/** Encrypt whole sectors of `src` into `dst` (may be the same buffer). */
export function xtsEncrypt(key: GuardedKey, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void {
  checkSectors(src, dst, firstSector, sectorSize);
  try {
    addon.xtsSync(key.handle, src, dst, firstSector, sectorSize, true);
  } catch (e) {
    translate(e);
  }
}

export function xtsDecrypt(key: GuardedKey, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void {
  checkSectors(src, dst, firstSector, sectorSize);
  try {
    addon.xtsSync(key.handle, src, dst, firstSector, sectorSize, false);
  } catch (e) {
    translate(e);
  }
}

/** The same on the libuv thread pool. The buffers must not be touched until the promise settles. */
export function xtsEncryptAsync(key: GuardedKey, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void> {
  return cryptAsync(key, src, dst, firstSector, sectorSize, true);
}

export function xtsDecryptAsync(key: GuardedKey, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void> {
  return cryptAsync(key, src, dst, firstSector, sectorSize, false);
}

/** Validation errors reject (never throw synchronously), as an async API should. */
function cryptAsync(key: GuardedKey, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number, enc: boolean): Promise<void> {
  try {
    checkSectors(src, dst, firstSector, sectorSize);
    return addon.xtsAsync(key.handle, src, dst, firstSector, sectorSize, enc).catch(translate);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * flock(LOCK_EX | LOCK_NB) on an open file: true when this process now holds
 * the lock, false when another process does. The lock dies with the process.
 */
export function lockExclusive(fd: number): boolean {
  arg(Number.isInteger(fd) && fd >= 0, `fd must be an open file descriptor; got ${fd}`);
  const rc = addon.lockExclusive(fd);
  if (rc === 0) return true;
  if (rc === addon.constants.EWOULDBLOCK) return false;
  throw new EngineError('IoError', `flock failed with errno ${rc}`, rc);
}

/**
 * A running FUSE server (native/src/fuse_server.c), the FUSE edge of a card: it
 * serves one regular file, the decrypted volume, and libfuse's worker threads
 * call the sector engine directly, so no request passes through the JavaScript
 * thread.
 */
export interface FuseServer {
  /** Unmount (through the held mount, never by name) and wait for in-flight requests. Idempotent. */
  stop(): void;
  /**
   * A new descriptor on the served file, opened through the held mount
   * (`openat(mount, name, O_RDWR | O_NOFOLLOW [| O_DIRECT])`), never by path:
   * for its identity (fstat) and for a loop device. The caller closes it.
   */
  openServed(direct?: boolean): number;
  /** True when another mount sits on or in this one (root put it there): stop() would then not unmount, and would wait. */
  covered(): boolean;
  /**
   * The mount's st_dev and unique mount id (null before Linux 6.8), read from
   * the root as cached: no request reaches the server, so a card killed
   * meanwhile is never left waiting on its own mount.
   */
  identity(): { dev: number; mnt: number | null };
  /** The server's counters now (open handles, failed requests). */
  stats(): FuseStats;
  /** Quiesce writes and fdatasync (true), or let them continue (false). */
  freeze(on: boolean): void;
  /** Grow the served file to `size` bytes (the backing image already extended). */
  resize(size: number): void;
  /**
   * The change bitmap (a bit per CHANGE_BLOCK bytes, block b = bit b % 8 of
   * byte b / 8), through `bits`: `peek` copies it out, `take` copies it out and
   * clears it (atomically per word: a write's bit is either taken or stays),
   * `merge` ORs `bits` in. Throws when the server was started without tracking.
   */
  changes(op: 'peek' | 'take' | 'merge', bits: Uint8Array): void;
}

/** A FUSE server's counters: failed requests, the last errno, the errno of the first lost write (0: none), open handles on the file. */
export interface FuseStats {
  errors: number;
  lastErrno: number;
  lostWrite: number;
  openFiles: number;
}

/**
 * Serve `size` bytes of the payload at `payloadOffset` of `fd` as `name` in a
 * FUSE mount placed on the directory `dir.fd` holds (an O_PATH descriptor
 * from the walk in card/paths.ts; `dir.path` only names it in messages),
 * decrypted with `key` (or passed through when null). Mounts before
 * returning, with the new mount API; the server keeps the mount's descriptor.
 */
export function startFuseServer(
  key: GuardedKey | null,
  fd: number,
  payloadOffset: number,
  size: number,
  dir: { fd: number; path: string },
  name: string,
  track = true,
): FuseServer {
  checkFile(fd, payloadOffset);
  arg(Number.isSafeInteger(size) && size > 0 && size % SECTOR_SIZE === 0, `size must be a positive multiple of ${SECTOR_SIZE}; got ${size}`);
  arg(FILE_NAME.test(name), `file name must be 1..${NAME_MAX} of [A-Za-z0-9._-]; got ${JSON.stringify(name)}`);
  arg(Number.isInteger(dir.fd) && dir.fd >= 0, `the mount directory must be an open directory descriptor; got ${dir.fd}`);
  arg(Buffer.byteLength(dir.path) <= MOUNT_PATH_MAX, `mount directory must be an absolute path of at most ${MOUNT_PATH_MAX} bytes`);
  let handle: object;
  try {
    handle = addon.fuseStart(key ? key.handle : null, fd, payloadOffset, size, dir.fd, name, track);
  } catch (e) {
    throw new EngineError('FuseMountFailed', `Could not mount FUSE at ${dir.path}: ${(e as Error).message}`);
  }
  return {
    stop: () => addon.fuseStop(handle),
    covered: () => addon.fuseCovered(handle),
    identity: () => {
      const { dev, mnt } = addon.fuseIdentity(handle);
      return { dev, mnt: mnt > 0 ? mnt : null };
    },
    openServed: (direct = false) => {
      const r = addon.fuseOpen(handle, direct);
      if (r < 0) throw new EngineError('IoError', `Could not open ${name} through its FUSE mount (errno ${-r}); the volume is no longer served.`, -r);
      return r;
    },
    stats: () => addon.fuseStats(handle),
    freeze: (on) => addon.fuseFreeze(handle, on),
    resize: (to) => {
      arg(
        Number.isSafeInteger(to) && to >= size && to % SECTOR_SIZE === 0,
        `a volume grows to a multiple of ${SECTOR_SIZE} bytes not below ${size}; got ${to}`,
      );
      addon.fuseResize(handle, to);
    },
    changes: (op, bits) => {
      arg(bits instanceof Uint8Array, 'the change bitmap must be a Uint8Array');
      try {
        addon.fuseChanges(handle, op === 'peek' ? 0 : op === 'take' ? 1 : 2, bits);
      } catch (e) {
        throw new EngineError('InvalidArgument', `change bitmap ${op} failed: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * Re-encrypt whole sectors from one image to another on the thread pool: read
 * `scratch.length` bytes at `srcOffset`, skip never-written (all-zero)
 * sectors, decrypt with `oldKey` and encrypt with `newKey` (either may be null:
 * unencrypted), write at `dstOffset`. Resolves with the bytes written.
 */
export function recryptSectors(
  oldKey: GuardedKey | null,
  newKey: GuardedKey | null,
  srcFd: number,
  srcOffset: number,
  dstFd: number,
  dstOffset: number,
  firstSector: number,
  scratch: Uint8Array,
): Promise<number> {
  try {
    checkSectors(scratch, scratch, firstSector, SECTOR_SIZE);
    checkFile(srcFd, srcOffset);
    checkFile(dstFd, dstOffset);
    return addon
      .recryptAsync(oldKey ? oldKey.handle : null, newKey ? newKey.handle : null, srcFd, srcOffset, dstFd, dstOffset, firstSector, scratch)
      .catch(translate);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** lseek SEEK_DATA / SEEK_HOLE: the next data (or hole) offset at or after `offset`, or -1 when there is no more data. */
export function seekExtent(fd: number, offset: number, what: 'data' | 'hole'): number {
  checkFile(fd, offset);
  return addon.seekExtent(fd, offset, what === 'hole');
}

/** The XTS backend in use: "vaes", "aesni" (own, schedules in guarded pages) or "openssl" (EVP fallback). */
export function backend(): string {
  return addon.backend();
}

/** PR_SET_DUMPABLE 0 and RLIMIT_CORE 0: no core file, no ptrace attach by non-root. */
export function setNonDumpable(): void {
  addon.setNonDumpable();
}
