// kmsvol targets Node 20 and pins this SDK in package-lock.json; the SDK's
// warning about future releases needing Node 22 would only clutter stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import type * as Sdk from '@aws-sdk/client-kms';
import { ServiceError } from '../../errors.js';
import type { Caller } from '../authz.js';
import { CARD_ROLE } from '../iam.js';
import type { KmsOperation, KmsRequest, KmsResponse } from '../kms.js';
import type { CardKmsClient, KmsClient } from './index.js';

/**
 * The remote KMS client: `@aws-sdk/client-kms` against an endpoint (a
 * `kmsvol kms serve`, or AWS KMS itself). Service errors keep AWS's exception
 * name; a KMS that cannot be reached is `EndpointConnectionError`, worded as
 * the AWS CLI words it.
 *
 * Credentials against a kmsvol endpoint come from the environment only
 * (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, optionally AWS_SESSION_TOKEN)
 * or are passed in. Against AWS itself (`--kms aws`), the user asked for AWS,
 * so the SDK's standard chain applies: environment, shared config and
 * credentials files (AWS_PROFILE), SSO, web identity, container and instance
 * metadata.
 */
export interface RemoteKmsOptions {
  endpoint?: string;
  region: string;
  /** Explicit credentials, or 'standard' for the SDK's default provider chain (default: the environment). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | 'standard';
  /** Give up on an unreachable endpoint after this long (default 10 s). */
  timeoutMs?: number;
  /**
   * The service the calls go through (kms:ViaService), sent as the signed
   * header x-kmsvol-via-service; `kmsvol kms serve` honours it for principals
   * with IAM permission, and AWS ignores it.
   */
  viaService?: string;
}

export const VIA_SERVICE_HEADER = 'x-kmsvol-via-service';

/** The SDK is loaded on the first remote call, so commands that never make one do not pay for it (~0.25 s). */
let sdkModule: Promise<typeof Sdk> | undefined;
const loadSdk = () => (sdkModule ??= import('@aws-sdk/client-kms'));

/** One SDK client, made on first use and shared by the views of `as()`. */
interface Shared {
  client?: Promise<Sdk.KMSClient>;
}

export class RemoteKmsClient implements KmsClient {
  readonly region: string;
  private readonly endpoint: string;
  private readonly owner: boolean;
  private readonly shared: Shared;
  private readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;

  constructor(
    private readonly opts: RemoteKmsOptions,
    shared?: Shared,
  ) {
    this.region = opts.region;
    this.endpoint = opts.endpoint ?? `https://kms.${opts.region}.amazonaws.com`;
    this.owner = !shared;
    this.shared = shared ?? {};
    // Missing credentials are reported when the client is opened, not at its first call.
    this.credentials = opts.credentials === 'standard' ? undefined : (opts.credentials ?? credentialsFromEnv());
  }

  private client(): Promise<Sdk.KMSClient> {
    return (this.shared.client ??= loadSdk().then(
      (sdk) =>
        new sdk.KMSClient({
          region: this.opts.region,
          ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
          ...(this.credentials ? { credentials: this.credentials } : {}),
          maxAttempts: 2,
          requestHandler: { connectionTimeout: this.opts.timeoutMs ?? 10_000, requestTimeout: this.opts.timeoutMs ?? 10_000 },
        }),
    ));
  }

  /** The credentials decide the principal; the service is this view's own. Shares the SDK client. */
  as(caller: Partial<Caller>): KmsClient {
    return new RemoteKmsClient({ ...this.opts, viaService: caller.viaService }, this.shared);
  }

  async send<Op extends KmsOperation>(op: Op, req: KmsRequest = {}): Promise<KmsResponse<Op>> {
    const sdk = await loadSdk();
    const Command = (sdk as unknown as Record<string, new (input: unknown) => unknown>)[`${op}Command`];
    if (!Command) throw new ServiceError('UnknownOperationException', `${op} is not a KMS operation the SDK knows.`);
    const command = new Command(req) as { middlewareStack: Sdk.KMSClient['middlewareStack'] };
    const via = this.opts.viaService;
    if (via) {
      // Added before signing (the build step), so the header is signed.
      command.middlewareStack.add(
        (next) => async (args) => {
          (args.request as { headers: Record<string, string> }).headers[VIA_SERVICE_HEADER] = via;
          return next(args);
        },
        { step: 'build', name: 'kmsvolViaService' },
      );
    }
    try {
      const out = (await (await this.client()).send(command as never)) as unknown as Record<string, unknown>;
      delete out.$metadata;
      return out as KmsResponse<Op>;
    } catch (e) {
      const err = e as Error & { $fault?: string; code?: string };
      // Service exceptions carry $fault; transport failures (refused, DNS, timeout) do not.
      if (err.$fault) throw new ServiceError(err.name, err.message, err.$fault === 'server' ? 500 : 400);
      if (err.name === 'CredentialsProviderError') {
        throw new ServiceError(
          'NoCredentialsError',
          `Unable to locate credentials for AWS KMS (${err.message}). Configure them with \`aws configure\`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`,
        );
      }
      // No HTTP answer at all: connection refused, DNS, timeout.
      throw new ServiceError(
        'EndpointConnectionError',
        `Could not connect to the endpoint URL: "${this.endpoint}/" (${err.code ?? err.name}: ${err.message}). Check that the KMS is running and reachable.`,
        500,
      );
    }
  }

  /**
   * A client for the card of `volumeId`, with credentials of its own: a
   * session of the kmsvol-card role from the endpoint's STS, whose principal
   * is the grantee of the card's grant, so the grant is all the card may do.
   * Against AWS itself (`--kms aws`) there is no such role: the user's own
   * credentials, resolved through the standard chain.
   */
  async cardClient(account: string, volumeId: string): Promise<CardKmsClient | undefined> {
    if (!this.credentials) {
      // AWS KMS itself: the card calls as the user, with the credentials the standard chain gives now.
      const credentials = await (await this.client()).config.credentials().catch((e: Error) => {
        throw new ServiceError(
          'NoCredentialsError',
          `Unable to locate credentials for AWS KMS (${e.message}). Configure them with \`aws configure\`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`,
        );
      });
      const c = {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
      };
      return { client: new RemoteKmsClient({ ...this.opts, credentials: c }), endpoint: this.opts.endpoint, region: this.region, credentials: c };
    }
    const { AssumeRoleCommand, STSClient } = await import('@aws-sdk/client-sts');
    const sts = new STSClient({ region: this.region, endpoint: this.endpoint, credentials: this.credentials, maxAttempts: 2 });
    try {
      const out = await sts.send(
        new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${CARD_ROLE}`, RoleSessionName: volumeId, DurationSeconds: 900 }),
      );
      const c = out.Credentials!;
      const credentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
      return { client: new RemoteKmsClient({ ...this.opts, credentials }), endpoint: this.opts.endpoint, region: this.region, credentials };
    } catch (e) {
      const err = e as Error & { $fault?: string };
      throw new ServiceError(err.name, `The card's role session could not be had from ${this.endpoint}: ${err.message}`, err.$fault === 'server' ? 500 : 400);
    } finally {
      sts.destroy();
    }
  }

  close(): void {
    if (this.owner) void this.shared.client?.then((c) => c.destroy());
  }
}

function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env) {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ServiceError('NoCredentialsError', 'Unable to locate credentials for the remote KMS. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.');
  }
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

/** The KMS endpoint configured for the volume side, if any: KMSVOL_KMS_ENDPOINT or AWS_ENDPOINT_URL_KMS. */
export function kmsEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.KMSVOL_KMS_ENDPOINT || env.AWS_ENDPOINT_URL_KMS || undefined;
}
