import { describe, expect, it } from 'vitest';
import { kmsvol, kmsvolAsync } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: one modification of a volume at a time (IncorrectModificationState
 * while one is modifying or optimizing, as EC2 answers). ModifyVolume checks
 * that before its write transaction and checks only the rate inside it, so
 * two processes (the CLI and `kmsvol serve`, or serve --workers 2) that plan
 * at once both start: two modifications of one volume run together, and the
 * one that finishes last sets the volume's size, even when it is the smaller
 * (the registry then says 2 GiB of a 3 GiB image; attached, the card is
 * resized down to it). Each pair here is two CLI processes started together
 * (no card, no loop device); at most one of each pair may be accepted.
 */
describe('ModifyVolume: one modification at a time, across processes', () => {
  it('of two concurrent modifications of one volume, the second is IncorrectModificationState', async () => {
    const home = tempHome('kmsvol-modrace-');
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const vol = kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId as string;
      const [a, b] = await Promise.all(
        ['2', '3'].map((size) => kmsvolAsync(home, ['ec2', 'modify-volume', '--volume-id', vol, '--size', size, '--query', 'VolumeModification.TargetSize'])),
      );
      for (const r of [a!, b!]) expect(r.code === 0 || /IncorrectModificationState|New size cannot be smaller/.test(r.stderr), r.stderr).toBe(true);
      outcomes.push(`${vol}: ${[a!, b!].filter((r) => r.code === 0).length} accepted`);
    }
    expect(outcomes.filter((o) => o.endsWith('2 accepted'))).toEqual([]);
  });
});
