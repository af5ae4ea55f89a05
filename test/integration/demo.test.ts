import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

describe('npm start (kmsvol demo)', () => {
  it('runs the seed story end to end and leaves nothing behind', () => {
    const r = kmsvol(tempHome(), ['demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('attach failed: An error occurred (DisabledException) when calling the AttachVolume operation');
    expect(r.stdout).toContain('hello.txt: written after the key was disabled');
    expect(r.stdout).toContain('An error occurred (NotFoundException) when calling the AttachVolume operation');
    expect(r.stdout).toMatch(
      /grant kmsvol-card-vol-[0-9a-f]+: arn:aws:sts::000000000000:assumed-role\/kmsvol-card\/vol-[0-9a-f]+ may Decrypt with \{"EncryptionContextSubset":\{"aws:ebs:id":"vol-[0-9a-f]+"\}\}/,
    );
    expect(r.stdout).toContain('grants on the key: none');
    expect(r.stdout).toContain('The story is complete.');
    const home = /temporary home (\S+)/.exec(r.stdout)![1]!;
    expect(fs.existsSync(home)).toBe(false);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(home);
    // No loop device is left backed by a file of the demo's home.
    const backing = fs
      .readdirSync('/sys/block')
      .filter((d) => d.startsWith('loop') && fs.existsSync(`/sys/block/${d}/loop/backing_file`))
      .map((d) => fs.readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8'));
    expect(backing.filter((b) => b.startsWith(home))).toEqual([]);
  });
});
