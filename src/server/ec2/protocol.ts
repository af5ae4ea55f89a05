import { XMLBuilder } from 'fast-xml-parser';
import { ServiceError } from '../../errors.js';

/**
 * The EC2 Query protocol: requests are form parameters (`Action`, `Version`,
 * then the operation's members flattened as `VolumeId.1`, `Filter.1.Name`,
 * `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`…); responses are XML
 * documents `<ActionResponse xmlns=…><requestId/>…</ActionResponse>` whose
 * element names are the model's locationNames and whose lists are `<…Set><item>`.
 * Field names and shapes follow botocore's EC2 model (2016-11-15).
 */
export const EC2_VERSION = '2016-11-15';
export const EC2_XMLNS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`;

/** An input member: its type and, where it differs from the member name, its name on the wire. */
export type Shape = 'string' | 'integer' | 'boolean' | { list: Shape } | { struct: Members };
export type Members = Record<string, { shape: Shape; wire?: string }>;

const m = (shape: Shape, wire?: string) => ({ shape, ...(wire ? { wire } : {}) });
export const S = {
  str: m('string'),
  int: m('integer'),
  bool: m('boolean'),
  strList: (wire: string) => m({ list: 'string' }, wire),
  tags: (wire = 'Tag') => m({ list: { struct: { Key: m('string'), Value: m('string') } } }, wire),
  filters: m({ list: { struct: { Name: m('string'), Values: m({ list: 'string' }, 'Value') } } }, 'Filter'),
  tagSpecifications: m(
    { list: { struct: { ResourceType: m('string'), Tags: m({ list: { struct: { Key: m('string'), Value: m('string') } } }, 'Tag') } } },
    'TagSpecification',
  ),
};

function parseScalar(shape: 'string' | 'integer' | 'boolean', name: string, raw: string): unknown {
  if (shape === 'string') return raw;
  if (shape === 'integer') {
    if (!/^-?\d+$/.test(raw)) throw new ServiceError('InvalidParameterValue', `Value (${raw}) for parameter ${name} is invalid. Expected an integer.`);
    return Number(raw);
  }
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ServiceError('InvalidParameterValue', `Value (${raw}) for parameter ${name} is invalid. Expected true or false.`);
}

function decodeShape(shape: Shape, prefix: string, params: Map<string, string>, used: Set<string>): unknown {
  if (typeof shape === 'string') {
    const raw = params.get(prefix);
    if (raw === undefined) return undefined;
    used.add(prefix);
    return parseScalar(shape, prefix, raw);
  }
  if ('list' in shape) {
    // Members are numbered from 1; a gap ends nothing (the SDKs never leave one), so collect every index present.
    const indexes = new Set<number>();
    const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)(\\.|$)`);
    for (const k of params.keys()) {
      const hit = re.exec(k);
      if (hit) indexes.add(Number(hit[1]));
    }
    if (indexes.size === 0) return undefined;
    return [...indexes].sort((a, b) => a - b).map((i) => decodeShape(shape.list, `${prefix}.${i}`, params, used));
  }
  const out: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(shape.struct)) {
    const v = decodeShape(member.shape, `${prefix ? `${prefix}.` : ''}${member.wire ?? name}`, params, used);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Decode an operation's parameters; a parameter the operation does not have is refused as EC2 refuses it (UnknownParameter). */
export function decodeRequest(members: Members, params: URLSearchParams): Record<string, unknown> {
  const map = new Map<string, string>();
  for (const [k, v] of params) if (k !== 'Action' && k !== 'Version') map.set(k, v);
  const used = new Set<string>();
  const out = decodeShape({ struct: { ...members, DryRun: S.bool } }, '', map, used) as Record<string, unknown>;
  const unknown = [...map.keys()].filter((k) => !used.has(k));
  if (unknown.length) throw new ServiceError('UnknownParameter', `The parameter ${unknown[0]} is not recognized.`);
  return out;
}

/** Element names that are not the member name with a lower-case first letter (botocore's locationNames). */
const LOCATION: Record<string, string> = {
  State: 'status',
  StateMessage: 'statusMessage',
  Attachments: 'attachmentSet',
  Tags: 'tagSet',
  Volumes: 'volumeSet',
  Snapshots: 'snapshotSet',
  VolumesModifications: 'volumeModificationSet',
  VolumeStatuses: 'volumeStatusSet',
  Actions: 'actionsSet',
  Events: 'eventsSet',
  Reservations: 'reservationSet',
  Instances: 'instancesSet',
  BlockDeviceMappings: 'blockDeviceMapping',
  Groups: 'groupSet',
  VolumeStatus: 'volumeStatus',
  Details: 'details',
  AttachmentStatuses: 'attachmentStatuses',
  ProductCodes: 'productCodes',
  AutoEnableIO: 'autoEnableIO',
  SecurityGroups: 'groupSet',
};

function toXml(value: unknown, rename: Record<string, string>): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return { item: value.map((v) => toXml(v, rename)) };
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[rename[k] ?? LOCATION[k] ?? k[0]!.toLowerCase() + k.slice(1)] = toXml(v, rename);
    }
    return out;
  }
  return value;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, processEntities: true });
const DECLARATION = { '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' } };

/** `<ActionResponse xmlns=…><requestId>…</requestId>…</ActionResponse>`; an operation with no output answers `<return>true</return>`. */
export function encodeResponse(action: string, requestId: string, output: Record<string, unknown> | undefined, rename: Record<string, string> = {}): string {
  const body = output === undefined ? { return: 'true' } : (toXml(output, rename) as Record<string, unknown>);
  return builder.build({ ...DECLARATION, [`${action}Response`]: { '@_xmlns': EC2_XMLNS, requestId, ...body } });
}

/** EC2's error document: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`. */
export function encodeError(code: string, message: string, requestId: string): string {
  return builder.build({ ...DECLARATION, Response: { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId } });
}
