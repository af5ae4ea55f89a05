import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockExclusive, MOUNT_PATH_MAX, NAME_MAX, SECTOR_SIZE, SECTOR_SIZES, startFuseServer } from '../../../src/native/index.js';
import { mkdirAt, openAt } from '../../../src/native/paths.js';
import { ROOT } from '../../helpers/cli.js';
import { onCleanup, tempHome } from '../../helpers/home.js';

/*
 * The binding (native/src/binding.c) under the TypeScript face: what it does
 * with values TypeScript would never hand it. The raw addon is loaded here on
 * purpose, as the one way to pass a wrong handle.
 */
type Fn = (...args: unknown[]) => unknown;
const addon = createRequire(import.meta.url)(path.join(ROOT, 'native/build/Release/kmsvol_native.node')) as Record<string, Fn> & {
  constants: Record<string, number>;
};

describe('native binding: typed handles', () => {
  const key = addon.keyCreate(64);

  it('a key handle where a FUSE server is expected is a TypeError, never a cast', () => {
    for (const [fn, ...rest] of [['fuseStats'], ['fuseStop'], ['fuseFreeze', true], ['fuseResize', 8192]] as const) {
      expect(() => addon[fn](key, ...rest), fn).toThrow(TypeError);
      expect(() => addon[fn](key, ...rest), fn).toThrow(/expected a FUSE server handle/);
    }
  });

  it('a plain object, null or a number where a key is expected is a TypeError', () => {
    for (const wrong of [{}, null, 7, Buffer.alloc(64)]) {
      expect(() => addon.keyInfo(wrong)).toThrow(TypeError);
      expect(() => addon.keyZeroize(wrong)).toThrow(/expected a guarded key handle/);
      expect(() => addon.xtsSync(wrong, Buffer.alloc(4096), Buffer.alloc(4096), 0, 4096, true)).toThrow(TypeError);
    }
    expect(() => addon.fuseStats({})).toThrow(TypeError);
  });

  it('a plain object as a recrypt or FUSE key is a TypeError, not an unencrypted side', () => {
    expect(() => addon.recryptAsync({}, null, 0, 0, 1, 0, 0, Buffer.alloc(4096))).toThrow(TypeError);
    expect(() => addon.fuseStart({}, 0, 0, 4096, 0, 'x')).toThrow(TypeError);
  });

  it('an argument of the wrong type is a TypeError naming the call that refused it', () => {
    expect(() => addon.keyCreate('64')).toThrow(TypeError);
    expect(() => addon.keyCreate('64')).toThrow(/napi_get_value_uint32/);
    expect(() => addon.keyLoad(key, 'not a buffer')).toThrow(/napi_get_buffer_info/);
  });

  it('the key handle still works after the refusals', () => {
    expect(addon.keyLoad(key, Buffer.from(Array.from({ length: 64 }, (_, i) => i)))).toBe(true);
    expect((addon.keyInfo(key) as { loaded: boolean }).loaded).toBe(true);
  });
});

describe('native binding: limits come from C', () => {
  it('exports them frozen, and the TypeScript face uses the same values', () => {
    expect(Object.isFrozen(addon.constants)).toBe(true);
    expect(addon.constants).toMatchObject({ SECTOR_SIZE: 4096, XTS_UNIT: 512, NAME_MAX: 128, MOUNT_PATH_MAX: 4095, EWOULDBLOCK: 11 });
    expect([SECTOR_SIZE, NAME_MAX, MOUNT_PATH_MAX]).toEqual([addon.constants.SECTOR_SIZE, addon.constants.NAME_MAX, addon.constants.MOUNT_PATH_MAX]);
    expect(SECTOR_SIZES).toEqual([512, 4096]);
  });

  it('C refuses a file name or a path component over its limit instead of truncating it', () => {
    expect(() => addon.fuseStart(null, 0, 0, 4096, 0, 'n'.repeat(NAME_MAX + 1))).toThrow(RangeError);
    expect(() => addon.openAt(0, 'n'.repeat(256), true)).toThrow(RangeError);
    expect(() => addon.mkdirAt(0, 'n'.repeat(256), 0o700)).toThrow(RangeError);
  });

  it('TypeScript refuses the same lengths first, naming the limit', () => {
    const dir = { fd: 0, path: '/tmp' };
    expect(() => startFuseServer(null, 0, 0, 4096, { fd: 0, path: `/${'d'.repeat(MOUNT_PATH_MAX)}` }, 'x')).toThrow(`at most ${MOUNT_PATH_MAX} bytes`);
    expect(() => startFuseServer(null, 0, 0, 4096, dir, 'n'.repeat(NAME_MAX + 1))).toThrow(`1..${NAME_MAX}`);
    expect(() => startFuseServer(null, 0, 0, SECTOR_SIZE + 512, dir, 'x')).toThrow(`multiple of ${SECTOR_SIZE}`);
    expect(() => startFuseServer(null, 0, 0, 4096, { fd: -1, path: '/tmp' }, 'x')).toThrow('an open directory descriptor');
    expect(() => openAt(0, 'n'.repeat(256), true)).toThrow('1..255 bytes');
    expect(() => openAt(0, '..', true)).toThrow('not . or ..');
    expect(() => mkdirAt(0, 'a/b', 0o700)).toThrow('without /');
  });

  it('lockExclusive: false while another process holds the lock (EWOULDBLOCK from C), true once it is gone', async () => {
    const file = path.join(tempHome('kmsvol-lock-'), 'lock');
    fs.writeFileSync(file, '');
    const holder = spawn('flock', ['-x', file, 'sh', '-c', 'echo locked; cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
    onCleanup(() => holder.kill('SIGKILL'));
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve);
      holder.once('exit', (code) => reject(new Error(`flock exited ${code}`)));
    });
    const fd = fs.openSync(file, 'r');
    onCleanup(() => fs.closeSync(fd));
    expect(lockExclusive(fd)).toBe(false);
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.stdin.end();
    await exited;
    expect(lockExclusive(fd)).toBe(true);
  });
});
