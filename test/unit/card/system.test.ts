import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { killPending, processAlive } from '../../../src/card/system.js';

describe('processAlive', () => {
  it('is false for an exited card that nobody has reaped yet (a zombie), so detach does not wait on its reaper', async () => {
    // `sleep 0` is started by a shell that then becomes `sleep 30` and never reaps it: it stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d) => r(String(d).trim()))));
      const state = () => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
      // Wait for the condition, not for a time: the child has exited once its state is Z.
      for (let i = 0; i < 1000 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 5));
      expect(state()).toBe('Z');
      expect(processAlive(pid)).toBe(false);
      expect(processAlive(parent.pid!)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('unstick preconditions: what a stuck card is', () => {
  it('killPending is false for a healthy process', async () => {
    const card = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', 'vol-0123456789abcdef0'], { stdio: 'ignore' });
    try {
      await new Promise((r) => card.once('spawn', r));
      expect(killPending(card.pid!)).toBe(false);
    } finally {
      card.kill('SIGKILL');
    }
  });
});
