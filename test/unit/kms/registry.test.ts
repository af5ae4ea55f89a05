import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kebab, kmsCommand } from '../../../src/cli/kms.js';
import { KMS_HANDLERS as HANDLERS } from '../../../src/kms/kms.js';
import type { MemberType } from '../../../src/kms/members.js';
import { AUDITED_RESPONSE_FIELDS, MEMBERS } from '../../../src/kms/members.js';
import type { KmsOperation } from '../../../src/kms/operations.js';
import { KMS_REGISTRY, membersOf, OPERATION_FACTS } from '../../../src/kms/operations.js';
import { BLOB_FIELDS } from '../../../src/server/kms.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 27 ms (test/helpers/timeouts.ts).
fileTimeout(130);

/**
 * The operation registry (src/kms/operations.ts) is the one declaration of each
 * KMS operation: the library table, the CLI commands, the endpoint's base64
 * members and the audit allow-list all come from it. These tests hold each
 * derived piece against the registry, and the member types against AWS's own
 * models (botocore's from Debian's python3-botocore, and @aws-sdk/client-kms
 * for operations newer than that botocore).
 */
const BOTOCORE = '/usr/lib/python3/dist-packages/botocore/data/kms/2014-11-01/service-2.json';
const OPS = Object.keys(KMS_REGISTRY) as KmsOperation[];

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  member?: { shape: string };
}

/** botocore's operations: each input and output member with its type, in MEMBERS' words. */
function botocore(): Record<string, { input: Record<string, MemberType>; output: Record<string, MemberType> }> {
  const model = JSON.parse(fs.readFileSync(BOTOCORE, 'utf8')) as {
    operations: Record<string, { input?: { shape: string }; output?: { shape: string } }>;
    shapes: Record<string, Shape>;
  };
  const typeOf = (shape: string): MemberType => {
    const s = model.shapes[shape]!;
    if (s.type === 'list') return model.shapes[s.member!.shape]!.type === 'structure' ? 'structs' : 'list';
    const words: Record<string, MemberType> = { integer: 'int', boolean: 'bool', structure: 'struct', blob: 'blob', map: 'map', timestamp: 'timestamp' };
    return words[s.type] ?? 'string';
  };
  const members = (ref?: { shape: string }) =>
    Object.fromEntries(Object.entries(ref ? (model.shapes[ref.shape]!.members ?? {}) : {}).map(([m, r]) => [m, typeOf(r.shape)]));
  return Object.fromEntries(Object.entries(model.operations).map(([op, o]) => [op, { input: members(o.input), output: members(o.output) }]));
}

/** The SDK's request and response interfaces: the members typed Uint8Array (blobs), by operation. */
function sdkBlobs(): { input: Record<string, string[]>; output: Record<string, string[]> } {
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('@aws-sdk/client-kms')), '../dist-types/models');
  const src = fs
    .readdirSync(dir)
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
  const out = { input: {} as Record<string, string[]>, output: {} as Record<string, string[]> };
  for (const m of src.matchAll(/export interface (\w+)(Request|Response) \{([\s\S]*?)\n\}/g)) {
    const blobs = [...m[3]!.matchAll(/^ {4}(\w+)\??: Uint8Array/gm)].map((x) => x[1]!);
    out[m[2] === 'Request' ? 'input' : 'output'][m[1]!] = blobs;
  }
  return out;
}

const model = botocore();
const sdk = sdkBlobs();

describe('the operation registry', () => {
  it('both models were read (a moved file would silently check nothing)', () => {
    expect(Object.keys(model).length).toBeGreaterThanOrEqual(50);
    expect(model.Encrypt!.input.Plaintext).toBe('blob');
    expect(sdk.input.DeriveSharedSecret).toContain('PublicKey');
    expect(sdk.output.GenerateDataKeyPair).toContain('PrivateKeyPlaintext');
  });

  it('every registry operation has its handler in the library table', () => {
    for (const op of OPS) {
      expect(typeof KMS_REGISTRY[op].handler, op).toBe('function');
      expect(HANDLERS[op], op).toBe(KMS_REGISTRY[op].handler);
    }
    expect(Object.keys(HANDLERS).sort()).toEqual([...OPS].sort());
  });

  it('every registry operation has its CLI command, with one option per member', () => {
    const commands = new Map(kmsCommand().commands.map((c) => [c.name(), c]));
    for (const op of OPS) {
      const cmd = commands.get(kebab(op));
      expect(cmd, `kmsvol kms ${kebab(op)}`).toBeDefined();
      const flags = new Set(cmd!.options.map((o) => o.long));
      for (const m of membersOf(op)) expect(flags.has(`--${kebab(m)}`), `${kebab(op)} --${kebab(m)}`).toBe(true);
    }
  });

  it('every member of every registry operation has a type and an audit decision, and no blob is audited', () => {
    const undecided: string[] = [];
    const auditedBlobs: string[] = [];
    for (const op of OPS)
      for (const m of membersOf(op)) {
        const decision = MEMBERS[m];
        if (!decision || typeof decision.audit !== 'boolean') undecided.push(`${op}.${m}`);
        else if (decision.type === 'blob' && decision.audit) auditedBlobs.push(`${op}.${m}`);
      }
    expect(undecided).toEqual([]);
    expect(auditedBlobs).toEqual([]);
  });

  it('every algorithm a request names is audited: not secret, and CloudTrail records it in requestParameters', () => {
    const algorithms = [...new Set(OPS.flatMap((op) => membersOf(op)))].filter((m) => m.endsWith('Algorithm')).sort();
    expect(algorithms).toEqual(expect.arrayContaining(['DestinationEncryptionAlgorithm', 'EncapsulationAlgorithm', 'SourceEncryptionAlgorithm']));
    expect(algorithms.filter((m) => !MEMBERS[m]!.audit)).toEqual([]);
  });

  it("every member's type is botocore's type for it", () => {
    const wrong: string[] = [];
    for (const op of OPS) {
      const input = model[op]?.input;
      if (!input) continue;
      for (const m of membersOf(op)) if (input[m] !== undefined && MEMBERS[m]?.type !== input[m]) wrong.push(`${op}.${m}: ${MEMBERS[m]?.type} vs ${input[m]}`);
    }
    expect(wrong).toEqual([]);
  });

  it("the endpoint's base64 members of each operation are exactly its blob-typed members in botocore and in the SDK", () => {
    for (const op of OPS) {
      const refused = new Set(Object.keys((KMS_REGISTRY[op] as { unsupported?: object }).unsupported ?? {}));
      const ours = [...BLOB_FIELDS[op]!].sort();
      const input = model[op]?.input;
      if (input)
        expect(ours, `${op} (botocore)`).toEqual(
          Object.keys(input)
            .filter((m) => input[m] === 'blob' && !refused.has(m))
            .sort(),
        );
      expect(ours, `${op} (SDK)`).toEqual((sdk.input[op] ?? []).filter((m) => !refused.has(m)).sort());
    }
  });

  it('the audit log records no response field that is a blob in either model', () => {
    const blobs = new Set(
      OPS.flatMap((op) => [
        ...Object.entries(model[op]?.output ?? {})
          .filter(([, t]) => t === 'blob')
          .map(([m]) => m),
        ...(sdk.output[op] ?? []),
      ]),
    );
    expect(blobs.size).toBeGreaterThan(5);
    expect(AUDITED_RESPONSE_FIELDS.filter((f) => blobs.has(f))).toEqual([]);
  });

  it("the grant operations the registry's entries declare are AWS's GrantOperation enum (botocore's, and the SDK's but for the KEM pair)", () => {
    const botocoreEnum = (JSON.parse(fs.readFileSync(BOTOCORE, 'utf8')) as { shapes: Record<string, { enum?: string[] }> }).shapes.GrantOperation!.enum!;
    const enums = path.join(path.dirname(createRequire(import.meta.url).resolve('@aws-sdk/client-kms')), '../dist-types/models/enums.d.ts');
    const block = /export declare const GrantOperation: \{([\s\S]*?)\};/.exec(fs.readFileSync(enums, 'utf8'))![1]!;
    const sdkEnum = [...block.matchAll(/readonly (\w+):/g)].map((m) => m[1]!);
    const declared = OPERATION_FACTS.grantOperations;
    expect(new Set(declared).size, 'each grant operation declared once').toBe(declared.length);
    expect(botocoreEnum.filter((op) => !declared.includes(op))).toEqual([]);
    // kmsvol has Encapsulate and Decapsulate but does not grant them yet; every other grant operation AWS has, it does.
    expect(sdkEnum.filter((op) => !declared.includes(op)).sort()).toEqual(['Decapsulate', 'Encapsulate']);
    expect(declared.filter((op) => !sdkEnum.includes(op))).toEqual([]);
    // Constraints only for operations that take an encryption context, and tracking only for operations of the registry.
    for (const op of OPERATION_FACTS.constrainable) expect(declared, op).toContain(op);
    for (const op of OPERATION_FACTS.tracked) expect(OPS, op).toContain(op);
  });
});
