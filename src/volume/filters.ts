import { ServiceError } from '../errors.js';
import type { PageKey } from '../paging.js';
import { decodePosition, encodePosition, pageAfter } from '../paging.js';
import { Ec2Errors } from './errors.js';
import type { Registry } from './registry.js';
import { shown } from './text.js';

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

/**
 * Does `text` match the EC2 wildcard `pattern` (`*` any run, `?` any one
 * character)? The classic two-pointer match: on a mismatch it resumes after
 * the last `*`, so it takes at most |pattern| × |text| steps whatever the
 * pattern (a regular expression built from `*a*a*a…` backtracks
 * exponentially).
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function anyMatch(values: string[], actual: string | string[] | undefined): boolean {
  const have = actual === undefined ? [] : Array.isArray(actual) ? actual : [actual];
  return values.some((v) => have.some((a) => wildcardMatch(v, a)));
}

/** AWS's limits on one request's filters (EC2 User Guide, "List and filter your resources"). */
export const MAX_FILTERS = 50;
export const MAX_FILTER_VALUES = 200;

/**
 * Precondition: at most 50 filters, each with at most 200 values; otherwise
 * FilterLimitExceeded, before any work. The endpoint checks it as soon as a
 * request is decoded; every Describe checks it again (the CLI and the API).
 */
export function checkFilterLimits(filters: Filter[] | undefined): void {
  if (!filters) return;
  if (filters.length > MAX_FILTERS)
    throw new ServiceError(
      'FilterLimitExceeded',
      `The request uses too many filters: ${filters.length} were given; the limit is ${MAX_FILTERS} filters with up to ${MAX_FILTER_VALUES} values each.`,
    );
  for (const [i, f] of filters.entries()) {
    if (Array.isArray(f?.Values) && f.Values.length > MAX_FILTER_VALUES)
      throw new ServiceError(
        'FilterLimitExceeded',
        `The request uses too many filter values: filter ${i + 1} has ${f.Values.length}; the limit is ${MAX_FILTER_VALUES} values per filter (and ${MAX_FILTERS} filters).`,
      );
  }
}

/** Check the filter names first (InvalidParameterValue names the valid ones), then keep the rows every filter matches. */
export function applyFilters<R>(rows: R[], filters: Filter[] | undefined, spec: FilterSpec<R>, idOf: (r: R) => string, registry: Registry): R[] {
  checkFilterLimits(filters);
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
 * MaxResults of each paged Describe, from its documentation in botocore's
 * EC2 model (the model gives the members no range): below `min` is refused;
 * above `max`, the operations documented "if MaxResults is given a value
 * larger than N, only N results are returned" answer N (`clamp`), the others
 * ("This value can be between 5 and 1000") refuse it. test/unit/volume/filters.test.ts
 * holds this table against the model's words.
 */
export const PAGE_SIZES: Readonly<Record<string, { min: number; max: number; above: 'clamp' | 'refuse' }>> = {
  DescribeVolumes: { min: 5, max: 500, above: 'clamp' },
  DescribeSnapshots: { min: 5, max: 1000, above: 'clamp' },
  DescribeVolumeStatus: { min: 5, max: 1000, above: 'clamp' },
  DescribeVolumesModifications: { min: 5, max: 500, above: 'clamp' },
  DescribeTags: { min: 5, max: 1000, above: 'refuse' },
  DescribeInstances: { min: 5, max: 1000, above: 'refuse' },
};

/**
 * MaxResults/NextToken paging, in the order of `keyOf` (the list's own
 * order, its last value an id). The token is a stable position
 * (src/paging.ts): the next page starts after the last item given, so a
 * deletion between pages skips nothing that still exists.
 */
export function paginate<R>(
  rows: R[],
  req: { MaxResults?: number; NextToken?: string },
  operation: string,
  keyOf: (r: R) => PageKey,
): { page: R[]; NextToken?: string } {
  const size = PAGE_SIZES[operation];
  if (!size) throw new Error(`paginate: ${operation} has no page size in PAGE_SIZES`);
  let after: PageKey | undefined;
  if (req.NextToken !== undefined) {
    after = decodePosition(req.NextToken, operation);
    if (!after)
      throw Ec2Errors.invalidParameter(
        `The NextToken '${shown(req.NextToken)}' is not valid for ${operation}. Use the NextToken of the previous ${operation} response.`,
      );
  }
  if (req.MaxResults === undefined && after === undefined) return { page: rows };
  let take: number | undefined;
  if (req.MaxResults !== undefined) {
    const { min, max, above } = size;
    if (!Number.isInteger(req.MaxResults) || req.MaxResults < min) {
      throw Ec2Errors.invalidParameter(
        `Value ( ${req.MaxResults} ) for parameter maxResults is invalid. Expecting a value greater than or equal to ${min} (${operation} takes ${min} to ${max}).`,
      );
    }
    if (req.MaxResults > max && above === 'refuse') {
      throw Ec2Errors.invalidParameter(
        `Value ( ${req.MaxResults} ) for parameter maxResults is invalid. Expecting a value less than or equal to ${max} (${operation} takes ${min} to ${max}).`,
      );
    }
    take = Math.min(req.MaxResults, max);
  }
  const { page, last } = pageAfter(rows, keyOf, after, take);
  return last ? { page, NextToken: encodePosition(operation, last) } : { page };
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
  o: { operation: string; spec: FilterSpec<R>; idOf: (r: R) => string; keyOf: (r: R) => PageKey; registry: Registry },
): { page: R[]; NextToken?: string } {
  return paginate(applyFilters(rows, req.Filters, o.spec, o.idOf, o.registry), req, o.operation, o.keyOf);
}
