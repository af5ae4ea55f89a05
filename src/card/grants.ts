import type { CardKmsClient, KmsClient } from '../kms/client/index.js';
import type { Ec2Context } from '../volume/context.js';
import { EBS_CONTEXT_KEY } from '../volume/context.js';
import { imageFile } from '../volume/images.js';
import type { KmsvolToken } from '../volume/luks2.js';
import { readImageHeader } from '../volume/luks2.js';
import type { VolumeRow } from '../volume/registry.js';

/**
 * The EBS grant flow. A card does not use the volume's KMS key by right: at
 * attach, the control plane (calling through EC2) gives the card's own
 * principal a grant for Decrypt only, constrained to the volume's encryption
 * context, and retires it at detach. A card therefore cannot decrypt another
 * volume's data key, and a detached volume's card can decrypt nothing.
 */

/** The service the volume control plane and the cards call KMS through (kms:ViaService). */
export function viaEc2(region: string): string {
  return `ec2.${region}.amazonaws.com`;
}

function accountOfKey(keyArn: string): string {
  const account = /^arn:aws:kms:[^:]+:(\d{12}):/.exec(keyArn)?.[1];
  if (!account) throw new Error(`${keyArn} is not a KMS key ARN`);
  return account;
}

/** The principal of the card serving a volume: a session of the kmsvol-card role, one per volume. */
export function cardPrincipal(keyArn: string, volumeId: string): string {
  return `arn:aws:sts::${accountOfKey(keyArn)}:assumed-role/kmsvol-card/${volumeId}`;
}

/** The grant's name: repeated attaches of a volume get the same grant back (CreateGrant is idempotent by Name). */
export function cardGrantName(volumeId: string): string {
  return `kmsvol-card-${volumeId}`;
}

/** The card grant's request: Decrypt of this volume's data key only, for the volume's card principal. */
export function cardGrantRequest(keyArn: string, volumeId: string) {
  return {
    KeyId: keyArn,
    GranteePrincipal: cardPrincipal(keyArn, volumeId),
    RetiringPrincipal: `arn:aws:iam::${accountOfKey(keyArn)}:root`,
    Operations: ['Decrypt'],
    Constraints: { EncryptionContextSubset: { [EBS_CONTEXT_KEY]: volumeId } },
    Name: cardGrantName(volumeId),
  };
}

/** Grant the volume's card Decrypt of this volume's data key only. Returns the grant token the card passes on. */
export async function createCardGrant(kms: KmsClient, token: KmsvolToken): Promise<string> {
  const res = await kms.send('CreateGrant', cardGrantRequest(token.keyArn, token.volumeId));
  return res.GrantToken;
}

/** The card's own KMS client through a remote KMS, with what the card's spec needs to make it (a kmsvol endpoint: a role session); undefined for the embedded KMS. */
export function cardKmsClient(kms: KmsClient, token: KmsvolToken): Promise<CardKmsClient | undefined> {
  return kms.cardClient?.(accountOfKey(token.keyArn), token.volumeId) ?? Promise.resolve(undefined);
}

export async function retireCardGrant(kms: KmsClient, grantToken: string): Promise<void> {
  try {
    await kms.send('RetireGrant', { GrantToken: grantToken });
  } catch (e) {
    // Already gone (retired by an earlier cleanup, revoked, or its key deleted): nothing left to retire.
    if ((e as Error).name !== 'NotFoundException') throw e;
  }
}

/**
 * The card's KMS grant for an encrypted volume and, through a remote KMS, the
 * card's own credentials (made after the claim, so a refused key fails the
 * attach, not the request).
 */
export async function grantFor(ctx: Ec2Context, v: VolumeRow): Promise<{ grantToken?: string; card?: CardKmsClient }> {
  if (!v.encrypted) return {};
  const token = readImageHeader(imageFile(ctx.home, v)).token;
  const grantToken = await createCardGrant(ctx.kms, token);
  return { grantToken, card: await cardKmsClient(ctx.kms, token) };
}

/** Retire a card's grant once the card is gone; a KMS that cannot be reached is reported as an event, not a failed detach. */
export async function retireGrant(ctx: Ec2Context, volumeId: string, grantToken: string | null | undefined): Promise<void> {
  if (!grantToken) return;
  try {
    await retireCardGrant(ctx.kms, grantToken);
  } catch (e) {
    ctx.events.record(
      volumeId,
      'detachVolume',
      'grant-not-retired',
      `${(e as Error).name}: ${(e as Error).message}. The grant allows only Decrypt of this volume's key by its card; the next attach reuses it, or revoke it with kmsvol kms revoke-grant.`,
    );
  }
}
