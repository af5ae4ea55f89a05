import { Kms } from '../kms.js';
import type { KmsOperation, KmsOptions, KmsRequest, KmsResponse } from '../kms.js';

/**
 * The one KMS interface the volume side and the CLI use. Implementations:
 * in-process (the embedded default, below) and remote through
 * @aws-sdk/client-kms (against `kmsvol kms serve` or AWS KMS itself).
 */
export interface KmsClient {
  readonly region: string;
  send<Op extends KmsOperation>(op: Op, req?: KmsRequest): Promise<KmsResponse<Op>>;
  close(): void;
}

export class InProcessKmsClient implements KmsClient {
  constructor(readonly kms: Kms) {}

  static open(opts: KmsOptions): InProcessKmsClient {
    return new InProcessKmsClient(Kms.open(opts));
  }

  get region(): string {
    return this.kms.region;
  }

  async send<Op extends KmsOperation>(op: Op, req: KmsRequest = {}): Promise<KmsResponse<Op>> {
    return this.kms.invoke(op, req);
  }

  close(): void {
    this.kms.close();
  }
}
