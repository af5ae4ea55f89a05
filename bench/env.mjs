// What machine a benchmark ran on, printed with every result (as gocryptfs -speed does).
import fs from 'node:fs';
import os from 'node:os';

export function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const flags = (/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(' ');
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    aesni: flags.includes('aes'),
    vaes: flags.includes('vaes'),
    node: process.version,
    openssl: process.versions.openssl,
    kernel: os.release(),
  };
}

export function printMachine(m) {
  console.log(`CPU: ${m.cpu} (${m.cores} cores), AES-NI: ${m.aesni ? 'yes' : 'no'}, VAES: ${m.vaes ? 'yes' : 'no'}`);
  console.log(`Node ${m.node}, OpenSSL ${m.openssl} (Node's own, used by the native engine), Linux ${m.kernel}`);
}
