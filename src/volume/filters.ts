import { ServiceError } from '../errors.js';
import { Ec2Errors } from './errors.js';
import type { Registry } from './registry.js';

/**
 * EC2's Filter semantics, shared by every Describe operation: filters are
 * ANDed, a filter's values are ORed, values may use the wildcards `*` and `?`,
 * and `tag:<key>` / `tag-key` / `tag-value` look at the resource's tags.
 */
export interface Filter {
  Name: string;
  Values: string[];
}

export type FilterSpec<R> = Record<string, (r: R) => string | string[] | undefined>;

function pattern(value: string): RegExp {
  const body = value
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

function anyMatch(values: string[], actual: string | string[] | undefined): boolean {
  const have = actual === undefined ? [] : Array.isArray(actual) ? actual : [actual];
  return values.some((v) => {
    const re = pattern(v);
    return have.some((a) => re.test(a));
  });
}

/** Check the filter names first (InvalidParameterValue names the valid ones), then keep the rows every filter matches. */
export function applyFilters<R>(rows: R[], filters: Filter[] | undefined, spec: FilterSpec<R>, idOf: (r: R) => string, registry: Registry): R[] {
  for (const f of filters ?? []) {
    if (typeof f.Name !== 'string' || !f.Name) throw Ec2Errors.missingParameter('The request must contain the parameter Filter.N.Name for every filter.');
    if (!f.Name.startsWith('tag:') && !spec[f.Name] && f.Name !== 'tag-key' && f.Name !== 'tag-value') {
      throw Ec2Errors.invalidParameter(
        `The filter '${f.Name}' is invalid. Valid filters: ${[...Object.keys(spec), 'tag:<key>', 'tag-key', 'tag-value'].join(', ')}.`,
      );
    }
    if (!Array.isArray(f.Values) || f.Values.length === 0)
      throw Ec2Errors.invalidParameter(`The filter '${f.Name}' has no values. Give at least one value (wildcards * and ? allowed).`);
  }
  if (!filters?.length) return rows;
  return rows.filter((r) =>
    filters.every((f) => {
      if (f.Name.startsWith('tag:')) {
        const key = f.Name.slice(4);
        return anyMatch(
          f.Values,
          registry
            .tagsOf(idOf(r))
            .filter((t) => t.key === key)
            .map((t) => t.value),
        );
      }
      if (f.Name === 'tag-key')
        return anyMatch(
          f.Values,
          registry.tagsOf(idOf(r)).map((t) => t.key),
        );
      if (f.Name === 'tag-value')
        return anyMatch(
          f.Values,
          registry.tagsOf(idOf(r)).map((t) => t.value),
        );
      return anyMatch(f.Values, spec[f.Name]!(r));
    }),
  );
}

/**
 * MaxResults/NextToken paging over an already-ordered list. The token is
 * opaque to callers (the offset of the next item and the operation it is for).
 */
export function paginate<R>(
  rows: R[],
  req: { MaxResults?: number; NextToken?: string },
  operation: string,
  range: [number, number],
): { page: R[]; NextToken?: string } {
  let start = 0;
  if (req.NextToken !== undefined) {
    let parsed: { op?: string; at?: number } | undefined;
    try {
      parsed = JSON.parse(Buffer.from(req.NextToken, 'base64url').toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.op !== operation || !Number.isInteger(parsed.at) || parsed.at! < 0) {
      throw Ec2Errors.invalidParameter(
        `The NextToken '${req.NextToken}' is not valid for ${operation}. Use the NextToken of the previous ${operation} response.`,
      );
    }
    start = parsed.at!;
  }
  if (req.MaxResults === undefined) return { page: rows.slice(start) };
  // Below the minimum is an error; above the maximum, EC2 answers the maximum (the AWS CLI asks for 1000).
  const [lo, hi] = range;
  if (!Number.isInteger(req.MaxResults) || req.MaxResults < lo) {
    throw Ec2Errors.invalidParameter(`Value ( ${req.MaxResults} ) for parameter maxResults is invalid. Expecting a value greater than ${lo - 1}.`);
  }
  const end = start + Math.min(req.MaxResults, hi);
  const page = rows.slice(start, end);
  return end < rows.length ? { page, NextToken: Buffer.from(JSON.stringify({ op: operation, at: end })).toString('base64url') } : { page };
}

/** The filters volumes and snapshots both answer, over the registry columns they share. */
export function sharedFilters<R extends { volume_id: string; state: string; encrypted: number; kms_key_id: string | null }>(): FilterSpec<R> {
  return {
    'volume-id': (r) => r.volume_id,
    status: (r) => r.state,
    encrypted: (r) => String(r.encrypted === 1),
    'kms-key-id': (r) => r.kms_key_id ?? '',
  };
}

/** A Describe request of EC2's volume-side actions: filters and paging. */
export interface DescribeRequest {
  Filters?: Filter[];
  MaxResults?: number;
  NextToken?: string;
}

/** Precondition: resources named by id are not paged; EC2 refuses MaxResults with an id list (`set`: its wire name, volumeSet). */
export function refusePagedIds(ids: string[] | undefined, req: DescribeRequest, set: string, noun: string): void {
  if (ids?.length && req.MaxResults !== undefined) {
    throw new ServiceError(
      'InvalidParameterCombination',
      `The parameter ${set} cannot be used with the parameter maxResults. Page through all ${noun}, or name the ${noun} without MaxResults.`,
    );
  }
}

/** The end of every Describe: the filters, then one page (MaxResults/NextToken). */
export function describePage<R>(
  rows: R[],
  req: DescribeRequest,
  o: { operation: string; spec: FilterSpec<R>; idOf: (r: R) => string; registry: Registry; range: [number, number] },
): { page: R[]; NextToken?: string } {
  return paginate(applyFilters(rows, req.Filters, o.spec, o.idOf, o.registry), req, o.operation, o.range);
}
