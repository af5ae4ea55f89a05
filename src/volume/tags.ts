import { ServiceError } from '../errors.js';
import { Ec2Errors } from './errors.js';
import type { Filter } from './filters.js';
import { applyFilters, paginate } from './filters.js';
import type { Registry, TagRow } from './registry.js';
import { checkText } from './text.js';

/**
 * EC2 tags on volumes and snapshots (CreateTags, DeleteTags, DescribeTags,
 * and TagSpecifications at creation), kept in the registry.
 */
/** What tag operations need of the control plane's context (not the whole Ec2Context: volumes.ts imports this file). */
interface TagContext {
  registry: Registry;
}

export interface Tag {
  Key: string;
  Value?: string;
}

export interface TagSpecification {
  ResourceType?: string;
  Tags?: Tag[];
}

const MAX_TAGS = 50;

export function resourceType(id: string): 'volume' | 'snapshot' | 'instance' | undefined {
  if (id.startsWith('vol-')) return 'volume';
  if (id.startsWith('snap-')) return 'snapshot';
  if (id.startsWith('i-')) return 'instance';
  return undefined;
}

export function tagShape(registry: Registry, id: string): { Key: string; Value: string }[] {
  return registry.tagsOf(id).map((t) => ({ Key: t.key, Value: t.value }));
}

function checkTag(t: Tag): void {
  checkText('Tag.Key', t.Key);
  checkText('Tag.Value', t.Value);
  if (!t.Key) throw Ec2Errors.invalidParameter('Tag keys must be 1 to 128 characters long; a tag has an empty Key.');
  if (t.Key.length > 128) throw Ec2Errors.invalidParameter(`Tag key '${t.Key.slice(0, 20)}…' is longer than 128 characters.`);
  if (t.Key.startsWith('aws:')) throw Ec2Errors.invalidParameter(`Tag keys starting with 'aws:' are reserved for AWS; '${t.Key}' cannot be set.`);
  if ((t.Value ?? '').length > 256) throw Ec2Errors.invalidParameter(`The value of tag '${t.Key}' is longer than 256 characters.`);
}

/** The tags of a TagSpecifications list that apply to `type`; other resource types are refused, as EC2 does. */
export function tagsFor(specs: TagSpecification[] | undefined, type: 'volume' | 'snapshot'): Tag[] {
  const out: Tag[] = [];
  for (const s of specs ?? []) {
    if (s.ResourceType !== type)
      throw Ec2Errors.invalidParameter(`'${s.ResourceType ?? ''}' is not a valid taggable resource type for this operation. Use ResourceType=${type}.`);
    for (const t of s.Tags ?? []) checkTag(t);
    out.push(...(s.Tags ?? []));
  }
  if (out.length > MAX_TAGS) throw new ServiceError('TagLimitExceeded', `A resource can have at most ${MAX_TAGS} tags; ${out.length} were given.`);
  return out;
}

export function putTags(registry: Registry, id: string, tags: Tag[]): void {
  for (const t of tags) registry.putTag({ resource_id: id, key: t.Key, value: t.Value ?? '' });
}

function checkResource(ctx: TagContext, id: string): void {
  const type = resourceType(id);
  if (type === 'volume') {
    const v = ctx.registry.getVolume(id);
    if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(id);
  } else if (type === 'snapshot') {
    if (!ctx.registry.getSnapshot(id)) throw new ServiceError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
  } else if (type === 'instance') {
    if (id !== ctx.registry.instanceId()) throw new ServiceError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
  } else
    throw new ServiceError('InvalidID', `The ID '${id}' is not valid. Tags can be set on volumes (vol-…), snapshots (snap-…) and this host's instance (i-…).`);
}

export function createTags(ctx: TagContext, req: { Resources?: string[]; Tags?: Tag[] }) {
  if (!req.Resources?.length) throw Ec2Errors.missingParameter('The request must contain the parameter resourceIdSet');
  if (!req.Tags?.length) throw Ec2Errors.missingParameter('The request must contain the parameter tagSet');
  for (const t of req.Tags) checkTag(t);
  for (const id of req.Resources) checkResource(ctx, id);
  ctx.registry.write(() => {
    for (const id of req.Resources!) {
      putTags(ctx.registry, id, req.Tags!);
      const n = ctx.registry.tagsOf(id).length;
      if (n > MAX_TAGS) throw new ServiceError('TagLimitExceeded', `${id} would have ${n} tags; a resource can have at most ${MAX_TAGS}.`);
    }
  });
  return {};
}

/** A tag given with a Value is deleted only if its value matches; without one, whatever its value. */
export function deleteTags(ctx: TagContext, req: { Resources?: string[]; Tags?: Tag[] }) {
  if (!req.Resources?.length) throw Ec2Errors.missingParameter('The request must contain the parameter resourceIdSet');
  for (const id of req.Resources) checkResource(ctx, id);
  ctx.registry.write(() => {
    for (const id of req.Resources!) {
      if (!req.Tags?.length) ctx.registry.deleteTagsOf(id);
      else for (const t of req.Tags) ctx.registry.deleteTag(id, t.Key, t.Value);
    }
  });
  return {};
}

const TAG_FILTERS = {
  key: (t: TagRow) => t.key,
  value: (t: TagRow) => t.value,
  'resource-id': (t: TagRow) => t.resource_id,
  'resource-type': (t: TagRow) => resourceType(t.resource_id),
};

export function describeTags(ctx: TagContext, req: { Filters?: Filter[]; MaxResults?: number; NextToken?: string }) {
  const rows = applyFilters(ctx.registry.allTags(), req.Filters, TAG_FILTERS, (t) => t.resource_id, ctx.registry);
  const { page, NextToken } = paginate(rows, req, 'DescribeTags', (t) => [t.resource_id, t.key]);
  return {
    Tags: page.map((t) => ({ Key: t.key, ResourceId: t.resource_id, ResourceType: resourceType(t.resource_id), Value: t.value })),
    ...(NextToken ? { NextToken } : {}),
  };
}
