import type { IncomingHttpHeaders } from 'node:http';
import type { Home } from '../home.js';
import type { Kms } from '../kms/kms.js';
import type { AuthFailure } from '../sigv4.js';
import type { Ec2Context } from '../volume/context.js';

/**
 * One endpoint serves several AWS services (KMS, EC2, STS), told apart as AWS
 * tells them apart: the credential scope's service, `X-Amz-Target`, the Query
 * protocol's `Action`. The HTTP layer (http.ts) reads the request, verifies
 * its SigV4 signature, resolves the caller and the region, and hands a
 * `ServiceCall` to the service; the service answers in its own protocol.
 */
/** Who signed the request, as the endpoint verified it (SigV4); a service runs the call as its principal (kms/authz.ts's Caller). */
export interface SignedCaller {
  /** The caller's ARN (an IAM user, or an assumed-role session). */
  arn: string;
  accountId: string;
  /** The access key that signed the request. */
  accessKeyId: string;
  /** Set when the caller signed with temporary credentials from this endpoint's STS. */
  session?: { roleArn: string; roleId: string; sessionName: string; expires: number };
}

export interface ServiceCall {
  /** The region named by the request's credential scope. */
  region: string;
  caller: SignedCaller;
  requestId: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as received (already covered by the signature). */
  body: Buffer;
  /** Form-encoded body and query string merged (Query protocols: EC2, STS). */
  params: URLSearchParams;
  /** The home whose stores the endpoint serves. */
  home: Home;
  /** The KMS of `region` (opened once per region and reused). */
  kms: Kms;
  /** The EC2 control plane's context for this caller and region (built by src/ec2/context.ts on first use). */
  ec2: () => Ec2Context;
  /** The request's method and URL (path and query string) as received (the REST protocols route by them). */
  method: string;
  url: string;
  /** Names of headers the caller signed (lower case), e.g. for kms:ViaService. */
  signedHeaders: string[];
}

export interface ServiceReply {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** An error to send in the service's own shape (JSON __type for KMS, XML for EC2 and STS). */
export interface WireError {
  name: string;
  message: string;
  status: number;
  /** Set for an authentication failure: each service's codec names it in its own words (`name` is KMS's). */
  failure?: AuthFailure;
}

export interface Service {
  /** The credential-scope service name: 'kms', 'ec2', 'sts'. */
  readonly name: string;
  /** How far a request's X-Amz-Date may be from the endpoint's clock (default: sigv4.ts's MAX_SKEW_MS, KMS's 5 minutes). */
  readonly maxClockSkewMs?: number;
  /**
   * Which requests may be sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the EBS direct APIs' PutSnapshotBlock, as
   * AWS accepts it), and the headers such a request must sign instead (they then protect the body); undefined: none.
   */
  unsignedPayload?(method: string, url: string): { mustSign: readonly string[] } | undefined;
  /** For a Query service: the Actions it answers (the endpoint routes a request by its Action). */
  readonly queryActions?: ReadonlySet<string>;
  handle(call: ServiceCall): Promise<ServiceReply>;
  /** Format an error raised before the service ran (signature, body, throttling) in the service's protocol. */
  error(e: WireError, requestId: string): ServiceReply;
}
