import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './cli.js';

export const WRITER = path.join(ROOT, 'test/helpers/crash-writer.mjs');

/** A small seeded generator (mulberry32), so a failing run can be replayed with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The acknowledged records of a crash-writer run (ACK lines "seq sha256 [logpos]")
 * that are not whole in FILE: seq in place, checksum right. With `upTo`, only
 * records acknowledged before that position of the I/O log count.
 */
export function lostRecords(file: string, ackLog: string, first: number, upTo = Infinity): string[] {
  const data = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
  const lost: string[] = [];
  for (const line of fs.readFileSync(ackLog, 'utf8').split('\n').filter(Boolean)) {
    const [seqText, sum, pos] = line.split(' ');
    if (pos !== undefined && Number(pos) > upTo) continue;
    const seq = Number(seqText);
    const rec = data.subarray((seq - first) * 4096, (seq - first + 1) * 4096);
    const ok =
      rec.length === 4096 &&
      rec.readBigUInt64LE(0) === BigInt(seq) &&
      rec.subarray(4064).toString('hex') === sum &&
      crypto.createHash('sha256').update(rec.subarray(0, 4064)).digest('hex') === sum;
    if (!ok) lost.push(`${path.basename(file)}#${seq}`);
  }
  return lost;
}

/**
 * Build the LD_PRELOAD shim (test/helpers/iolog-shim.c) into a temporary directory, with its settings
 * compiled in (the card's environment carries LD_PRELOAD but no other variable of ours); returns the .so path.
 */
export function buildShim(dir: string, o: { iolog?: string; match: string; eioAt?: number }): string {
  const so = path.join(dir, `iolog-${crypto.randomUUID()}.so`);
  const defs = [`-DIOLOG_MATCH=${JSON.stringify(o.match)}`];
  if (o.iolog !== undefined) defs.push(`-DIOLOG_FILE=${JSON.stringify(o.iolog)}`);
  if (o.eioAt !== undefined) defs.push(`-DIOLOG_EIO_AT=${o.eioAt}LL`);
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', ...defs, '-o', so, path.join(ROOT, 'test/helpers/iolog-shim.c'), '-ldl']);
  return so;
}

export interface IoEntry {
  op: 'W' | 'S' | 'E';
  /** W: byte offset in the image; S/E: the flush's number. */
  off: number;
  data?: Buffer;
  /** Where the entry ends in the log file (acks carry the log size). */
  end: number;
}

export function readIoLog(file: string): IoEntry[] {
  const b = fs.readFileSync(file);
  const out: IoEntry[] = [];
  for (let p = 0; p < b.length; ) {
    const op = String.fromCharCode(b[p]!) as IoEntry['op'];
    const off = Number(b.readBigUInt64LE(p + 1));
    const len = b.readUInt32LE(p + 9);
    const data = op === 'W' ? b.subarray(p + 13, p + 13 + len) : undefined;
    p += 13 + (op === 'W' ? len : 0);
    out.push({ op, off, data, end: p });
  }
  return out;
}

/**
 * The image as it could stand after a power cut at entry `at`: every write
 * logged before the start of a flush that completed by then, plus a random
 * subset of the later ones (a disk may persist them in any order).
 */
export function crashImage(base: string, log: IoEntry[], at: number, random: () => number, out: string): { durable: number; extra: number } {
  const starts = new Map<number, number>();
  let durableEnd = 0;
  for (let i = 0; i <= at; i++) {
    const e = log[i]!;
    if (e.op === 'S') starts.set(e.off, i);
    if (e.op === 'E') durableEnd = Math.max(durableEnd, starts.get(e.off)!);
  }
  execFileSync('cp', ['--sparse=always', base, out]);
  const fd = fs.openSync(out, 'r+');
  let durable = 0;
  let extra = 0;
  try {
    for (let i = 0; i <= at; i++) {
      const e = log[i]!;
      if (e.op !== 'W') continue;
      if (i < durableEnd) durable++;
      else if (random() < 0.5) extra++;
      else continue;
      fs.writeSync(fd, e.data!, 0, e.data!.length, e.off);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { durable, extra };
}
