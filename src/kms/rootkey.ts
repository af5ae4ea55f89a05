import crypto from 'node:crypto';
import fs from 'node:fs';
import { openPrivate } from '../home.js';
import { KmsErrors } from './errors.js';

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The root key: the local stand-in for the HSM domain key. It encrypts every
 * backing key at rest with AES-256-GCM; the AAD binds the sealed material to
 * its key id and material id, so sealed rows cannot be swapped between keys.
 */
export const ROOT_KEY_BYTES = 32;
const SEAL_NONCE = 12;
const SEAL_TAG = 16;

export class RootKey {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /**
   * Load the root key file, creating it (0600, 32 random bytes) only when
   * `create` is set (the store is being created and no key file was named).
   */
  static load(file: string, create: boolean): RootKey {
    if (!fs.existsSync(file) && !isLink(file)) {
      if (!create) {
        throw KmsErrors.internal(
          `The root key file ${file} does not exist. Restore it from backup, or point KMSVOL_ROOT_KEY_FILE at it; without it no key in this store can be used.`,
        );
      }
      const key = crypto.randomBytes(ROOT_KEY_BYTES);
      let fd: number;
      try {
        fd = openPrivate(file, 'w', true);
      } catch (e) {
        key.fill(0);
        throw e;
      }
      try {
        // Precondition: we created it (O_EXCL); someone else's file was refused by openPrivate.
        if (fs.fstatSync(fd).size !== 0) {
          key.fill(0);
          fs.closeSync(fd);
          return RootKey.load(file, false); // another process created it first: use theirs
        }
        fs.writeSync(fd, key);
        fs.fsyncSync(fd);
      } finally {
        try {
          fs.closeSync(fd);
        } catch {
          /* closed above */
        }
      }
      return new RootKey(key);
    }
    // Never through a link, never someone else's file (openPrivate refuses both).
    const fd = openPrivate(file, 'r');
    let key: Buffer;
    try {
      const st = fs.fstatSync(fd);
      if ((st.mode & 0o077) !== 0) {
        throw KmsErrors.internal(`The root key file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}). Run: chmod 600 ${file}`);
      }
      key = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (key.length !== ROOT_KEY_BYTES) {
      const n = key.length;
      key.fill(0);
      throw KmsErrors.internal(`The root key file ${file} holds ${n} bytes; a root key is exactly ${ROOT_KEY_BYTES} bytes.`);
    }
    return new RootKey(key);
  }

  /** The root key file when it exists (checked as load checks it, refused the same way); undefined when there is none. */
  static loadIfPresent(file: string): RootKey | undefined {
    return fs.existsSync(file) || isLink(file) ? RootKey.load(file, false) : undefined;
  }

  /** A check value stored in the database so a wrong root key is detected at open. */
  checkValue(): string {
    return crypto.createHmac('sha256', this.#key).update('kmsvol root key check v1').digest('hex').slice(0, 32);
  }

  /**
   * The material id of imported material: a keyed digest of the material,
   * so importing the same material again gives the same id (and old
   * ciphertexts decrypt) and other material is recognised as other.
   */
  importedMaterialId(keyId: string, material: Buffer, bytes: number): Buffer {
    const idKey = crypto.createHmac('sha256', this.#key).update('kmsvol imported material id v1').digest();
    try {
      return crypto.createHmac('sha256', idKey).update(keyId).update(material).digest().subarray(0, bytes);
    } finally {
      idKey.fill(0);
    }
  }

  seal(keyId: string, materialId: Buffer, material: Buffer): Buffer {
    const nonce = crypto.randomBytes(SEAL_NONCE);
    const c = crypto.createCipheriv('aes-256-gcm', this.#key, nonce);
    c.setAAD(aad(keyId, materialId));
    const ct = Buffer.concat([c.update(material), c.final()]);
    return Buffer.concat([nonce, ct, c.getAuthTag()]);
  }

  /** Returns the backing key; the caller zeroes it when done. */
  unseal(keyId: string, materialId: Buffer, sealed: Buffer): Buffer {
    if (sealed.length < SEAL_NONCE + SEAL_TAG + 1) throw KmsErrors.internal(`Sealed material of ${keyId} is truncated; the store is damaged.`);
    const d = crypto.createDecipheriv('aes-256-gcm', this.#key, sealed.subarray(0, SEAL_NONCE));
    d.setAAD(aad(keyId, materialId));
    d.setAuthTag(sealed.subarray(sealed.length - SEAL_TAG));
    const key = d.update(sealed.subarray(SEAL_NONCE, sealed.length - SEAL_TAG));
    try {
      d.final();
    } catch {
      key.fill(0);
      throw KmsErrors.internal(`The backing key of ${keyId} does not open under this root key: the store or the root key file was changed or swapped.`);
    }
    return key;
  }

  destroy(): void {
    this.#key.fill(0);
  }
}

function aad(keyId: string, materialId: Buffer): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  return Buffer.concat([Buffer.from('kmsvol-material-v1'), Buffer.from([id.length]), id, materialId]);
}
