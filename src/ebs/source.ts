import crypto from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { ServiceError } from '../errors.js';
import { Sha256 } from '../sigv4.js';
import { BLOCK_SIZE } from '../volume/blocks.js';
import { VOLUME_LIMITS } from '../volume/limits.js';
import { EbsErrors } from './errors.js';

/**
 * A snapshot read through another kmsvol's (or AWS's) EBS direct APIs: the
 * two read operations, ListSnapshotBlocks (paged) and GetSnapshotBlock,
 * signed with SigV4 (service ebs) under the credentials the AWS CLI would use
 * (environment, AWS_PROFILE and the shared files, resolved by the SDK's
 * standard chain). Blocks arrive in plaintext, as the API gives them (over
 * TLS against AWS); each one's x-amz-Checksum is checked here.
 */
/** The largest size a volume (so a snapshot) can have, in GiB: that of the largest volume type. */
const MAX_VOLUME_GIB = Math.max(...Object.values(VOLUME_LIMITS).map((l) => l.size[1]));

export interface SourceBlock {
  BlockIndex: number;
  BlockToken: string;
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** The standard credential chain, through the KMS SDK kmsvol already carries (one chain for every client). */
async function standardCredentials(region: string): Promise<Credentials> {
  const sdk = await import('@aws-sdk/client-kms');
  const c = new sdk.KMSClient({ region });
  try {
    return await c.config.credentials();
  } catch (e) {
    throw new ServiceError(
      'NoCredentialsError',
      `Unable to locate credentials for the source endpoint (${(e as Error).message}). Configure them with \`aws configure\`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`,
    );
  } finally {
    c.destroy();
  }
}

export class EbsSource {
  private signer?: SignatureV4;
  private readonly base: URL;

  constructor(
    endpoint: string,
    private readonly region: string,
  ) {
    this.base = new URL(endpoint);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:')
      throw new TypeError(`--source-endpoint-url must be http(s)://host[:port]; got '${endpoint}'.`);
  }

  private async call(path: string, query: Record<string, string>): Promise<Response> {
    this.signer ??= new SignatureV4({
      credentials: await standardCredentials(this.region),
      region: this.region,
      service: 'ebs',
      sha256: Sha256 as never,
      uriEscapePath: true,
    });
    const signed = await this.signer.sign({
      method: 'GET',
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      ...(this.base.port ? { port: Number(this.base.port) } : {}),
      path,
      query,
      headers: { host: this.base.host },
    });
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, { headers: signed.headers as Record<string, string> });
    } catch (e) {
      throw new ServiceError('EndpointConnectionError', `Could not connect to the endpoint URL: "${url.origin}/" (${(e as Error).message}).`, 500);
    }
    if (res.ok) return res;
    const body = (await res.json().catch(() => ({}))) as { message?: string; Message?: string };
    const name = res.headers.get('x-amzn-errortype')?.split(':')[0] ?? `HTTP${res.status}`;
    throw new ServiceError(name, `The source endpoint refused: ${body.message ?? body.Message ?? res.statusText}`, res.status >= 500 ? 500 : 400);
  }

  /**
   * Every block of a completed snapshot, and its size in GiB. Postcondition: the listing is one a snapshot can have,
   * checked as strictly as a bundle's manifest (bundle.ts openBundle): VolumeSize an integer in [1, 65536] and
   * BlockSize 524288 on every page, each BlockIndex an integer below VolumeSize / 512 KiB, strictly increasing
   * across pages, each BlockToken a string, and a listing that ends (no NextToken twice, no page past the last
   * block without one). Anything else is refused before a block is read, so nothing is registered.
   */
  async listBlocks(snapshotId: string): Promise<{ volumeSize: number; blocks: SourceBlock[] }> {
    const bad = (why: string) =>
      EbsErrors.validation(
        'INVALID_PARAMETER_VALUE',
        `The source endpoint ${this.base.origin} listed the blocks of ${snapshotId} in a way no snapshot can have: ${why}; nothing was imported.`,
      );
    const blocks: SourceBlock[] = [];
    let volumeSize = 0;
    let limit = 0;
    const seen = new Set<string>();
    let token: string | undefined;
    do {
      const res = (await (await this.call(`/snapshots/${encodeURIComponent(snapshotId)}/blocks`, token ? { pageToken: token } : {})).json()) as {
        Blocks?: unknown;
        VolumeSize?: unknown;
        BlockSize?: unknown;
        NextToken?: unknown;
      };
      if (res?.BlockSize !== BLOCK_SIZE) throw bad(`its BlockSize is ${JSON.stringify(res?.BlockSize)}, not ${BLOCK_SIZE}`);
      const size = res.VolumeSize;
      if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > MAX_VOLUME_GIB)
        throw bad(`its VolumeSize is ${JSON.stringify(size)}, not a whole number of GiB in [1, ${MAX_VOLUME_GIB}]`);
      if (volumeSize && size !== volumeSize) throw bad(`its VolumeSize changed from ${volumeSize} to ${size} between pages`);
      volumeSize = size as number;
      limit = (volumeSize * 1024 ** 3) / BLOCK_SIZE;
      const page = res.Blocks ?? [];
      if (!Array.isArray(page)) throw bad('its Blocks is not a list');
      for (const b of page as SourceBlock[]) {
        const last = blocks.length ? blocks[blocks.length - 1]!.BlockIndex : -1;
        if (!Number.isInteger(b?.BlockIndex) || b.BlockIndex < 0 || b.BlockIndex >= limit)
          throw bad(`BlockIndex ${JSON.stringify(b?.BlockIndex)} is not a block of a ${volumeSize} GiB snapshot (0 to ${limit - 1})`);
        if (b.BlockIndex <= last) throw bad(`BlockIndex ${b.BlockIndex} comes after ${last} (blocks must be listed once each, in increasing order)`);
        if (typeof b.BlockToken !== 'string' || !b.BlockToken) throw bad(`block ${b.BlockIndex} has no BlockToken`);
        blocks.push({ BlockIndex: b.BlockIndex, BlockToken: b.BlockToken });
      }
      if (res.NextToken !== undefined && res.NextToken !== null && (typeof res.NextToken !== 'string' || !res.NextToken))
        throw bad('its NextToken is not a string');
      token = (res.NextToken as string | null | undefined) || undefined;
      if (token !== undefined) {
        // Each page but the last brings a block, and blocks only increase below `limit`: the listing ends.
        if (seen.has(token)) throw bad(`it gave the NextToken ${JSON.stringify(token.slice(0, 64))} twice (a listing that never ends)`);
        if (page.length === 0) throw bad('a page with a NextToken listed no block (a listing that may never end)');
        seen.add(token);
      }
    } while (token);
    return { volumeSize, blocks };
  }

  /** One block's plaintext; Postcondition: its SHA-256 is the x-amz-Checksum the source sent. */
  async getBlock(snapshotId: string, b: SourceBlock, blockSize: number): Promise<Buffer> {
    const res = await this.call(`/snapshots/${encodeURIComponent(snapshotId)}/blocks/${b.BlockIndex}`, { blockToken: b.BlockToken });
    const data = Buffer.from(await res.arrayBuffer());
    const sum = crypto.createHash('sha256').update(data).digest('base64');
    if (data.length !== blockSize || res.headers.get('x-amz-checksum') !== sum)
      throw new ServiceError(
        'ValidationException',
        `Block ${b.BlockIndex} of ${snapshotId} arrived with ${data.length} bytes and SHA-256 ${sum}, not the ${blockSize} bytes and checksum the source sent; nothing was imported.`,
      );
    return data;
  }
}
