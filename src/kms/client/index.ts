import type { Caller } from '../authz.js';
import type { KmsOperation, KmsOptions, KmsRequest, KmsResponse } from '../kms.js';
import { Kms } from '../kms.js';

/**
 * The one KMS interface the volume side and the CLI use. Implementations:
 * in-process (the embedded default, below) and remote through
 * @aws-sdk/client-kms (against `kmsvol kms serve` or AWS KMS itself).
 */
export interface KmsClient {
  readonly region: string;
  send<Op extends KmsOperation>(op: Op, req?: KmsRequest): Promise<KmsResponse<Op>>;
  /**
   * The same KMS for another caller: a principal (honoured by the embedded
   * KMS; a remote KMS goes by the credentials) and the service the calls go
   * through (kms:ViaService). The view shares this client and its lifetime.
   */
  as(caller: Partial<Caller>): KmsClient;
  /**
   * The client a volume's card uses through a remote KMS, and what its
   * process needs to make the same one (the card's spec carries it): a
   * kmsvol endpoint gives the card a kmsvol-card role session; AWS KMS
   * itself (`--kms aws`), the user's credentials from the standard chain.
   * Undefined when the card calls as its principal on the home (embedded).
   */
  cardClient?(account: string, volumeId: string): Promise<CardKmsClient | undefined>;
  close(): void;
}

export interface CardKmsClient {
  client: KmsClient;
  endpoint?: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export class InProcessKmsClient implements KmsClient {
  private readonly caller: Caller;

  constructor(
    readonly kms: Kms,
    caller: Partial<Caller> = {},
    private readonly owner = true,
  ) {
    this.caller = { principal: caller.principal ?? kms.principal, ...(caller.viaService ? { viaService: caller.viaService } : {}) };
  }

  static open(opts: KmsOptions & { caller?: Partial<Caller> }): InProcessKmsClient {
    return new InProcessKmsClient(Kms.open(opts), opts.caller);
  }

  get region(): string {
    return this.kms.region;
  }

  async send<Op extends KmsOperation>(op: Op, req: KmsRequest = {}): Promise<KmsResponse<Op>> {
    return this.kms.invokeAs(this.caller, op, req);
  }

  as(caller: Partial<Caller>): KmsClient {
    return new InProcessKmsClient(this.kms, caller, false);
  }

  close(): void {
    if (this.owner) this.kms.close();
  }
}
