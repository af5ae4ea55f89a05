// A smoke run of the e2e bench (bench/e2e.mjs --quick on two jobs): it
// attaches a real volume, makes ext4 on real loop devices and mounts
// gocryptfs, so what it checks is what the lead's full run relies on: every
// target gives a figure, the samples carry the load they were taken under,
// and nothing is left mounted, attached or running afterwards, also after a
// Ctrl-C in the middle of a job.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, kmsvol, ROOT } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = process.getuid?.() === 0 && have('fio') && have('gocryptfs') && fs.existsSync('/dev/fuse');

/** What a run left below `dir`: mounts, loop devices over files there, and processes (cards, gocryptfs) naming it. */
function leftBelow(dir: string): string[] {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir));
  const loops = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes(dir));
  const procs = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir) || fs.readlinkSync(`/proc/${p}/cwd`).startsWith(dir);
      } catch {
        return false;
      }
    });
  return [...mounts, ...loops, ...procs.map((p) => `pid ${p}`)];
}

/** Release what a failed run left below `dir` (the test's own cleanup, whatever the bench did). */
function release(dir: string): void {
  const mounts = () =>
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(`${dir}/`));
  const home = path.join(dir, 'home');
  for (const m of mounts().filter((m) => !m.startsWith(`${home}/`))) spawnSync('umount', ['-l', m]);
  if (fs.existsSync(home)) {
    const env = { ...process.env, KMSVOL_HOME: home };
    const ids = kmsvol(home, ['ec2', 'describe-volumes', '--query', 'Volumes[?Attachments[0]].VolumeId', '--output', 'text']).stdout;
    for (const id of ids.split(/\s+/).filter(Boolean)) spawnSync(process.execPath, [BIN, 'ec2', 'detach-volume', '--volume-id', id, '--force'], { env });
  }
  for (const l of leftBelow(dir).filter((x) => x.startsWith('/dev/loop'))) spawnSync('losetup', ['-d', l.split(/\s+/)[0]]);
  for (const m of mounts()) spawnSync('umount', ['-l', m]);
}

/** A fresh directory for one run, released and removed after the test even when it fails. */
function base(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-e2e-'));
  onCleanup(() => {
    release(path.join(dir, 'work'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Run the bench; resolve with its exit code and stderr. `onLine` sees each stderr line as it comes. */
function bench(args: string[], onLine: (line: string, child: ReturnType<typeof spawn>) => void = () => {}) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/e2e.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => {
    for (const line of String(d).split('\n')) if (line) onLine(line, child);
    err += d;
  });
  child.stdout.resume();
  return new Promise<{ code: number | null; err: string }>((resolve) => child.on('close', (code) => resolve({ code, err })));
}

describe.skipIf(!canRun)('e2e bench, quick', () => {
  it('gives every target a figure per job with its load, and leaves nothing behind', async () => {
    const dir = base();
    const work = path.join(dir, 'work');
    const out = path.join(dir, 'out.json');
    const { code, err } = await bench(['--quick', '--jobs', 'seqWrite,seqRead', '--work', work, '--out', out]);
    expect(code, err).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, 'utf8'));
    for (const job of ['seqWrite', 'seqRead'])
      for (const target of ['kmsvol', 'plain', 'gocryptfs']) {
        const s = res.samples.filter((x: { job: string; target: string }) => x.job === job && x.target === target);
        expect(s, `${job} on ${target}`).toHaveLength(1);
        expect(s[0].value).toBeGreaterThan(0);
        expect(typeof s[0].loadavg).toBe('number');
      }
    // What reached the disk under the targets is counted per sample (when the work directory is on a block device, as here).
    const dev = fs.statSync(dir).dev;
    if (fs.existsSync(`/sys/dev/block/${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}/stat`))
      for (const s of res.samples.filter((x: { job: string }) => x.job === 'seqWrite')) expect(s.diskWriteMiB, s.target).toBeGreaterThanOrEqual(64);
    // The card's own CPU is measured (it wrote and read 64 MiB through the cipher).
    expect(res.samples.find((x: { target: string }) => x.target === 'kmsvol').serverCpuS).toBeGreaterThan(0);
    expect(res.summary.map((s: { ratios: object }) => Object.keys(s.ratios).sort())).toEqual([
      ['gocryptfs', 'plain'],
      ['gocryptfs', 'plain'],
    ]);
    expect(leftBelow(work)).toEqual([]);
    expect(fs.existsSync(work)).toBe(false);
  });

  // Once the first figure is in, every target is set up: stop the bench in the next job.
  for (const [how, stop, exit] of [
    ['Ctrl-C', (child: ReturnType<typeof spawn>) => child.kill('SIGINT'), 130],
    [
      'its output piped into a reader that goes away (`| head`)',
      (child: ReturnType<typeof spawn>) => {
        child.stderr?.destroy(); // the bench's next line meets a closed pipe (EPIPE)
        child.stdout?.destroy();
      },
      141,
    ],
  ] as const) {
    it(`${how} in the middle of a job releases the mounts, the loop devices, the card and gocryptfs`, async () => {
      const dir = base();
      const work = path.join(dir, 'work');
      let held: string[] = [];
      const { code } = await bench(['--quick', '--jobs', 'seqWrite,seqRead', '--work', work, '--out', path.join(dir, 'out.json')], (line, child) => {
        if (line.startsWith('[rep 1/1] seqWrite') && !held.length) {
          held = leftBelow(work);
          stop(child);
        }
      });
      expect(held.length).toBeGreaterThan(3); // it was stopped with mounts, loops and processes held
      expect(code).toBe(exit);
      expect(leftBelow(work)).toEqual([]);
      expect(fs.existsSync(work)).toBe(false);
    });
  }
});
