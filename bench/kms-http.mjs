// KMS over HTTP: GenerateDataKeyWithoutPlaintext and Decrypt through @aws-sdk/client-kms,
// SigV4-signed, against `kmsvol kms serve` in its own process, with 64 requests in flight.
// Reports req/s and p50/p99 latency. Target: >= 5,000 req/s each (AWS KMS's default
// per-account quota for symmetric operations in most regions).
//
// Two clients, side by side: the SDK itself (what users run; on 2 cores its own CPU
// cost per request, printed, bounds the figure), and a light load generator that replays
// SigV4 requests signed once by the SDK's signer (valid for 5 minutes, as in AWS),
// which measures the server. The server's CPU per request is read from /proc.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sdk from '@aws-sdk/client-kms';
import { SignatureV4 } from '@smithy/signature-v4';
import { machine, printMachine } from './env.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const IN_FLIGHT = 64;
// One server process per core: the load generator and the server share the same 2 cores.
const WORKERS = os.cpus().length;
const SECONDS = quick ? 3 : 10;
const TARGET = 5000;
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/kmsvol.js');

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-http-'));
const env = { ...process.env, KMSVOL_HOME: home };
const ak = JSON.parse(spawnSync(process.execPath, [BIN, 'iam', 'create-access-key', '--user-name', 'bench'], { env, encoding: 'utf8' }).stdout).AccessKey;
const server = spawn(process.execPath, [BIN, 'kms', 'serve', '--port', '0', '--workers', String(WORKERS)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const endpoint = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /"Endpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`kmsvol kms serve exited with ${code}`)));
  });
  const client = new sdk.KMSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
    maxAttempts: 1,
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT }) },
  });
  const key = (await client.send(new sdk.CreateKeyCommand({}))).KeyMetadata.KeyId;
  const ctx = { 'aws:ebs:id': 'vol-0123456789abcdef0' };
  const blob = (await client.send(new sdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx }))).CiphertextBlob;
  const ops = {
    GenerateDataKeyWithoutPlaintext: () =>
      client.send(new sdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx })),
    Decrypt: async () => (await client.send(new sdk.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }))).Plaintext.fill(0),
  };
  const bodies = {
    GenerateDataKeyWithoutPlaintext: { KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx },
    Decrypt: { CiphertextBlob: Buffer.from(blob).toString('base64'), EncryptionContext: ctx },
  };

  // The light client: requests signed once, then replayed on keep-alive connections.
  class Sha256 {
    constructor(secret) {
      this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
    }
    update(d) {
      this.h.update(d);
    }
    async digest() {
      return new Uint8Array(this.h.digest());
    }
  }
  const u = new URL(endpoint);
  const signer = new SignatureV4({
    credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
    region: 'us-east-1',
    service: 'kms',
    sha256: Sha256,
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  async function presigned(op) {
    const body = JSON.stringify(bodies[op]);
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: u.hostname,
      port: Number(u.port),
      path: '/',
      query: {},
      headers: {
        host: u.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `TrentService.${op}`,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const headers = signed.headers;
    return () =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers, agent }, (res) => {
          const parts = [];
          res.on('data', (d) => parts.push(d));
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${op}: HTTP ${res.statusCode} ${Buffer.concat(parts)}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
  }

  /** CPU seconds the server's processes (the primary and its workers) have used: utime + stime from /proc. */
  function serverCpu() {
    const cpu = (pid) => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    };
    const workers = fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return [server.pid, ...workers].reduce((sum, pid) => sum + cpu(pid), 0);
  }

  /** IN_FLIGHT workers calling `call` for `seconds`; the latency of each call. */
  async function load(call, seconds) {
    const latencies = [];
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await call();
          latencies.push(performance.now() - t);
        }
      }),
    );
    return latencies;
  }

  async function measure(call) {
    // Warm up connections and both processes' JIT, then run IN_FLIGHT workers for SECONDS.
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: IN_FLIGHT }, () => call()));
    const start = performance.now();
    const cpu0 = serverCpu();
    const client0 = process.cpuUsage();
    const latencies = await load(call, SECONDS);
    const elapsed = (performance.now() - start) / 1000;
    const cpu = serverCpu() - cpu0;
    const own = process.cpuUsage(client0);
    latencies.sort((a, b) => a - b);
    const pct = (p) => Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(2));
    return {
      reqPerSec: Math.round(latencies.length / elapsed),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      requests: latencies.length,
      serverCpuUsPerReq: Math.round((cpu * 1e6) / latencies.length),
      clientCpuUsPerReq: Math.round((own.user + own.system) / latencies.length),
    };
  }

  // Every server worker reaches its steady state on both operations before anything is measured
  // (whichever operation ran first used to look ~30% slower).
  const replays = {};
  for (const name of Object.keys(ops)) replays[name] = await presigned(name);
  for (const name of Object.keys(ops)) {
    await load(replays[name], quick ? 1 : 3);
    await load(ops[name], quick ? 1 : 3);
  }
  const results = { sdk: {}, replay: {} };
  for (const [name, call] of Object.entries(ops)) {
    for (const [client, run] of [
      ['sdk', call],
      ['replay', replays[name]],
    ]) {
      const r = (results[client][name] = await measure(run));
      if (!json)
        console.log(
          `${name.padEnd(32)} ${client.padEnd(7)} ${String(r.reqPerSec).padStart(6)} req/s   p50 ${r.p50Ms} ms   p99 ${r.p99Ms} ms   CPU per request: server ${r.serverCpuUsPerReq} us, client ${r.clientCpuUsPerReq} us`,
        );
    }
  }
  client.destroy();
  agent.destroy();
  const out = { machine: machine(), inFlight: IN_FLIGHT, seconds: SECONDS, ...results };
  if (json) console.log(JSON.stringify(out));
  else {
    printMachine(out.machine);
    console.log(
      `(${IN_FLIGHT} requests in flight for ${SECONDS} s each; sdk = @aws-sdk/client-kms, replay = pre-signed SigV4 requests on keep-alive connections; client and server share the 2 cores)`,
    );
    const met = (r) => `${r.reqPerSec} req/s ${r.reqPerSec >= TARGET ? 'met' : 'NOT met'}`;
    console.log(
      `target: >= ${TARGET} req/s each -> sdk: GDKWithoutPlaintext ${met(out.sdk.GenerateDataKeyWithoutPlaintext)}, Decrypt ${met(out.sdk.Decrypt)}; replay: GDKWithoutPlaintext ${met(out.replay.GenerateDataKeyWithoutPlaintext)}, Decrypt ${met(out.replay.Decrypt)}`,
    );
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(home, { recursive: true, force: true });
}
