import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, kmsvol, ROOT } from './cli.js';
import { onCleanup } from './home.js';

/**
 * `kmsvol serve` on a test home, with an access key for it, for the AWS
 * clients (boto3, the AWS CLI, @aws-sdk/client-ec2). Stopped by the test's
 * cleanup, which first force-detaches whatever the test left attached.
 */
export interface Endpoint {
  url: string;
  region: string;
  env: Record<string, string>;
}

/** `cleanup` registers the stop (default: the test's cleanup; a file-wide endpoint passes its own). */
export async function startEndpoint(home: string, region = 'us-east-1', cleanup: (fn: () => void) => void = onCleanup): Promise<Endpoint> {
  const key = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'tester']).json.AccessKey;
  const log = path.join(home, 'endpoint.log');
  const fd = fs.openSync(log, 'a');
  const p = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', fd], env: { ...process.env, KMSVOL_HOME: home } });
  fs.closeSync(fd);
  cleanup(() => {
    const vols = kmsvol(home, ['ec2', 'describe-volumes', '--region', region]).json?.Volumes ?? [];
    for (const v of vols) if (v.Attachments.length) kmsvol(home, ['ec2', 'detach-volume', '--volume-id', v.VolumeId, '--force', '--region', region]);
    p.kill('SIGTERM');
    // Until it has exited: this process is blocked in spawnSync and cannot reap it, so an exited server stays a zombie (state Z), which kill -0 still finds.
    spawnSync('sh', ['-c', `while kill -0 ${p.pid} 2>/dev/null && [ "$(cut -d' ' -f3 /proc/${p.pid}/stat 2>/dev/null)" != Z ]; do sleep 0.05; done`], {
      timeout: 20_000,
    });
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const early = (code: number | null) => reject(new Error(`the endpoint exited (${code}) before listening: ${fs.readFileSync(log, 'utf8')}`));
    p.once('exit', early);
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /"Endpoint": ?"([^"]+)"/.exec(out);
      if (m) {
        p.off('exit', early);
        resolve(m[1]!);
      }
    });
  });
  return {
    url,
    region,
    env: {
      AWS_ACCESS_KEY_ID: key.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: key.SecretAccessKey,
      AWS_DEFAULT_REGION: region,
      AWS_REGION: region,
      AWS_ENDPOINT_URL: url,
      KMSVOL_HOME: home,
      KMSVOL_REGION: region,
      AWS_PAGER: '',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    },
  };
}
