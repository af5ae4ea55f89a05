import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { ServiceError } from '../../errors.js';
import { initSoftHsmToken, SOFTHSM2_MODULE, Token, TokenError } from '../../hsm/token.js';
import type { KmsContext } from '../context.js';
import type { HsmClusterRow } from '../store.js';

/**
 * AWS CloudHSM clusters as kmsvol has them: a PKCS#11 module and one token in
 * it play the cluster, and `kmsuser`'s password is the token's user PIN. By
 * default the module is SoftHSM2 with a token made under the home; a user's
 * own module and token label are accepted instead (then the token must exist).
 * The cluster certificate is a self-signed certificate made by openssl when
 * the cluster is created (its private key is discarded): CreateCustomKeyStore
 * compares a TrustAnchorCertificate with it, as AWS compares it with the
 * cluster's trust anchor.
 */

const CLUSTER_ID = /^cluster-[2-7a-z]{11}$/;

/** CloudHSM's own errors (cloudhsmv2), named as AWS names them. */
export class CloudHsmError extends ServiceError {}

function newClusterId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return `cluster-${[...crypto.randomBytes(11)].map((b) => alphabet[b & 31]).join('')}`;
}

/** A self-signed certificate naming the cluster (EC P-256, ten years), PEM. */
function clusterCertificate(clusterId: string): string {
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      '/dev/null',
      '-subj',
      `/O=kmsvol/OU=CloudHSM/CN=${clusterId}`,
      '-days',
      '3650',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0 || !r.stdout.includes('BEGIN CERTIFICATE'))
    throw new CloudHsmError('CloudHsmInternalFailureException', `openssl could not make the cluster certificate: ${r.stderr || r.error?.message}`, 500);
  return r.stdout;
}

export interface CreateClusterInput {
  /** kmsuser's password: the token's user PIN (7 to 32 characters, as KMS takes it). */
  kmsuserPassword: string;
  /** A PKCS#11 module of the user's; without it, SoftHSM2 under `softhsmDir`. */
  pkcs11Module?: string;
  tokenLabel?: string;
  /** Where kmsvol keeps its SoftHSM2 tokens (the home's hsm/ directory). */
  softhsmDir: string;
}

/** CreateCluster: the token exists (made when SoftHSM2) and kmsuser's password opens it. */
export function createCluster(k: KmsContext, input: CreateClusterInput) {
  const pw = input.kmsuserPassword;
  if (pw.length < 7 || pw.length > 32)
    throw new CloudHsmError('CloudHsmInvalidRequestException', "kmsuser's password must be 7 to 32 characters, as AWS KMS takes a KeyStorePassword.");
  if ((input.pkcs11Module === undefined) !== (input.tokenLabel === undefined) && input.pkcs11Module !== undefined)
    throw new CloudHsmError('CloudHsmInvalidRequestException', 'Give --token-label with --pkcs11-module: the token in that module that plays the cluster.');
  const clusterId = newClusterId();
  const label = input.tokenLabel ?? clusterId;
  let cfg: { module: string; tokenLabel: string; softhsmConf?: string };
  try {
    if (input.pkcs11Module === undefined) {
      // The SO PIN is never needed again: the token is reinitialized by no one.
      cfg = initSoftHsmToken({ dir: input.softhsmDir, label, soPin: crypto.randomBytes(16).toString('hex'), userPin: pw });
    } else {
      cfg = { module: input.pkcs11Module, tokenLabel: label };
      if (input.pkcs11Module === SOFTHSM2_MODULE && process.env.SOFTHSM2_CONF) cfg.softhsmConf = process.env.SOFTHSM2_CONF;
    }
    const t = Token.open(cfg);
    try {
      t.login(pw);
    } finally {
      t.close();
    }
  } catch (e) {
    if (e instanceof TokenError) throw new CloudHsmError('CloudHsmInvalidRequestException', `The cluster's token cannot be used: ${e.message} (${e.code})`);
    throw e;
  }
  const row: HsmClusterRow = {
    region: k.region,
    cluster_id: clusterId,
    module: cfg.module,
    token_label: cfg.tokenLabel,
    softhsm_conf: cfg.softhsmConf ?? null,
    certificate: clusterCertificate(clusterId),
    state: 'ACTIVE',
    created: k.now(),
  };
  k.store.write(() => k.store.insertHsmCluster(row));
  return { Cluster: clusterShape(k, row) };
}

/** DescribeClusters, with its Filters' clusterIds. */
export function describeClusters(k: KmsContext, clusterIds?: readonly string[]) {
  for (const id of clusterIds ?? [])
    if (!CLUSTER_ID.test(id)) throw new CloudHsmError('CloudHsmInvalidRequestException', `Invalid cluster id ${id}: it looks like cluster-<11 characters>.`);
  const rows = k.store.hsmClusters(k.region).filter((r) => !clusterIds?.length || clusterIds.includes(r.cluster_id));
  return { Clusters: rows.map((r) => clusterShape(k, r)) };
}

function clusterShape(k: KmsContext, r: HsmClusterRow) {
  return {
    ClusterId: r.cluster_id,
    CreateTimestamp: new Date(r.created),
    HsmType: 'hsm1.medium',
    Hsms: [
      {
        ClusterId: r.cluster_id,
        HsmId: `hsm-${r.cluster_id.slice(8)}`,
        State: 'ACTIVE',
        StateMessage: `PKCS#11 token ${r.token_label} in ${r.module}`,
      },
    ],
    State: r.state,
    StateMessage: `kmsvol: PKCS#11 module ${r.module}, token ${r.token_label}`,
    Certificates: { ClusterCertificate: r.certificate },
    TagList: [],
    NetworkType: 'IPV4',
    Mode: 'FIPS',
    SubnetMapping: {},
    VpcId: `vpc-${k.account.slice(0, 8)}`,
  };
}
