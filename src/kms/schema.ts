/**
 * What the KMS store holds (store.ts): its tables as SQL, with the version of
 * that schema and the migrations from older ones, and its rows as TypeScript.
 */
export interface KeyRow {
  region: string;
  key_id: string;
  description: string;
  key_usage: string;
  key_spec: string;
  origin: string;
  key_manager: string;
  key_state: string;
  creation_date: number;
  deletion_date: number | null;
  pending_window_days: number | null;
  multi_region: number;
  rotation_enabled: number;
  rotation_period_days: number | null;
  next_rotation_date: number | null;
  on_demand_rotation_start: number | null;
  expiration_model: string | null;
  valid_to: number | null;
  policy: string;
  /** Multi-Region keys: the region of the primary (the same on every replica's row). */
  primary_region: string | null;
  /** Origin EXTERNAL: the material id of the material first imported; only that material may be imported again. */
  imported_material_id: Buffer | null;
}

export interface MaterialRow {
  key_id: string;
  material_id: Buffer;
  sealed: Buffer;
  created: number;
  rotation_type: string | null;
  seq: number;
}

export interface GrantRow {
  region: string;
  key_id: string;
  grant_id: string;
  name: string | null;
  grantee_principal: string;
  retiring_principal: string | null;
  issuing_account: string;
  /** JSON list of operation names, sorted. */
  operations: string;
  /** JSON GrantConstraints, or null. */
  constraints: string | null;
  creation_date: number;
}

/** GetParametersForImport's wrapping key and token, until ImportKeyMaterial uses them or they expire. */
export interface ImportParametersRow {
  region: string;
  key_id: string;
  token_id: Buffer;
  wrapping_algorithm: string;
  wrapping_key_spec: string;
  sealed_private_key: Buffer;
  valid_to: number;
}

export interface TagRow {
  TagKey: string;
  TagValue: string;
}

export interface RoleRow {
  role_id: string;
  trust_policy: string;
  created: number;
  /** Seconds: the longest session AssumeRole grants (IAM's MaxSessionDuration, 3,600-43,200). */
  max_session_duration: number;
}

export interface SessionRow {
  sealed_secret: Buffer;
  token_hash: Buffer;
  role_name: string;
  session_name: string;
  expires: number;
  role_id: string;
}

/** A key's last use (GetKeyLastUsage). */
export interface KeyUse {
  region: string;
  key_id: string;
  operation: string;
  ts: number;
  event_id: string;
  request_id: string;
}

export interface AliasRow {
  region: string;
  alias_name: string;
  target_key_id: string;
  creation_date: number;
  last_updated_date: number;
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
  region TEXT NOT NULL, key_id TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  key_usage TEXT NOT NULL, key_spec TEXT NOT NULL, origin TEXT NOT NULL,
  key_manager TEXT NOT NULL, key_state TEXT NOT NULL,
  creation_date INTEGER NOT NULL, deletion_date INTEGER, pending_window_days INTEGER,
  multi_region INTEGER NOT NULL DEFAULT 0,
  rotation_enabled INTEGER NOT NULL DEFAULT 0, rotation_period_days INTEGER,
  next_rotation_date INTEGER, on_demand_rotation_start INTEGER,
  expiration_model TEXT, valid_to INTEGER,
  policy TEXT NOT NULL,
  primary_region TEXT,
  imported_material_id BLOB,
  PRIMARY KEY (region, key_id)
);
CREATE TABLE IF NOT EXISTS materials (
  key_id TEXT NOT NULL, material_id BLOB NOT NULL, sealed BLOB NOT NULL,
  created INTEGER NOT NULL, rotation_type TEXT, seq INTEGER NOT NULL,
  PRIMARY KEY (key_id, material_id)
);
CREATE INDEX IF NOT EXISTS materials_seq ON materials (key_id, seq);
CREATE TABLE IF NOT EXISTS aliases (
  region TEXT NOT NULL, alias_name TEXT NOT NULL, target_key_id TEXT NOT NULL,
  creation_date INTEGER NOT NULL, last_updated_date INTEGER NOT NULL,
  PRIMARY KEY (region, alias_name)
);
CREATE TABLE IF NOT EXISTS tags (
  region TEXT NOT NULL, key_id TEXT NOT NULL, tag_key TEXT NOT NULL, tag_value TEXT NOT NULL,
  PRIMARY KEY (region, key_id, tag_key)
);
CREATE TABLE IF NOT EXISTS grants (
  region TEXT NOT NULL, key_id TEXT NOT NULL, grant_id TEXT NOT NULL, name TEXT,
  grantee_principal TEXT NOT NULL, retiring_principal TEXT, issuing_account TEXT NOT NULL,
  operations TEXT NOT NULL, constraints TEXT, creation_date INTEGER NOT NULL,
  PRIMARY KEY (region, grant_id)
);
CREATE INDEX IF NOT EXISTS grants_key ON grants (region, key_id);
CREATE TABLE IF NOT EXISTS import_parameters (
  region TEXT NOT NULL, key_id TEXT NOT NULL, token_id BLOB NOT NULL,
  wrapping_algorithm TEXT NOT NULL, wrapping_key_spec TEXT NOT NULL,
  sealed_private_key BLOB NOT NULL, valid_to INTEGER NOT NULL,
  PRIMARY KEY (token_id)
);
CREATE TABLE IF NOT EXISTS iam_access_keys (
  access_key_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, sealed_secret BLOB NOT NULL, created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS iam_roles (
  role_name TEXT PRIMARY KEY, role_id TEXT NOT NULL, trust_policy TEXT NOT NULL, created INTEGER NOT NULL,
  max_session_duration INTEGER NOT NULL DEFAULT 3600
);
CREATE TABLE IF NOT EXISTS iam_sessions (
  access_key_id TEXT PRIMARY KEY, sealed_secret BLOB NOT NULL, token_hash BLOB NOT NULL,
  role_name TEXT NOT NULL, session_name TEXT NOT NULL, expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_last_usage (
  region TEXT NOT NULL, key_id TEXT NOT NULL, operation TEXT NOT NULL, ts INTEGER NOT NULL, event_id TEXT NOT NULL, request_id TEXT NOT NULL,
  PRIMARY KEY (region, key_id)
);
CREATE TABLE IF NOT EXISTS deleted_keys (region TEXT NOT NULL, key_id TEXT NOT NULL, deleted_at INTEGER NOT NULL, PRIMARY KEY (region, key_id));
CREATE TABLE IF NOT EXISTS hsm_clusters (
  region TEXT NOT NULL, cluster_id TEXT NOT NULL, module TEXT NOT NULL, token_label TEXT NOT NULL,
  softhsm_conf TEXT, certificate TEXT NOT NULL, state TEXT NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (region, cluster_id)
);
CREATE TABLE IF NOT EXISTS custom_key_stores (
  region TEXT NOT NULL, store_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
  cluster_id TEXT, trust_anchor TEXT, sealed_password BLOB,
  xks_config TEXT, sealed_xks_secret BLOB,
  connection_state TEXT NOT NULL, error_code TEXT, created INTEGER NOT NULL,
  PRIMARY KEY (region, store_id)
);
CREATE TABLE IF NOT EXISTS custom_store_keys (
  region TEXT NOT NULL, key_id TEXT NOT NULL, store_id TEXT NOT NULL, token_key_id BLOB, xks_key_id TEXT,
  PRIMARY KEY (region, key_id)
);
CREATE INDEX IF NOT EXISTS custom_store_keys_store ON custom_store_keys (region, store_id);
`;

/** An AWS CloudHSM cluster as kmsvol has it: a PKCS#11 module and the token that plays the cluster (src/kms/keystores/). */
export interface HsmClusterRow {
  region: string;
  cluster_id: string;
  module: string;
  token_label: string;
  softhsm_conf: string | null;
  certificate: string;
  state: string;
  created: number;
}

/** A custom key store; its password (AWS_CLOUDHSM) or proxy secret (EXTERNAL_KEY_STORE) is sealed by the root key. */
export interface CustomKeyStoreRow {
  region: string;
  store_id: string;
  name: string;
  type: string;
  cluster_id: string | null;
  trust_anchor: string | null;
  sealed_password: Buffer | null;
  /** EXTERNAL_KEY_STORE: JSON of the proxy's endpoint, path, connectivity and access key id. */
  xks_config: string | null;
  sealed_xks_secret: Buffer | null;
  connection_state: string;
  error_code: string | null;
  created: number;
}

/** Which custom key store holds a KMS key, and its key there (a token object's CKA_ID, or the external key id). */
export interface CustomStoreKeyRow {
  region: string;
  key_id: string;
  store_id: string;
  token_key_id: Buffer | null;
  xks_key_id: string | null;
}

export const SCHEMA_VERSION = '4';

/** Upgrades of older stores, applied in order inside one transaction: version -> statements. */
export const MIGRATIONS: Record<string, string> = {
  '1': 'ALTER TABLE keys ADD COLUMN primary_region TEXT',
  // Version 3 adds grants and import parameters (created by SCHEMA) and this column.
  '2': 'ALTER TABLE keys ADD COLUMN imported_material_id BLOB',
  // Version 4: a role's MaxSessionDuration (roles made before it keep AWS's default, 1 hour).
  '3': 'ALTER TABLE iam_roles ADD COLUMN max_session_duration INTEGER NOT NULL DEFAULT 3600',
};
