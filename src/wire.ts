/**
 * Library values as JSON on a wire, the one walk the CLI's output and the KMS
 * endpoint share: Uint8Array as base64, undefined members dropped, and Dates
 * in the wire's own encoding (the AWS CLI prints ISO 8601 with microseconds;
 * the KMS's JSON 1.1 protocol sends epoch seconds).
 */
export function toWire(v: unknown, date: (d: Date) => string | number): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (v instanceof Date) return date(v);
  if (Array.isArray(v)) return v.map((x) => toWire(x, date));
  // fromEntries, not assignment: a member named __proto__ (an encryption context's key) stays a member.
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, toWire(x, date)]),
    );
  return v;
}

/** The KMS JSON 1.1 protocol's dates: epoch seconds. */
export function epochSeconds(d: Date): number {
  return d.getTime() / 1000;
}
