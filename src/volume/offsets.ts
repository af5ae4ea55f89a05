/**
 * Sizes of the volume image. The sector arithmetic itself (which sectors a
 * request touches, read-modify-write of partial ones, clipping at the end of
 * the volume) lives where requests are served, in the card's C FUSE server
 * (native/src/fuse_server.c); test/integration/fuse-arith.test.ts checks it
 * through the mounted file against a model.
 */
/** The volume sector (4096) and change tracking's block (512 KiB, EBS snapshots' block), as the native engine holds them. */
export { CHANGE_BLOCK, SECTOR_SIZE } from '../native/index.js';

export const GiB = 1024 ** 3;
