import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { S } from '../../../src/ec2/members.js';
import { decodeRequest, encodeError, encodeResponse } from '../../../src/server/ec2/protocol.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * Finding 3 of issue 24: a control character stored in a tag value was
 * written raw into the EC2 XML, and no client could parse DescribeVolumes
 * again. The oracle for "parses" is Python's expat (the parser under boto3
 * and the AWS CLI), not the library that wrote the document.
 */
function expat(xml: string): { ok: boolean; text: string } {
  const py = `import sys, json, xml.etree.ElementTree as ET
try:
    root = ET.fromstring(sys.stdin.buffer.read())
    print(json.dumps({"ok": True, "text": [e.text for e in root.iter() if e.tag.endswith("value")]}))
except ET.ParseError as e:
    print(json.dumps({"ok": False, "text": str(e)}))`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { input: Buffer.from(xml, 'utf8') });
  const out = JSON.parse(r.stdout.toString());
  return { ok: out.ok, text: JSON.stringify(out.text) };
}

const NASTY = 'a\u0001b<c>&d"e\'f\rg\u0000h\ud800i\uffffj]]>k';

function srcFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? srcFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the endpoint writes XML through one escaping writer', () => {
  it('every XML the server writes is built by src/server/xml.ts: no other file uses an XML builder or writes a declaration', () => {
    const writers = srcFiles(path.join(ROOT, 'src')).filter((f) => /XMLBuilder|<\?xml/.test(fs.readFileSync(f, 'utf8')));
    expect(writers.map((f) => path.relative(ROOT, f))).toEqual(['src/server/xml.ts']);
  });

  it('a DescribeVolumes answer holding control characters, markup, CR, a lone surrogate and U+FFFF parses in expat; CR and markup survive, the rest become U+FFFD', () => {
    const xml = encodeResponse('DescribeVolumes', 'r-1', { Volumes: [{ VolumeId: 'vol-1', Tags: [{ Key: 'k', Value: NASTY }] }] });
    const parsed = expat(xml);
    expect(parsed.ok, parsed.text).toBe(true);
    expect(JSON.parse(parsed.text)).toEqual(['a\ufffdb<c>&d"e\'f\rg\ufffdh\ufffdi\ufffdj]]>k']);
  });

  it("an error document echoing a refused value parses in expat (EC2's and STS's shapes go through the same writer)", () => {
    const parsed = expat(encodeError('InvalidParameterValue', `Value (${NASTY}) is invalid`, 'r-2'));
    expect(parsed.ok, parsed.text).toBe(true);
  });
});

describe('the EC2 Query decoder', () => {
  const createVolume = { AvailabilityZone: S.str, Size: S.int, TagSpecifications: S.tagSpecifications };

  it('refuses a control character in any string parameter with InvalidParameterValue naming the parameter, without echoing it raw', () => {
    const p = new URLSearchParams({
      Size: '1',
      'TagSpecification.1.ResourceType': 'volume',
      'TagSpecification.1.Tag.1.Key': 'k',
      'TagSpecification.1.Tag.1.Value': 'v\u0001',
    });
    expect(() => decodeRequest(createVolume, p)).toThrow(
      expect.objectContaining({
        name: 'InvalidParameterValue',
        message: expect.stringMatching(/^Value \(v\\u0001\) for parameter TagSpecification\.1\.Tag\.1\.Value is invalid\. .*U\+0001/),
      }),
    );
    expect(() => decodeRequest(createVolume, new URLSearchParams({ AvailabilityZone: 'us-east-1a\u0001' }))).toThrow(
      expect.objectContaining({ name: 'InvalidParameterValue', message: expect.stringContaining('parameter AvailabilityZone') }),
    );
    // Tab, LF and CR are text.
    expect(decodeRequest(createVolume, new URLSearchParams({ AvailabilityZone: 'a\tb\nc\rd' })).AvailabilityZone).toBe('a\tb\nc\rd');
  });

  it('decodes lists by index in numeric order, refuses names no member has (UnknownParameter, in request order), and integers past 32 bits', () => {
    const describe = { Filters: S.filters, MaxResults: S.int };
    const p = new URLSearchParams({
      'Filter.10.Name': 'b',
      'Filter.10.Value.1': 'y',
      'Filter.2.Name': 'a',
      'Filter.2.Value.2': 'x2',
      'Filter.2.Value.1': 'x1',
    });
    expect(decodeRequest(describe, p)).toEqual({
      Filters: [
        { Name: 'a', Values: ['x1', 'x2'] },
        { Name: 'b', Values: ['y'] },
      ],
    });
    expect(() => decodeRequest(describe, new URLSearchParams({ 'Filter.1.Name': 'a', 'Filter.1.Bogus': 'x', 'Filter.0.Name': 'z' }))).toThrow(
      expect.objectContaining({ name: 'UnknownParameter', message: 'The parameter Filter.1.Bogus is not recognized.' }),
    );
    expect(decodeRequest(describe, new URLSearchParams({ MaxResults: '2147483647' })).MaxResults).toBe(2147483647);
    for (const bad of ['2147483648', '99999999999999999999999', '1e3', ''])
      expect(() => decodeRequest(describe, new URLSearchParams({ MaxResults: bad }))).toThrow(expect.objectContaining({ name: 'InvalidParameterValue' }));
  });
});
