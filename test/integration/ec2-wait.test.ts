import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { attach, volumeHome } from '../helpers/volumes.js';

/**
 * create-volume and detach-volume print EC2's answer as the AWS CLI does
 * (the volume `creating`, the attachment `detaching`); with --wait they
 * print the state the AWS CLI's waiters wait for (`aws ec2 wait
 * volume-available`): the volume `available`, the attachment `detached`.
 */
describe('ec2 --wait', () => {
  it('create-volume: creating by default; --wait prints the volume available', () => {
    const { home, key } = volumeHome();
    const plain = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json.State).toBe('creating');
    const waited = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--wait']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.json).toMatchObject({ State: 'available', Size: 1, Encrypted: true, Attachments: [] });
    const described = kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', waited.json.VolumeId]).json.Volumes[0];
    expect(waited.json).toEqual(described);
  });

  it('detach-volume: detaching by default; --wait prints the attachment detached', () => {
    const { home, key } = volumeHome();
    const ids = [0, 1].map(() =>
      kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text']).stdout.trim(),
    );
    for (const id of ids) attach(home, id);
    const plain = kmsvol(home, ['ec2', 'detach-volume', '--volume-id', ids[0]!]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json.State).toBe('detaching');
    const waited = kmsvol(home, ['ec2', 'detach-volume', '--volume-id', ids[1]!, '--wait']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.json).toMatchObject({ State: 'detached', VolumeId: ids[1] });
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', ids[1]!]).json.Volumes[0]).toMatchObject({ State: 'available', Attachments: [] });
  });
});
