// One of the concurrent processes of the concurrency test: N rounds of
// CreateKey + CreateAlias + GenerateDataKey against a shared home.
import { Kms } from '../../src/kms/kms.js';

const [home, tag, rounds] = process.argv.slice(2) as [string, string, string];
const kms = Kms.open({ home });
const made: string[] = [];
let failures = 0;
for (let i = 0; i < Number(rounds); i++) {
  try {
    const id = kms.invoke('CreateKey', { Description: `${tag}-${i}` }).KeyMetadata.KeyId;
    kms.invoke('CreateAlias', { AliasName: `alias/${tag}-${i}`, TargetKeyId: id });
    kms.invoke('GenerateDataKey', { KeyId: `alias/${tag}-${i}`, NumberOfBytes: 64 });
    made.push(id);
  } catch (e) {
    failures++;
    process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  }
}
kms.close();
process.stdout.write(JSON.stringify({ made, failures }));
