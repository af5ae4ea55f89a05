// In-process KMS throughput: GenerateDataKeyWithoutPlaintext and Decrypt, ops/s,
// on a real home (SQLite store, root-key sealing, audit log) — the path a card's attach takes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Benchmark from 'benchmark';
import { Kms } from '../dist/kms/kms.js';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bench-kms-'));
const kms = Kms.open({ home });
try {
  const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const ctx = { 'aws:ebs:id': 'vol-0123456789abcdef0' };
  const blob = kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx }).CiphertextBlob;
  const results = {};
  const suite = new Benchmark.Suite();
  suite
    .add(
      'GenerateDataKeyWithoutPlaintext',
      () => {
        kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx });
      },
      { maxTime: 3 },
    )
    .add(
      'Decrypt',
      () => {
        kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: ctx }).Plaintext.fill(0);
      },
      { maxTime: 3 },
    )
    .on('cycle', (e) => {
      results[e.target.name] = Math.round(e.target.hz);
      if (!json) console.log(String(e.target));
    })
    .run();
  const out = { machine: machine(), gdkWithoutPlaintextOps: results.GenerateDataKeyWithoutPlaintext, decryptOps: results.Decrypt };
  if (json) console.log(JSON.stringify(out));
  else {
    printMachine(out.machine);
    console.log(
      `target: >= 20000 ops/s each -> GDKWithoutPlaintext ${out.gdkWithoutPlaintextOps >= 20000 ? 'met' : 'NOT met'}, Decrypt ${out.decryptOps >= 20000 ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  kms.close();
  fs.rmSync(home, { recursive: true, force: true });
}
