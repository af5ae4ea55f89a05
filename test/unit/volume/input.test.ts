import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../../src/api.js';
import { checkText } from '../../../src/volume/text.js';
import { availabilityZones, checkZone } from '../../../src/volume/zones.js';

/**
 * Finding 3 of issue 24, in the control plane (the CLI and the TypeScript
 * API reach it without the endpoint's decoder): strings XML cannot carry are
 * refused before anything is stored, and a zone must be one of the region's.
 */
const open: Kmsvol[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function api(): Kmsvol {
  const kv = Kmsvol.open({ region: 'us-east-1' });
  open.push(kv);
  return kv;
}

async function refusal(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  return p.then(
    () => ({ name: 'succeeded', message: '' }),
    (e: Error) => ({ name: e.name, message: e.message }),
  );
}

describe('Precondition: every string EC2 stores is text XML 1.0 can carry', () => {
  it('checkText refuses C0 controls other than tab, LF and CR, U+FFFE, U+FFFF and lone surrogates, naming the parameter and the character', () => {
    for (const c of ['\u0000', '\u0001', '\u0008', '\u000b', '\u000c', '\u001f', '\ufffe', '\uffff', '\ud800', '\udfff'])
      expect(() => checkText('Tag.Value', `x${c}`), JSON.stringify(c)).toThrow(
        expect.objectContaining({
          name: 'InvalidParameterValue',
          message: expect.stringMatching(/parameter Tag\.Value is invalid.*U\+[0-9A-F]{4} at offset 1/),
        }),
      );
    for (const ok of ['', 'plain', 'tab\there', 'lf\nand\rcr', 'é ü 日本 \u{1f600}', '\u007f']) expect(() => checkText('Tag.Value', ok)).not.toThrow();
  });

  it('CreateVolume through the API with a tag value holding \\x01 is InvalidParameterValue, and no volume is recorded', async () => {
    const kv = api();
    const r = await refusal(kv.createVolume({ Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'k', Value: 'a\u0001' }] }] }));
    expect(r).toMatchObject({ name: 'InvalidParameterValue', message: expect.stringContaining('parameter Tag.Value') });
    expect((await kv.describeVolumes()).Volumes).toEqual([]);
  });

  it("CreateVolume through the API with the zone $'us-east-1a\\x01' is InvalidParameterValue, us-east-1q is InvalidZone.NotFound in EC2's words, and neither is recorded", async () => {
    const kv = api();
    expect(await refusal(kv.createVolume({ Size: 1, AvailabilityZone: 'us-east-1a\u0001' }))).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('parameter AvailabilityZone'),
    });
    expect(await refusal(kv.createVolume({ Size: 1, AvailabilityZone: 'us-east-1q' }))).toMatchObject({
      name: 'InvalidZone.NotFound',
      message: expect.stringMatching(/^The zone 'us-east-1q' does not exist\./),
    });
    expect((await kv.describeVolumes()).Volumes).toEqual([]);
  });

  it("a zone of the region is accepted and kept; none named is the region's first, where this host's instance is", async () => {
    const kv = api();
    expect((await kv.createVolume({ Size: 1, AvailabilityZone: 'us-east-1f' })).AvailabilityZone).toBe('us-east-1f');
    expect((await kv.createVolume({ Size: 1 })).AvailabilityZone).toBe('us-east-1a');
  });
});

describe('Availability Zones', () => {
  it("are each region's real zones: us-east-1 a-f, eu-west-3 a-c, ap-northeast-1 a/c/d, us-west-1 b/c; a zone of another region or a letter the region lacks is refused", () => {
    expect(availabilityZones('eu-west-3')).toEqual(['eu-west-3a', 'eu-west-3b', 'eu-west-3c']);
    expect(availabilityZones('us-east-1')).toHaveLength(6);
    expect(availabilityZones('ap-northeast-1')).toEqual(['ap-northeast-1a', 'ap-northeast-1c', 'ap-northeast-1d']);
    expect(checkZone('eu-west-3', 'eu-west-3c')).toBe('eu-west-3c');
    expect(checkZone('us-west-1', undefined)).toBe('us-west-1b');
    for (const [region, bad] of [
      ['eu-west-3', 'us-east-1a'],
      ['eu-west-3', 'eu-west-3d'],
      ['eu-west-3', 'eu-west-3f'],
      ['eu-west-3', 'eu-west-3g'],
      ['eu-west-3', 'eu-west-3'],
      ['eu-west-3', 'EU-WEST-3A'],
      ['eu-west-3', 'eu-west-3a '],
      ['eu-west-3', ''],
      ['ap-northeast-1', 'ap-northeast-1b'],
      ['us-west-1', 'us-west-1a'],
    ])
      expect(() => checkZone(region!, bad!), bad).toThrow(expect.objectContaining({ name: 'InvalidZone.NotFound' }));
  });
});
