import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { volumeHome } from '../helpers/volumes.js';

/**
 * The card works in the region its caller chose, however it was chosen: the
 * volume's data key lives in that region's KMS namespace, and a card that
 * opened another region's KMS could not unwrap it.
 */
describe('regions reach the card', () => {
  for (const [how, args, env] of [
    ['--region', ['--region', 'us-east-1'], {}],
    ['AWS_REGION', [], { AWS_REGION: 'eu-west-1', KMSVOL_REGION: '' }],
  ] as const) {
    it(`a volume created and attached with ${how} attaches and detaches`, () => {
      const { home } = volumeHome();
      const created = kmsvol(home, [...args, 'ec2', 'create-volume', '--size', '1', '--encrypted'], { ...env });
      expect(created.code, created.stderr).toBe(0);
      // No key named: create-volume answers none, as EC2 does; describe-volumes shows the default key's ARN.
      expect(created.json.KmsKeyId).toBeUndefined();
      const described = kmsvol(home, [...args, 'ec2', 'describe-volumes', '--volume-ids', created.json.VolumeId], { ...env }).json.Volumes[0];
      expect(described.KmsKeyId).toMatch(how === '--region' ? /^arn:aws:kms:us-east-1:/ : /^arn:aws:kms:eu-west-1:/);
      const a = kmsvol(home, [...args, 'ec2', 'attach-volume', '--volume-id', created.json.VolumeId], { ...env });
      expect(a.code, a.stderr).toBe(0);
      expect(a.json.State).toBe('attached');
      const d = kmsvol(home, [...args, 'ec2', 'detach-volume', '--volume-id', created.json.VolumeId], { ...env });
      expect(d.code, d.stderr).toBe(0);
    });
  }
});
