import type { Members, Shape } from '../../ec2/members.js';
import { S } from '../../ec2/members.js';
import { ServiceError } from '../../errors.js';
import { checkText, shown } from '../../volume/text.js';
import { ATTRIBUTE, xmlDocument } from '../xml.js';

/**
 * The EC2 Query protocol: requests are form parameters (`Action`, `Version`,
 * then the operation's members flattened as `VolumeId.1`, `Filter.1.Name`,
 * `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`…); responses are XML
 * documents `<ActionResponse xmlns=…><requestId/>…</ActionResponse>` whose
 * element names are the model's locationNames and whose lists are `<…Set><item>`.
 * Field names and shapes follow botocore's EC2 model (2016-11-15); each
 * operation's members and their shapes are its entry in the EC2 registry
 * (src/ec2/operations.ts, src/ec2/members.ts): this file holds no operation.
 */
export const EC2_VERSION = '2016-11-15';
export const EC2_XMLNS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`;

/** EC2's Integer is 32-bit: a larger value is refused, not rounded (a Number past 2^53 would be). */
const INT_RANGE = [-(2 ** 31), 2 ** 31 - 1] as const;

function parseScalar(shape: 'string' | 'integer' | 'boolean', name: string, raw: string): unknown {
  if (shape === 'string') {
    checkText(name, raw);
    return raw;
  }
  if (shape === 'integer') {
    const n = /^-?\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(n >= INT_RANGE[0] && n <= INT_RANGE[1]))
      throw new ServiceError('InvalidParameterValue', `Value (${shown(raw)}) for parameter ${shown(name)} is invalid. Expected an integer.`);
    return n;
  }
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ServiceError('InvalidParameterValue', `Value (${shown(raw)}) for parameter ${shown(name)} is invalid. Expected true or false.`);
}

/**
 * The parameters as a tree of their dotted names (`Filter.1.Value.2` is
 * Filter → 1 → Value → 2), built in one pass: decoding then visits each
 * parameter once, so the work is linear in the request. (Scanning every
 * parameter name for each list, as this did before, was quadratic: 40,000
 * filter values held the event loop for 33 s.)
 */
interface Node {
  /** The parameter's full name and value, when a parameter ends here. */
  name?: string;
  value?: string;
  /** Its place in the request (for naming the first unknown one). */
  at?: number;
  used?: boolean;
  children: Map<string, Node>;
}

function treeOf(params: URLSearchParams): Node {
  const root: Node = { children: new Map() };
  let at = 0;
  for (const [k, v] of params) {
    at++;
    if (k === 'Action' || k === 'Version') continue;
    let node = root;
    for (const part of k.split('.')) {
      let next = node.children.get(part);
      if (!next) node.children.set(part, (next = { children: new Map() }));
      node = next;
    }
    // A repeated name keeps its first value, as URLSearchParams.get does.
    if (node.name === undefined) {
      node.name = k;
      node.value = v;
      node.at = at;
    }
  }
  return root;
}

/** A list's members are numbered from 1 (`.1`, `.2`…); a gap ends nothing (the SDKs never leave one), so every index present is taken, in order. */
const INDEX = /^[1-9]\d{0,8}$/;

function decodeShape(shape: Shape, node: Node | undefined, name: string): unknown {
  if (!node) return undefined;
  if (typeof shape === 'string') {
    if (node.value === undefined) return undefined;
    node.used = true;
    return parseScalar(shape, name, node.value);
  }
  if ('list' in shape) {
    const items = [...node.children].filter(([k]) => INDEX.test(k)).sort(([a], [b]) => Number(a) - Number(b));
    if (items.length === 0) return undefined;
    return items.map(([k, child]) => decodeShape(shape.list, child, `${name}.${k}`));
  }
  const out: Record<string, unknown> = {};
  for (const [member, m] of Object.entries(shape.struct)) {
    const wire = m.wire ?? member;
    const v = decodeShape(m.shape, node.children.get(wire), name ? `${name}.${wire}` : wire);
    if (v !== undefined) out[member] = v;
  }
  return out;
}

/** The first parameter no member took, in request order (none: undefined). */
function firstUnused(root: Node): string | undefined {
  let first: Node | undefined;
  const stack = [root];
  while (stack.length) {
    const node = stack.pop()!;
    if (node.name !== undefined && !node.used && (first === undefined || node.at! < first.at!)) first = node;
    for (const c of node.children.values()) stack.push(c);
  }
  return first?.name;
}

/** Decode an operation's parameters; a parameter the operation does not have is refused as EC2 refuses it (UnknownParameter). */
export function decodeRequest(members: Members, params: URLSearchParams): Record<string, unknown> {
  const root = treeOf(params);
  const out = decodeShape({ struct: { ...members, DryRun: S.bool } }, root, '') as Record<string, unknown>;
  const unknown = firstUnused(root);
  if (unknown !== undefined) throw new ServiceError('UnknownParameter', `The parameter ${shown(unknown)} is not recognized.`);
  return out;
}

/** Element names that are not the member name with a lower-case first letter (botocore's locationNames). */
export const LOCATION: Readonly<Record<string, string>> = {
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

/** `<ActionResponse xmlns=…><requestId>…</requestId>…</ActionResponse>`; an operation with no output answers `<return>true</return>`. */
export function encodeResponse(action: string, requestId: string, output: Record<string, unknown> | undefined, rename: Record<string, string> = {}): string {
  const body = output === undefined ? { return: 'true' } : (toXml(output, rename) as Record<string, unknown>);
  return xmlDocument({ [`${action}Response`]: { [`${ATTRIBUTE}xmlns`]: EC2_XMLNS, requestId, ...body } });
}

/** EC2's error document: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`. */
export function encodeError(code: string, message: string, requestId: string): string {
  return xmlDocument({ Response: { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId } });
}
