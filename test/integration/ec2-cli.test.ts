import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';
import { createVolume, volumeHome } from '../helpers/volumes.js';

/** kmsvol's own `ec2` commands with the AWS CLI's options (no endpoint: the embedded KMS, the same control plane). */
describe('kmsvol ec2 with the AWS CLI options', () => {
  it('create-volume answers as EC2 does, with --iops, --throughput, --tag-specifications; --dry-run both ways', () => {
    const home = tempHome();
    const key = kmsvol(home, ['kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const dry = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--dry-run']);
    expect(dry.code).toBe(254);
    expect(dry.stderr).toContain(
      'An error occurred (DryRunOperation) when calling the CreateVolume operation: Request would have succeeded, but DryRun flag is set.',
    );
    const bad = kmsvol(home, ['ec2', 'create-volume', '--size', '0', '--dry-run']);
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('(InvalidParameterValue)');
    expect(kmsvol(home, ['ec2', 'describe-volumes']).json.Volumes).toEqual([]);

    const v = kmsvol(home, [
      'ec2',
      'create-volume',
      // gp3 (the default is gp2, which takes no IOPS or throughput); 4,000 IOPS needs 8 GiB (500 per GiB).
      '--volume-type',
      'gp3',
      '--size',
      '8',
      '--encrypted',
      '--kms-key-id',
      key,
      '--iops',
      '4000',
      '--throughput',
      '300',
      '--tag-specifications',
      'ResourceType=volume,Tags=[{Key=Name,Value=web},{Key=team,Value=blue}]',
    ]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toMatchObject({
      State: 'creating',
      KmsKeyId: key,
      Iops: 4000,
      Throughput: 300,
      Tags: [
        { Key: 'Name', Value: 'web' },
        { Key: 'team', Value: 'blue' },
      ],
    });
    expect(v.json.Attachments).toBeUndefined();
    const d = kmsvol(home, ['ec2', 'describe-volumes', '--filters', 'Name=tag:team,Values=blue', 'Name=status,Values=available']).json.Volumes;
    expect(d.map((x: { VolumeId: string }) => x.VolumeId)).toEqual([v.json.VolumeId]);
    const dt = kmsvol(home, ['ec2', 'delete-volume', '--volume-id', v.json.VolumeId, '--dry-run']);
    expect(dt.stderr).toContain('(DryRunOperation)');
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', v.json.VolumeId]).json.Volumes[0].State).toBe('available');
  });

  it('--max-results/--next-token page; tags; modify-volume; describe-instances', () => {
    const home = tempHome();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId);
    const p1 = kmsvol(home, ['ec2', 'describe-volumes', '--max-results', '5']).json;
    expect(p1.Volumes).toHaveLength(5);
    const p2 = kmsvol(home, ['ec2', 'describe-volumes', '--max-results', '5', '--next-token', p1.NextToken]).json;
    expect(p2.Volumes).toHaveLength(1);
    expect(p2.NextToken).toBeUndefined();
    expect([...p1.Volumes, ...p2.Volumes].map((x: { VolumeId: string }) => x.VolumeId).sort()).toEqual([...ids].sort());

    expect(kmsvol(home, ['ec2', 'create-tags', '--resources', ids[0]!, ids[1]!, '--tags', 'Key=env,Value=test']).code).toBe(0);
    expect(
      kmsvol(home, ['ec2', 'describe-tags', '--filters', 'Name=key,Values=env'])
        .json.Tags.map((t: { ResourceId: string }) => t.ResourceId)
        .sort(),
    ).toEqual([ids[0], ids[1]].sort());
    expect(kmsvol(home, ['ec2', 'delete-tags', '--resources', ids[0]!, '--tags', 'Key=env']).code).toBe(0);
    expect(kmsvol(home, ['ec2', 'describe-tags']).json.Tags.map((t: { ResourceId: string }) => t.ResourceId)).toEqual([ids[1]]);

    const m = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', ids[2]!, '--size', '3']);
    expect(m.code, m.stderr).toBe(0);
    expect(m.json.VolumeModification).toMatchObject({ ModificationState: 'modifying', OriginalSize: 1, TargetSize: 3 });
    expect(kmsvol(home, ['ec2', 'describe-volumes-modifications', '--volume-ids', ids[2]!]).json.VolumesModifications[0]).toMatchObject({
      ModificationState: 'completed',
      Progress: 100,
    });
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', ids[2]!]).json.Volumes[0].Size).toBe(3);
    const shrink = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', ids[2]!, '--size', '2']);
    expect(shrink.code).toBe(254);
    expect(shrink.stderr).toContain('(InvalidParameterValue)');

    const inst = kmsvol(home, ['ec2', 'describe-instances']).json.Reservations[0].Instances[0];
    expect(inst.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(kmsvol(home, ['ec2', 'describe-instances', '--query', 'Reservations[0].Instances[0].InstanceId', '--output', 'text']).stdout.trim()).toBe(
      inst.InstanceId,
    );
  });

  it('modify-volume at most 4 times in 24 hours: the fifth exits 254 with VolumeModificationRateExceeded naming when; with KMSVOL_NOW a day on, it is taken', () => {
    const home = tempHome();
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
    const at = (h: number) => ({ KMSVOL_NOW: new Date(t0.getTime() + h * 3_600_000).toISOString() });
    const id = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted'], at(0)).json.VolumeId;
    for (let i = 0; i < 4; i++) {
      const m = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', id, '--size', String(2 + i)], at(i));
      expect(m.code, m.stderr).toBe(0);
    }
    const fifth = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', id, '--size', '9'], at(5));
    expect(fifth.code).toBe(254);
    expect(fifth.stderr).toContain(
      `An error occurred (VolumeModificationRateExceeded) when calling the ModifyVolume operation: You've reached the maximum modification rate per volume limit: ${id} was modified 4 times in the last 24 hours (at most 4). Wait until ${at(24).KMSVOL_NOW} to modify it again.`,
    );
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', id], at(5)).json.Volumes[0].Size).toBe(5);
    const later = kmsvol(home, ['ec2', 'modify-volume', '--volume-id', id, '--size', '9'], at(24.01));
    expect(later.code, later.stderr).toBe(0);
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', id], at(24.01)).json.Volumes[0].Size).toBe(9);
  });

  it("the AWS CLI's own pagination (--page-size, --max-items, --starting-token, --no-paginate), --output yaml and table, --cli-input-json/yaml, --generate-cli-skeleton", () => {
    const home = tempHome();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']).json.VolumeId);
    const all = kmsvol(home, ['ec2', 'describe-volumes', '--page-size', '5']).json;
    expect(all.Volumes.map((v: { VolumeId: string }) => v.VolumeId).sort()).toEqual([...ids].sort());
    expect(all.NextToken).toBeUndefined();
    const seen: string[] = [];
    let token: string | undefined;
    for (let round = 0; round < 5; round++) {
      const r = kmsvol(home, ['ec2', 'describe-volumes', '--max-items', '3', '--page-size', '5', ...(token ? ['--starting-token', token] : [])]).json;
      seen.push(...r.Volumes.map((v: { VolumeId: string }) => v.VolumeId));
      token = r.NextToken;
      if (!token) break;
    }
    expect(seen).toEqual(all.Volumes.map((v: { VolumeId: string }) => v.VolumeId));
    expect(kmsvol(home, ['ec2', 'describe-volumes', '--no-paginate', '--max-results', '5']).json.Volumes).toHaveLength(5);

    const yaml = kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', ids[0]!, '--output', 'yaml']);
    expect(YAML.parse(yaml.stdout)).toEqual(kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', ids[0]!]).json);
    const table = kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', ids[0]!, '--output', 'table']).stdout;
    expect(table.split('\n')[0]).toBe('DescribeVolumes');
    // One volume is wider than 120 columns as a row: drawn as key | value rows, as the AWS CLI turns it.
    expect(table).toMatch(new RegExp(`│ VolumeId +│ ${ids[0]} +│`));

    const skeleton = JSON.parse(kmsvol(home, ['ec2', 'create-volume', '--generate-cli-skeleton']).stdout);
    expect(Object.keys(skeleton)).toEqual(expect.arrayContaining(['Size', 'Encrypted', 'KmsKeyId', 'TagSpecifications', 'ClientToken', 'DryRun']));
    const input = JSON.stringify({ Size: 2, VolumeType: 'gp2', TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'from', Value: 'json' }] }] });
    const v = kmsvol(home, ['ec2', 'create-volume', '--cli-input-json', input, '--no-encrypted']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toMatchObject({ Size: 2, VolumeType: 'gp2', Tags: [{ Key: 'from', Value: 'json' }] });
    const y = kmsvol(home, ['ec2', 'delete-volume', '--cli-input-yaml', `VolumeId: ${v.json.VolumeId}\nDryRun: true\n`]);
    expect(y.stderr).toContain('(DryRunOperation)');
    expect(kmsvol(home, ['ec2', 'delete-volume', '--cli-input-yaml', `VolumeId: ${v.json.VolumeId}\n`]).code).toBe(0);
    const none = kmsvol(home, ['ec2', 'delete-volume']);
    expect([none.code, none.stderr.includes('the following arguments are required: --volume-id')]).toEqual([252, true]);
  });

  it('detach-volume --device and --instance-id must match the attachment, as in EC2: InvalidAttachment.NotFound (also under --dry-run), and the volume stays attached', () => {
    const ctx = volumeHome();
    const vol = createVolume(ctx.home, ctx.key);
    const dir = path.join(ctx.home, 'dev-here');
    const a = kmsvol(ctx.home, ['ec2', 'attach-volume', '--volume-id', vol, '--device', dir]);
    expect(a.code, a.stderr).toBe(0);
    const attached = () => kmsvol(ctx.home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].Attachments;
    const shown = attached()[0].Device;
    expect(shown).toBe(path.join(dir, vol));
    const other = path.join(ctx.home, 'elsewhere');
    for (const extra of [[], ['--dry-run']]) {
      const wrong = kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--device', other, ...extra]);
      expect(wrong.code, wrong.stderr).toBe(254);
      expect(wrong.stderr).toContain(
        `An error occurred (InvalidAttachment.NotFound) when calling the DetachVolume operation: Volume '${vol}' is not attached at '${other}'; it is attached at '${shown}'.`,
      );
      const instance = kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--instance-id', 'i-0123456789abcdef0', ...extra]);
      expect(instance.code, instance.stderr).toBe(254);
      expect(instance.stderr).toContain('(InvalidAttachment.NotFound)');
    }
    expect(attached()).toMatchObject([{ State: 'attached', Device: shown }]);
    expect(kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--device', shown, '--dry-run']).stderr).toContain('(DryRunOperation)');
    // The directory given to attach-volume --device names it too.
    const d = kmsvol(ctx.home, ['ec2', 'detach-volume', '--volume-id', vol, '--device', dir]);
    expect(d.code, d.stderr).toBe(0);
    expect(attached()).toEqual([]);
  });
});
