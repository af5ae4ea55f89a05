import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { parseInteger } from './args.js';

/** How a service pages: its page-size member, and the token members in and out (EC2: MaxResults/NextToken; KMS: Limit/Marker/NextMarker). */
export interface PagingNames {
  limit: string;
  input: string;
  output: string;
  /** Output members that only describe the page (KMS's Truncated). */
  drop?: string[];
}

export const EC2_PAGING: PagingNames = { limit: 'MaxResults', input: 'NextToken', output: 'NextToken' };
export const KMS_PAGING: PagingNames = { limit: 'Limit', input: 'Marker', output: 'NextMarker', drop: ['Truncated'] };

export function paginationOptions(cmd: Command): Command {
  return cmd
    .option('--page-size <n>', 'the size of each page the CLI asks for (it still returns every item)')
    .option('--max-items <n>', 'at most this many items; a NextToken resumes with --starting-token')
    .option('--starting-token <token>', 'the NextToken of an earlier --max-items call')
    .option('--no-paginate', "one call only (with the service's own paging options as given)");
}

/**
 * The AWS CLI's pagination: every page (--page-size items each), at most
 * --max-items items, resuming at --starting-token. Its NextToken is the
 * CLI's own (base64 of the service token and how many items of that page were
 * already returned), not the service's.
 */
export async function allPages(
  call: (req: Record<string, unknown>) => Promise<Record<string, unknown>>,
  req: Record<string, unknown>,
  list: string,
  opts: { pageSize?: unknown; maxItems?: unknown; startingToken?: unknown },
  names: PagingNames,
) {
  const pageSize = opts.pageSize === undefined ? undefined : parseInteger(String(opts.pageSize), 'page-size');
  const maxItems = opts.maxItems === undefined ? undefined : parseInteger(String(opts.maxItems), 'max-items');
  let token: string | undefined;
  let skip = 0;
  if (opts.startingToken) {
    const startingToken = String(opts.startingToken);
    let t: { NextToken?: string | null; boto_truncate_amount?: number };
    try {
      t = JSON.parse(Buffer.from(startingToken, 'base64').toString('utf8'));
    } catch {
      throw new UsageError(`Bad starting token: ${startingToken}. Use the NextToken printed by a --max-items call.`);
    }
    token = t.NextToken ?? undefined;
    skip = t.boto_truncate_amount ?? 0;
  }
  const items: unknown[] = [];
  let last: Record<string, unknown> = {};
  let next: string | undefined;
  const encode = (t: object) => Buffer.from(JSON.stringify(t)).toString('base64');
  for (;;) {
    const at = token;
    last = await call({ ...req, ...(pageSize !== undefined ? { [names.limit]: pageSize } : {}), ...(token ? { [names.input]: token } : {}) });
    const page = (last[list] as unknown[]).slice(skip);
    const skipped = skip;
    skip = 0;
    if (maxItems !== undefined && items.length + page.length > maxItems) {
      const take = maxItems - items.length;
      items.push(...page.slice(0, take));
      next = encode({ NextToken: at ?? null, boto_truncate_amount: skipped + take });
      break;
    }
    items.push(...page);
    token = (last[names.output] as string | undefined) ?? undefined;
    if (!token) break;
    if (maxItems !== undefined && items.length === maxItems) {
      next = encode({ NextToken: token });
      break;
    }
  }
  const rest = Object.fromEntries(Object.entries(last).filter(([k]) => k !== names.output && !names.drop?.includes(k)));
  return { ...rest, [list]: items, ...(next ? { NextToken: next } : {}) };
}
