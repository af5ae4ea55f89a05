import { describe, expect, it } from 'vitest';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: one modification of a volume at a time (IncorrectModificationState
 * while one is modifying or optimizing, as EC2 answers), each planned from the
 * volume as the one before left it. ModifyVolume plans (reads the volume and
 * its last modification) before its write transaction and checks only the
 * rate inside it, so two processes (the CLI and `kmsvol serve`, or serve
 * --workers 2) that plan at once both start from the same size: two
 * modifications of one volume run together, and the one that finishes last
 * sets the volume's size, even when it is the smaller. Seen by hand:
 * 1 -> 2 and 1 -> 3 both accepted, the volume then 2 GiB in the registry and
 * its image 3 GiB (attached, the card would be resized down). Each pair here
 * is two CLI processes started together (no card, no loop device); both may
 * be accepted only one after the other, the second from the first's size.
 */
interface Mod {
  OriginalSize: number;
  TargetSize: number;
}

describe('ModifyVolume: one modification at a time, across processes', () => {
  it('two concurrent modifications never both start from the same size; the volume ends at the largest size accepted', async () => {
    const home = tempHome('kmsvol-modrace-');
    const wrong: string[] = [];
    for (let i = 0; i < 8; i++) {
      const vol = kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId as string;
      const pair = await Promise.all(['2', '3'].map((size) => kmsvolAsync(home, ['ec2', 'modify-volume', '--volume-id', vol, '--size', size])));
      for (const r of pair) expect(r.code === 0 || /IncorrectModificationState|New size cannot be smaller/.test(r.stderr), r.stderr).toBe(true);
      const accepted = pair.filter((r) => r.code === 0).map((r) => r.json.VolumeModification as Mod);
      const size = kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].Size as number;
      if (accepted.length === 2 && accepted[0]!.OriginalSize === accepted[1]!.OriginalSize)
        wrong.push(`${vol}: both started from ${accepted[0]!.OriginalSize} GiB`);
      if (size !== Math.max(...accepted.map((m) => m.TargetSize))) wrong.push(`${vol}: ${size} GiB after ${JSON.stringify(accepted)}`);
    }
    expect(wrong).toEqual([]);
  });
});
