import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import * as ec2 from '@aws-sdk/client-ec2';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { PRE_AUTH_LIMITS } from '../../src/server/limits.js';
import type { Endpoint } from '../helpers/ec2-endpoint.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { onCleanup, tempHome } from '../helpers/home.js';

/**
 * Issue 24, findings 5 and 6, run as the attacker ran them against
 * `kmsvol serve`: a signed DescribeVolumes with 40,000 filter values (it held
 * the event loop for 33 s), and 1,100 slowloris connections (they took every
 * slot, and real clients timed out). Requests are signed by the SDK's own
 * signer (@smithy/signature-v4), not by kmsvol's code.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The hash @smithy/signature-v4 wants, over node's crypto (what @smithy/hash-node does). */
class Sha256 {
  private readonly h: crypto.Hash | crypto.Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? crypto.createHash('sha256') : crypto.createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

/** POST a SigV4-signed EC2 Query body; resolves with the status, the error code and the milliseconds from the first byte sent to the last byte answered. */
async function signedQuery(ep: Endpoint, body: string): Promise<{ status: number; code: string; ms: number; text: string }> {
  const url = new URL(ep.url);
  const signer = new SignatureV4({
    service: 'ec2',
    region: ep.region,
    sha256: Sha256,
    credentials: { accessKeyId: ep.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ep.env.AWS_SECRET_ACCESS_KEY! },
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/',
        agent: false,
        headers: { ...signed.headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '',
            ms: Number(process.hrtime.bigint() - start) / 1e6,
            text,
          }),
        );
      },
    );
    const start0 = Date.now();
    // No answer in 90 s (the landed parser, on 40,000 × 1): a result that fails every assertion, with its time.
    req.setTimeout(90_000, () => req.destroy());
    req.on('error', (e) => resolve({ status: -1, code: `no answer: ${e.message}`, ms: Date.now() - start0, text: '' }));
    req.end(body);
  });
}

/** A DescribeVolumes body with `filters` filters of `values` values each (`names`: whether each filter has its Name). */
function describeBody(filters: number, values: number, names = true): string {
  const parts = ['Action=DescribeVolumes', 'Version=2016-11-15'];
  for (let f = 1; f <= filters; f++) {
    if (names) parts.push(`Filter.${f}.Name=tag-key`);
    for (let v = 1; v <= values; v++) parts.push(`Filter.${f}.Value.${v}=v`);
  }
  return parts.join('&');
}

describe('EC2 Query limits before any work (finding 5)', () => {
  it('40,000 filter values in any shape (200 × 200, 1 × 40,000, 40,000 × 1), signed, are refused in well under 100 ms', async () => {
    const ep = await startEndpoint(tempHome('kmsvol-wire-'));
    // Warm the endpoint (credentials lookup, first KMS open) so the figures are the request's own.
    expect((await signedQuery(ep, describeBody(1, 1))).status).toBe(200);
    const shapes: [string, string][] = [
      ['200 × 200', describeBody(200, 200)],
      ['1 × 40,000', describeBody(1, 40_000)],
      // With a Name each, 40,000 filters exceed the 1 MiB body limit (the next test); without, they fit.
      ['40,000 × 1', describeBody(40_000, 1, false)],
    ];
    // Every shape is sent before anything is asserted, so that a failure reports all three figures.
    const results = [];
    for (const [shape, body] of shapes) {
      expect(Buffer.byteLength(body)).toBeLessThan(PRE_AUTH_LIMITS.maxBody);
      results.push({ shape, bytes: Buffer.byteLength(body), ...(await signedQuery(ep, body)) });
    }
    const figures = results.map((r) => `${r.shape}: ${r.status} ${r.code} in ${r.ms.toFixed(1)} ms (${r.bytes} bytes)`);
    process.stdout.write(`finding 5 figures: ${figures.join('; ')}\n`);
    for (const r of results) {
      expect({ shape: r.shape, status: r.status, code: r.code }).toEqual({ shape: r.shape, status: 400, code: 'InvalidParameterValue' });
      expect(r.text).toContain(`more than ${PRE_AUTH_LIMITS.maxParameters} parameters`);
      // The issue asks for well under 100 ms; the bound is 1 s so that a loaded 2-core machine cannot fail it (the old parser took 33 s).
      expect(r.ms, r.shape).toBeLessThan(1000);
    }
  }, 300_000);

  it("AWS's filter limits at the wire: 50 × 200 is answered, 51 filters or 201 values is FilterLimitExceeded, a body over 1 MiB is 413", async () => {
    const ep = await startEndpoint(tempHome('kmsvol-wire-'));
    const full = await signedQuery(ep, describeBody(50, 200));
    expect(full.status, full.text).toBe(200);
    expect(full.text).toMatch(/<volumeSet(\/>|><\/volumeSet>)/);
    const many = await signedQuery(ep, describeBody(51, 1));
    expect({ status: many.status, code: many.code }).toEqual({ status: 400, code: 'FilterLimitExceeded' });
    expect(many.text).toContain('51 were given; the limit is 50 filters');
    const wide = await signedQuery(ep, describeBody(2, 201));
    expect({ status: wide.status, code: wide.code }).toEqual({ status: 400, code: 'FilterLimitExceeded' });
    const huge = describeBody(40_000, 1);
    expect(Buffer.byteLength(huge)).toBeGreaterThan(PRE_AUTH_LIMITS.maxBody);
    const big = await signedQuery(ep, huge);
    expect({ status: big.status, code: big.code }).toEqual({ status: 413, code: 'RequestEntityTooLargeException' });
    process.stdout.write(
      `50 × 200 answered in ${full.ms.toFixed(1)} ms; 40,000 × 1 with names (${Buffer.byteLength(huge)} bytes): 413 in ${big.ms.toFixed(1)} ms\n`,
    );
  }, 120_000);
});

/** Open `n` connections from `localAddress` that send a request line and then one header byte a second, for ever. */
function slowloris(ep: Endpoint, n: number, localAddress: string) {
  const url = new URL(ep.url);
  const sockets: net.Socket[] = [];
  const state = { refused: 0, closed: 0, answers: [] as string[] };
  let settle: () => void = () => {};
  const settled = new Promise<void>((r) => (settle = r));
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: url.hostname, port: Number(url.port), localAddress });
    let got = '';
    s.on('connect', () => s.write(`POST / HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: `));
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => {
      state.closed++;
      if (got.startsWith('HTTP/1.1 503 ')) state.refused++;
      if (state.answers.length < 3) state.answers.push(got);
      if (state.closed >= n - PRE_AUTH_LIMITS.perPeer) settle();
    });
    sockets.push(s);
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (s.writable) s.write('a');
  }, 1000);
  const stop = () => {
    clearInterval(drip);
    for (const s of sockets) s.destroy();
  };
  onCleanup(stop);
  return { sockets, state, settled, stop };
}

describe('connections before authentication (finding 6)', () => {
  it('with 1,100 slowloris connections open from 127.0.0.2, a signed DescribeVolumes from 127.0.0.1 (@aws-sdk/client-ec2) is answered within 1 s; 127.0.0.2 holds at most 64 and the rest get a 503', async () => {
    const ep = await startEndpoint(tempHome('kmsvol-wire-'));
    const credentials = { accessKeyId: ep.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ep.env.AWS_SECRET_ACCESS_KEY! };
    // Load the SDK's code paths once, on a client that is then closed (its kept-alive connection with it).
    const warm = new ec2.EC2Client({ endpoint: ep.url, region: ep.region, credentials });
    await warm.send(new ec2.DescribeVolumesCommand({}));
    warm.destroy();

    const attack = slowloris(ep, 1100, '127.0.0.2');
    // Until the endpoint has turned away all but its per-peer share (the landed code never does: it waits 20 s, then the client call is measured anyway).
    await Promise.race([attack.settled, new Promise((r) => setTimeout(r, 20_000).unref())]);
    const c = new ec2.EC2Client({ endpoint: ep.url, region: ep.region, credentials, maxAttempts: 1 });
    onCleanup(() => c.destroy());
    const start = Date.now();
    const out = await c.send(new ec2.DescribeVolumesCommand({})).catch((e: Error) => e);
    const ms = Date.now() - start;
    const held = attack.sockets.filter((s) => !s.destroyed && !s.closed).length;
    process.stdout.write(
      `finding 6: DescribeVolumes answered in ${ms} ms with 1,100 slow connections from 127.0.0.2 (${held} held, ${attack.state.refused} refused with 503)\n`,
    );
    expect(out).not.toBeInstanceOf(Error);
    expect((out as ec2.DescribeVolumesCommandOutput).Volumes).toEqual([]);
    expect(ms).toBeLessThan(1000);
    expect(held).toBeLessThanOrEqual(PRE_AUTH_LIMITS.perPeer);
    expect(attack.state.refused).toBeGreaterThanOrEqual(1100 - PRE_AUTH_LIMITS.perPeer);
    expect(attack.state.answers[0]).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*127\.0\.0\.2 already has 64 connections open/);
    attack.stop();
  }, 120_000);

  it('a connection that sends its headers a byte every 500 ms, and one that sends nothing, are answered 408 and closed at the 10 s header timeout', async () => {
    const ep = await startEndpoint(tempHome('kmsvol-wire-'));
    const url = new URL(ep.url);
    const open = (drip: boolean) =>
      new Promise<{ ms: number; got: string }>((resolve) => {
        const start = Date.now();
        const s = net.connect({ host: url.hostname, port: Number(url.port), localAddress: '127.0.0.3' });
        let got = '';
        let timer: NodeJS.Timeout | undefined;
        onCleanup(() => {
          clearInterval(timer);
          s.destroy();
        });
        s.on('connect', () => {
          if (!drip) return;
          s.write(`POST / HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: `);
          timer = setInterval(() => s.write('a'), 500);
        });
        s.on('data', (d) => (got += d));
        s.on('error', () => {});
        s.on('close', () => {
          clearInterval(timer);
          resolve({ ms: Date.now() - start, got });
        });
      });
    const [dripping, silent] = await Promise.all([open(true), open(false)]);
    process.stdout.write(`header timeout: the dripping connection was closed after ${dripping.ms} ms, the silent one after ${silent.ms} ms\n`);
    for (const r of [dripping, silent]) {
      expect(r.got).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"__type":"RequestTimeout"/);
      // The bound the issue demands: the 10 s header timeout, checked every second (node's default check came every 30 s, after 60 s).
      expect(r.ms).toBeGreaterThanOrEqual(PRE_AUTH_LIMITS.headersTimeoutMs - 500);
      expect(r.ms).toBeLessThan(PRE_AUTH_LIMITS.headersTimeoutMs + 2 * PRE_AUTH_LIMITS.checkIntervalMs + 3000);
    }
  }, 60_000);
});
