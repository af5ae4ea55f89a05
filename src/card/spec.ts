/**
 * The card's whole configuration, as one typed document: the parent (attach,
 * from the CLI, the `Kmsvol` API or the EC2 endpoint) writes it as one JSON
 * document on the card's stdin, and the card parses and checks it here, in
 * one place, before it does anything else.
 *
 * Not in argv and not in the environment: both are readable in /proc by
 * every user of the machine, even for a root process, and the spec holds the
 * card's role session and its grant token. The card's environment is the
 * short list below and nothing else.
 */
export const CARD_SPEC_VERSION = 1;

export interface CardCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The KMS the card unwraps its volume's data key through. */
export type CardKms =
  /** The embedded KMS on the home, as the card's own principal. */
  | { kind: 'embedded' }
  /** A remote KMS (`kmsvol serve`, or AWS KMS with `--kms aws`): its endpoint (absent: AWS's own for the region), region and the card's credentials. */
  | { kind: 'remote'; endpoint?: string; region: string; credentials: CardCredentials };

export interface CardSpec {
  version: typeof CARD_SPEC_VERSION;
  /** The home directory and the embedded KMS's root key file (KMSVOL_ROOT_KEY_FILE or the home's own). */
  home: string;
  rootKeyFile: string;
  volumeId: string;
  /** Directory where the decrypted volume appears as one file. */
  mountDir: string;
  loop: boolean;
  /** The region and account the caller works in, however it chose them (--region, AWS_REGION, the API). */
  region: string;
  account: string;
  /** The instant the card's clock reads (the caller's clock is fixed: KMSVOL_NOW or the API's ManualClock); absent: the system clock. */
  now?: string;
  kms: CardKms;
  /** The grant the control plane made for this card (card/grants.ts). */
  grantToken?: string;
  /** false: keep no change bitmap (every snapshot then reads every block). For benchmarks only: KMSVOL_CHANGE_TRACKING=0 in the parent. */
  changeTracking?: false;
}

/**
 * The variables a card inherits: how programs are found and loaded, the
 * locale, the TLS trust a remote KMS may need, the engine's backend and the
 * FUSE server's read-around window and direct writes (benchmarks). No credential, token or KMS choice: those are in the spec.
 */
export const CARD_ENV = [
  'PATH',
  'LANG',
  'LC_ALL',
  'TZ',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'NODE_EXTRA_CA_CERTS',
  'AWS_CA_BUNDLE',
  'KMSVOL_XTS_BACKEND',
  'KMSVOL_READ_AROUND_KB',
  'KMSVOL_DIRECT_WRITE_KB',
  'KMSVOL_DIRECT_READ_KB',
] as const;

/** The card's environment: the CARD_ENV variables of `env` that are set. */
export function cardEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of CARD_ENV) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

export function serializeCardSpec(spec: CardSpec): string {
  // Precondition: a parent writes only the version its own card reads (the card refuses any other, parseCardSpec).
  if (spec.version !== CARD_SPEC_VERSION) throw new CardSpecError(`version must be ${CARD_SPEC_VERSION}, not ${JSON.stringify(spec.version)}.`);
  return JSON.stringify(spec);
}

/** A spec that cannot be used: says which member is wrong. */
export class CardSpecError extends Error {
  constructor(message: string) {
    super(`The card's spec is not valid: ${message}`);
    this.name = 'InvalidCardSpec';
  }
}

type Json = Record<string, unknown>;

function object(v: unknown, what: string): Json {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CardSpecError(`${what} must be an object.`);
  return v as Json;
}

function str(o: Json, k: string, what = k, optional = false): string | undefined {
  const v = o[k];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v === '') throw new CardSpecError(`${what} must be a non-empty string.`);
  return v;
}

function need(o: Json, k: string, what = k): string {
  return str(o, k, what) as string;
}

function credentials(v: unknown): CardCredentials {
  const c = object(v, 'kms.credentials');
  const sessionToken = str(c, 'sessionToken', 'kms.credentials.sessionToken', true);
  return {
    accessKeyId: need(c, 'accessKeyId', 'kms.credentials.accessKeyId'),
    secretAccessKey: need(c, 'secretAccessKey', 'kms.credentials.secretAccessKey'),
    ...(sessionToken ? { sessionToken } : {}),
  };
}

function kms(v: unknown): CardKms {
  const k = object(v, 'kms');
  if (k.kind === 'embedded') return { kind: 'embedded' };
  if (k.kind === 'remote') {
    const endpoint = str(k, 'endpoint', 'kms.endpoint', true);
    return { kind: 'remote', ...(endpoint ? { endpoint } : {}), region: need(k, 'region', 'kms.region'), credentials: credentials(k.credentials) };
  }
  throw new CardSpecError(`kms.kind must be "embedded" or "remote", not ${JSON.stringify(k.kind)}.`);
}

/** Parse and check the spec the parent sent. Precondition: every member is present and of its type; unknown members are refused. */
export function parseCardSpec(text: string): CardSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CardSpecError('it is not one JSON document.');
  }
  const o = object(raw, 'the spec');
  // Precondition: the spec is the version this card reads, newer or older refused: the kmsvol that started the card
  // and the card it runs (dist/card/main.js) are one build.
  if (o.version !== CARD_SPEC_VERSION)
    throw new CardSpecError(
      `version must be ${CARD_SPEC_VERSION}, not ${JSON.stringify(o.version)}. The kmsvol that started this card and the card it runs (card/main.js) are different builds; rebuild or reinstall kmsvol so that they are one.`,
    );
  const known = ['version', 'home', 'rootKeyFile', 'volumeId', 'mountDir', 'loop', 'region', 'account', 'now', 'kms', 'grantToken', 'changeTracking'];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) throw new CardSpecError(`unknown member(s) ${unknown.join(', ')}.`);
  const volumeId = need(o, 'volumeId');
  if (!/^vol-[0-9a-f]{17}$/.test(volumeId)) throw new CardSpecError(`volumeId ${JSON.stringify(volumeId)} is not a volume id (vol- and 17 hex digits).`);
  if (typeof o.loop !== 'boolean') throw new CardSpecError('loop must be true or false.');
  const account = need(o, 'account');
  const now = str(o, 'now', 'now', true);
  if (now !== undefined && Number.isNaN(Date.parse(now))) throw new CardSpecError(`now ${JSON.stringify(now)} is not an ISO date.`);
  const grantToken = str(o, 'grantToken', 'grantToken', true);
  if (o.changeTracking !== undefined && o.changeTracking !== false) throw new CardSpecError('changeTracking must be false or absent.');
  return {
    version: CARD_SPEC_VERSION,
    home: need(o, 'home'),
    rootKeyFile: need(o, 'rootKeyFile'),
    volumeId,
    mountDir: need(o, 'mountDir'),
    loop: o.loop,
    region: need(o, 'region'),
    account,
    ...(now !== undefined ? { now } : {}),
    kms: kms(o.kms),
    ...(grantToken ? { grantToken } : {}),
    ...(o.changeTracking === false ? { changeTracking: false as const } : {}),
  };
}
