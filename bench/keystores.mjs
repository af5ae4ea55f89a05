// Custom key stores, side by side in one run: Decrypt ops/s of a 64-byte data key
// under keys of origin AWS_KMS, AWS_CLOUDHSM (SoftHSM2 token) and EXTERNAL_KEY_STORE
// (kmsvol xks-proxy on loopback, its own SoftHSM2 token), through the in-process KMS;
// then the wall time of `kmsvol ec2 attach-volume` (CLI start to attached) for a
// volume on each, median of 3. Needs root (attach) and dist/ built.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Benchmark from 'benchmark';
import { createCluster } from '../dist/kms/keystores/clusters.js';
import { Kms } from '../dist/kms/kms.js';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/kmsvol.js');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-cks-'));
const proxyHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-xksp-'));
const AK = 'AKIAXKSPROXYBENCH2345';
const SK = 'c2VjcmV0LWZvci1rbXN2b2wteGtzLWJlbmNoLW9ubHk=';
const PW = 'kmsuser-Passw0rd';
const cli = (...args) => spawnSync(process.execPath, [bin, ...args, '--region', 'local'], { env: { ...process.env, KMSVOL_HOME: home }, encoding: 'utf8' });

const proxy = spawn(
  process.execPath,
  [
    bin,
    'xks-proxy',
    '--port',
    '0',
    '--region',
    'local',
    '--uri-path',
    '/bench/kms/xks/v1',
    '--access-key-id',
    AK,
    '--secret-access-key',
    SK,
    '--key-id',
    'bench-key',
  ],
  {
    env: { ...process.env, KMSVOL_HOME: proxyHome },
    stdio: ['ignore', 'pipe', 'ignore'],
  },
);
const volumes = [];
let kms;
try {
  const endpoint = await new Promise((resolve, reject) => {
    let out = '';
    proxy.stdout.on('data', (d) => {
      out += d;
      const m = /"XksProxyUriEndpoint": "([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    proxy.once('exit', (c) => reject(new Error(`xks-proxy exited ${c}`)));
  });
  kms = Kms.open({ home, region: 'local', audit: false });
  const cluster = createCluster(kms.ctx, { kmsuserPassword: PW, softhsmDir: path.join(home, 'hsm') }).Cluster;
  const hsmStore = kms.invoke('CreateCustomKeyStore', {
    CustomKeyStoreName: 'bench-hsm',
    CloudHsmClusterId: cluster.ClusterId,
    TrustAnchorCertificate: cluster.Certificates.ClusterCertificate,
    KeyStorePassword: PW,
  }).CustomKeyStoreId;
  kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: hsmStore });
  const xksStore = kms.invoke('CreateCustomKeyStore', {
    CustomKeyStoreName: 'bench-xks',
    CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
    XksProxyConnectivity: 'PUBLIC_ENDPOINT',
    XksProxyUriEndpoint: endpoint,
    XksProxyUriPath: '/bench/kms/xks/v1',
    XksProxyAuthenticationCredential: { AccessKeyId: AK, RawSecretAccessKey: SK },
  }).CustomKeyStoreId;
  kms.invoke('ConnectCustomKeyStore', { CustomKeyStoreId: xksStore });
  const keys = {
    AWS_KMS: kms.invoke('CreateKey', {}).KeyMetadata.KeyId,
    AWS_CLOUDHSM: kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: hsmStore }).KeyMetadata.KeyId,
    EXTERNAL_KEY_STORE: kms.invoke('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksStore, XksKeyId: 'bench-key' }).KeyMetadata.KeyId,
  };
  const ctx = { 'aws:ebs:id': 'vol-0123456789abcdef0' };
  const results = { decryptOps: {}, attachMs: {} };
  const suite = new Benchmark.Suite();
  for (const [origin, key] of Object.entries(keys)) {
    const blob = kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx }).CiphertextBlob;
    suite.add(origin, () => kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: ctx }).Plaintext.fill(0), { maxTime: 3 });
  }
  suite.on('cycle', (e) => {
    results.decryptOps[e.target.name] = Math.round(e.target.hz);
    if (!json) console.log(`Decrypt, ${String(e.target)}`);
  });
  suite.run();
  kms.close();
  kms = undefined;
  for (const [origin, key] of Object.entries(keys)) {
    const made = cli('ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key);
    if (made.status !== 0) throw new Error(made.stderr);
    const vol = JSON.parse(made.stdout).VolumeId;
    volumes.push(vol);
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      const a = cli('ec2', 'attach-volume', '--volume-id', vol);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (a.status !== 0) throw new Error(a.stderr);
      const d = cli('ec2', 'detach-volume', '--volume-id', vol);
      if (d.status !== 0) throw new Error(d.stderr);
      for (let w = 0; w < 300 && JSON.parse(cli('ec2', 'describe-volumes', '--volume-ids', vol).stdout).Volumes[0].State !== 'available'; w++)
        spawnSync('sleep', ['0.1']);
    }
    times.sort((a, b) => a - b);
    results.attachMs[origin] = Math.round(times[1]);
    if (!json) console.log(`attach-volume (CLI, median of 3), ${origin}: ${Math.round(times[1])} ms (${times.map((t) => Math.round(t)).join(', ')})`);
  }
  if (json) console.log(JSON.stringify({ machine: machine(), ...results }));
  else printMachine(machine());
} finally {
  kms?.close();
  for (const v of volumes) {
    cli('ec2', 'detach-volume', '--volume-id', v, '--force');
    cli('ec2', 'delete-volume', '--volume-id', v);
  }
  proxy.kill('SIGTERM');
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(proxyHome, { recursive: true, force: true });
}
