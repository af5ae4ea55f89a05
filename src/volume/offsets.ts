/**
 * Sizes of the volume image. The sector arithmetic itself (which sectors a
 * request touches, read-modify-write of partial ones, clipping at the end of
 * the volume) lives where requests are served, in the card's C FUSE server
 * (native/src/fuse_server.c); test/integration/fuse-arith.test.ts checks it
 * through the mounted file against a model.
 */
export const SECTOR_SIZE = 4096;

export const GiB = 1024 ** 3;
