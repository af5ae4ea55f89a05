import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cardGrantRequest } from '../../src/card/grants.js';
import { CARD_SPEC_VERSION, cardEnvironment, serializeCardSpec } from '../../src/card/spec.js';
import { Kms } from '../../src/kms/kms.js';
import { decodeHeader } from '../../src/volume/luks2.js';
import { Registry } from '../../src/volume/registry.js';
import { kmsvol, kmsvolAsync, ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPid, cardPids } from '../helpers/procs.js';
import { type TestUser, testUser } from '../helpers/users.js';
import { attach, createVolume, detach, head, volumeHome } from '../helpers/volumes.js';

/**
 * Finding 1 of issue 24, as the attacker ran it: an unprivileged local user
 * steering where root mounts a decrypted volume. The path rule is in
 * src/card/paths.ts; the mount and its release by descriptor in
 * native/src/fuse_server.c and src/card/paths.ts (releaseStaleMount).
 */

const CARD_MAIN = path.join(ROOT, 'dist/card/main.js');

/** Mounts (mountinfo lines) whose mount point is `dir` or below it. */
function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => {
      const mp = l.split(' ')[4];
      return mp === dir || mp?.startsWith(`${dir}/`);
    });
}

/** Unmount (test cleanup, by name: the test's own paths) whatever is mounted at or under `dir`, deepest first. */
function unmountUnder(dir: string): void {
  for (const l of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', l.split(' ')[4]!]);
}

/** A directory in /tmp owned by the user, removed (and anything mounted in it unmounted) afterwards. */
function theirDir(u: TestUser): string {
  const dir = fs.mkdtempSync('/tmp/kmsvol-theirs-');
  onCleanup(() => {
    unmountUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fs.chownSync(dir, u.uid, u.gid);
  return dir;
}

/** A fresh name in /tmp, nothing there yet; whatever appears there is removed afterwards. */
function freshTmpName(): string {
  const p = `/tmp/kmsvol-x-${crypto.randomBytes(6).toString('hex')}`;
  onCleanup(() => {
    unmountUnder(p);
    fs.rmSync(p, { recursive: true, force: true });
  });
  return p;
}

interface CardReport {
  ok: boolean;
  attachment?: { Device: string };
  error?: { name: string; message: string };
  exitCode: number | null;
}

/**
 * Start the card process itself, as attach does after the parent's check, with
 * `mountDir` and a grant for it: what the card does with a path that changed
 * after the parent looked (the window of finding 1). Resolves with the card's
 * report and, when it refused, once it has exited.
 */
async function startCard(home: string, vol: string, mountDir: string, grantToken: string, keyArn: string): Promise<CardReport> {
  const [, , , region, account] = keyArn.split(':');
  const child = spawn(process.execPath, [CARD_MAIN, vol], { detached: true, stdio: ['pipe', 'ignore', 'ignore', 'pipe'], env: cardEnvironment() });
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  child.stdin!.end(
    serializeCardSpec({
      version: CARD_SPEC_VERSION,
      home,
      rootKeyFile: path.join(home, 'root.key'),
      volumeId: vol,
      mountDir,
      loop: false,
      region: region!,
      account: account!,
      kms: { kind: 'embedded' },
      grantToken,
    }),
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let buf = '';
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => (buf += d));
  await new Promise((r) => (child.stdio[3] as NodeJS.ReadableStream).once('end', r));
  const report = JSON.parse(buf) as Omit<CardReport, 'exitCode'>;
  if (report.ok) {
    child.unref();
    return { ...report, exitCode: null };
  }
  return { ...report, exitCode: await exited };
}

/** The card's grant for `vol`, made as attach makes it. */
function cardGrant(home: string, vol: string): { grantToken: string; keyArn: string } {
  const token = decodeHeader(head(path.join(home, 'volumes', `${vol}.img`), 32768)).token;
  const kms = Kms.open({ home });
  onCleanup(() => kms.close());
  return { grantToken: kms.invoke('CreateGrant', cardGrantRequest(token.keyArn, vol)).GrantToken, keyArn: token.keyArn };
}

/** How many Decrypt calls the audit log holds. */
function decrypts(home: string): number {
  return fs
    .readFileSync(path.join(home, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .filter((l) => JSON.parse(l).eventName === 'Decrypt').length;
}

function events(home: string, vol: string): { event: string; result: string; cause: string }[] {
  return fs
    .readFileSync(path.join(home, 'events.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.resources[0].endsWith(vol))
    .map((e) => e.detail);
}

describe('finding 1: a local user cannot steer where root mounts the decrypted volume', () => {
  it("the card refuses, 20 times of 20, a mount directory /tmp/<new>/y whose /tmp/<new> the user planted as a link to their own directory after the parent's check; nothing reaches their directory and each card exits", async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const u = testUser();
    const theirs = theirDir(u);
    const { grantToken, keyArn } = cardGrant(ctx.home, vol);
    const decryptsBefore = decrypts(ctx.home);
    for (let run = 0; run < 20; run++) {
      const planted = freshTmpName();
      expect(u.sh(`ln -s ${theirs} ${planted}`).code).toBe(0);
      const r = await startCard(ctx.home, vol, path.join(planted, 'y'), grantToken, keyArn);
      if (r.ok) detach(ctx.home, vol); // it must not have won; if it did, end it before the assertions below
      expect(mountsUnder(theirs), `run ${run}: a mount in the user's directory`).toEqual([]);
      expect(fs.readdirSync(theirs), `run ${run}: something made in the user's directory`).toEqual([]);
      expect(r.error?.name, `run ${run}`).toBe('InvalidParameterValue');
      expect(r.error?.message).toContain(`${planted} is a symbolic link, and kmsvol never mounts through one.`);
      expect(r.exitCode, 'the card exits (its key with it)').toBe(1);
      expect(u.sh(`head -c 1 ${planted}/y/${vol}`).code).not.toBe(0);
    }
    expect(cardPids(vol)).toEqual([]);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    // The card walks its mount directory before it asks for the key: a refused path costs no Decrypt.
    expect(decrypts(ctx.home)).toBe(decryptsBefore);
  });

  it('attach-volume --device /tmp/<u>/y while the user keeps creating and removing /tmp/<u> as a link to their directory: 20 attaches, each refused, nothing in their directory', async () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const u = testUser();
    const theirs = theirDir(u);
    const planted = freshTmpName();
    // The user's loop, as the attacker scripted it: the link comes and goes as fast as the shell can.
    const racer = spawn('sh', ['-c', `while :; do ln -s ${theirs} ${planted} 2>/dev/null; rm -f ${planted}; done`], {
      uid: u.uid,
      gid: u.gid,
      stdio: 'ignore',
    });
    onCleanup(() => racer.kill('SIGKILL'));
    const outcomes: string[] = [];
    for (let run = 0; run < 20; run++) {
      const r = await kmsvolAsync(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--device', path.join(planted, 'y')]);
      if (r.code === 0) {
        // Won: then only where root owns every directory. The user only ever makes links, so this must not happen.
        outcomes.push(`attached at ${r.json.Device}`);
        detach(ctx.home, vol);
      } else {
        expect(r.stderr).toMatch(/\(InvalidParameterValue\) when calling the AttachVolume operation: Value \(.*\) for parameter device is invalid: /);
        const why = [/is a symbolic link/, /does not exist, and kmsvol does not create a directory in \/tmp/, /changed while kmsvol looked at it/];
        outcomes.push(why.some((w) => w.test(r.stderr)) ? 'refused' : r.stderr);
      }
      expect(mountsUnder(theirs), `run ${run}`).toEqual([]);
      expect(fs.readdirSync(theirs), `run ${run}`).toEqual([]);
    }
    racer.kill('SIGKILL');
    expect(outcomes.filter((o) => o !== 'refused')).toEqual([]);
    expect(cardPids(vol)).toEqual([]);
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
  });

  it('--device under a directory missing in /tmp is refused with what to do; under a root-owned 0755 directory in /tmp it is created 0700 and works; a link component, or a directory another user owns, is refused', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const u = testUser();
    const refused = (device: string, why: string) => {
      const r = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--device', device]);
      expect(r.code, r.stderr).toBe(254);
      expect(r.stderr).toContain(`(InvalidParameterValue) when calling the AttachVolume operation: Value (${device}) for parameter device is invalid: ${why}`);
    };
    const missing = freshTmpName();
    const createIt = `${missing} does not exist, and kmsvol does not create a directory in /tmp, where other users can create files (another user could make it first). Create it yourself (mkdir -m 0700 ${missing}), or choose another directory.`;
    refused(path.join(missing, 'y'), createIt);
    expect(fs.existsSync(missing)).toBe(false);

    const rootDir = tempHome('kmsvol-rootdir-'); // in /tmp, root's, 0700
    fs.chmodSync(rootDir, 0o755);
    fs.mkdirSync(path.join(rootDir, 'real'));
    fs.symlinkSync(path.join(rootDir, 'real'), path.join(rootDir, 'link'));
    fs.mkdirSync(path.join(rootDir, 'theirs'));
    fs.chownSync(path.join(rootDir, 'theirs'), u.uid, u.gid);
    refused(path.join(rootDir, 'link', 'm'), `${path.join(rootDir, 'link')} is a symbolic link, and kmsvol never mounts through one.`);
    refused(path.join(rootDir, 'theirs', 'm'), `${path.join(rootDir, 'theirs')} belongs to uid ${u.uid}, who could replace what is below it.`);
    // A '..' after a link would take the kernel elsewhere than the text says; a newline is ambiguous in the mount table.
    refused(`${path.join(rootDir, 'link')}/../x`, "a '..' component is not taken; give the directory's real path (realpath -m on it).");
    const nl = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--device', `${rootDir}/x\ny`]);
    expect(nl.code, nl.stderr).toBe(254);
    expect(nl.stderr).toContain(`Value (${rootDir}/x\\ny) for parameter device is invalid: it holds a control character`);
    expect(fs.readdirSync(path.join(rootDir, 'real'))).toEqual([]);
    expect(fs.readdirSync(path.join(rootDir, 'theirs'))).toEqual([]);
    expect(fs.existsSync(path.join(rootDir, 'x'))).toBe(false);

    const a = attach(ctx.home, vol, ['--device', path.join(rootDir, 'a', 'b')]);
    expect(a.Device).toBe(path.join(rootDir, 'a', 'b', vol));
    const made = fs.statSync(path.join(rootDir, 'a'));
    expect([made.uid, made.mode & 0o7777]).toEqual([0, 0o700]);
    expect(mountsUnder(path.join(rootDir, 'a', 'b'))).toHaveLength(1);
    detach(ctx.home, vol);
    expect(mountsUnder(rootDir)).toEqual([]);
  });
});

describe('finding 1: cleanup after a dead card releases only its own mount, through a descriptor', () => {
  /** A volume attached at a fresh root-owned directory whose card was then killed (-9) and has exited. */
  async function killedCard() {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const dir = path.join(tempHome('kmsvol-rootdir-'), 'm');
    onCleanup(() => unmountUnder(dir));
    attach(ctx.home, vol, ['--device', dir]);
    const registry = new Registry(path.join(ctx.home, 'ec2.db'));
    onCleanup(() => registry.close());
    expect(registry.getAttachment(vol)!.served_dev).toBe(fs.statSync(path.join(dir, vol)).dev);
    process.kill(cardPid(vol), 'SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
    return { ctx, vol, dir };
  }

  it("kill -9 of the card: describe-volumes releases the stale mount (the recorded device's), and records why", async () => {
    const { ctx, vol, dir } = await killedCard();
    expect(mountsUnder(dir)).toHaveLength(1); // the dead card's mount, until someone cleans up
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0]).toMatchObject({ State: 'available', Attachments: [] });
    expect(mountsUnder(dir)).toEqual([]);
    expect(events(ctx.home, vol).at(-1)).toMatchObject({ event: 'detachVolume', result: 'available', cause: 'card process exited' });
  });

  it('a stale attachment whose mount directory now holds another mount (a tmpfs over it) leaves that mount alone, and says so in the event', async () => {
    const { ctx, vol, dir } = await killedCard();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'someone-elses', dir]);
    fs.writeFileSync(path.join(dir, 'theirs'), "not the card's");
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    expect(fs.readFileSync(path.join(dir, 'theirs'), 'utf8')).toBe("not the card's"); // the tmpfs is still there
    const tmpfsDev = fs.statSync(dir).dev;
    const left = events(ctx.home, vol).find((e) => e.result === 'mount-left-alone');
    expect(left?.cause).toBe(`${dir} was left alone: what is mounted there now (tmpfs, device ${tmpfsDev}) is not the card's FUSE mount.`);
  });

  it("root mounts a tmpfs over an attached card's mount: a plain detach is refused as busy; --force ends the card without unmounting that tmpfs (umount would reach the top of the stack), and cleanup leaves it alone, with an event", () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const dir = path.join(tempHome('kmsvol-rootdir-'), 'm');
    onCleanup(() => unmountUnder(dir));
    attach(ctx.home, vol, ['--device', dir]);
    const pid = cardPid(vol);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'someone-elses', dir]);
    fs.writeFileSync(path.join(dir, 'theirs'), "not the card's");
    const plain = kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol]);
    expect(plain.code).toBe(254);
    expect(plain.stderr).toContain(
      `(IncorrectState) when calling the DetachVolume operation: Volume ${vol} is busy: another file system is mounted on or in ${dir}`,
    );
    expect(kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--force']).code).toBe(0);
    expect(cardPids(vol)).not.toContain(pid);
    expect(fs.readFileSync(path.join(dir, 'theirs'), 'utf8')).toBe("not the card's");
    expect(kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].State).toBe('available');
    expect(events(ctx.home, vol).map((e) => e.result)).toContain('mount-left-alone');
  });
});
