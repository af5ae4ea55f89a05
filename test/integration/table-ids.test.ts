import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * Adversarial review (breaker2), as a new user: `--output table` now fits
 * 120 columns by wrapping cells, and it wraps identifiers too. With two
 * volumes, describe-volumes shows `vol-53cb00` on one line and `27abc7bb2a`
 * on the next, so the id a user copies from the table is not an id (the AWS
 * CLI never breaks a value; it lets the table be wide). Ids, ARNs and dates
 * should stay whole (wrap on the column headers, or fall back to a list).
 */
describe('--output table keeps identifiers whole', () => {
  it('every volume id of describe-volumes appears unbroken on one line', () => {
    const home = tempHome();
    const ids = [1, 2].map(() => kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--query', 'VolumeId', '--output', 'text']).stdout.trim());
    const r = kmsvol(home, ['ec2', 'describe-volumes', '--output', 'table'], { COLUMNS: '' });
    expect(r.code, r.stderr).toBe(0);
    for (const id of ids) expect(r.stdout).toContain(id);
  });
});
