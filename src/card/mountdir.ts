import path from 'node:path';
import type { Ec2Context } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import { walkMountDir } from './paths.js';

/** Where an attach mounts the decrypted volume: the directory given to --device, or the home's run directory. */
export function mountDirFor(ctx: Ec2Context, req: { VolumeId: string; Device?: string }): string {
  return path.resolve(req.Device ?? path.join(ctx.home.runDir, req.VolumeId));
}

/**
 * A directory given to attach-volume --device, where the decrypted volume is
 * mounted as root: checked under the path rule (card/paths.ts) for an early
 * error only. The card, which acts, walks it again itself and mounts on the
 * descriptor its own walk holds.
 */
export function checkMountDir(dir: string): void {
  const invalid = (why: string) => Ec2Errors.invalidParameter(`Value (${JSON.stringify(dir).slice(1, -1)}) for parameter device is invalid: ${why}`);
  if (dir.trim() === '') throw invalid('give the directory where the decrypted volume file should appear, for example --device /mnt/kmsvol.');
  // Precondition: the path means what the kernel would make of it. A '..' is resolved as text before the walk
  // (after a link, the kernel would go elsewhere), and a control character is ambiguous in the mount table.
  if (dir.split('/').includes('..')) throw invalid("a '..' component is not taken; give the directory's real path (realpath -m on it).");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\x00-\x1f\x7f]/.test(dir)) throw invalid('it holds a control character (a newline, a tab...); give a path without one.');
  walkMountDir(path.resolve(dir), 'check');
}
