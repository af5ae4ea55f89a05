/*
 * The card's FUSE server (fuse_server.c): serves one regular file, the
 * decrypted volume, speaking the kernel's FUSE protocol itself, with its
 * worker threads calling the engine directly.
 * Plain C with no N-API: the binding (binding.c) starts and stops it.
 */
#ifndef KMSVOL_FUSE_SERVER_H
#define KMSVOL_FUSE_SERVER_H

#include <stdint.h>
#include "engine.h"

/* The largest read or write the kernel sends in one request (max_read, max_write). */
#define KMSVOL_MAX_IO (1024 * 1024)
/* The served file's name: 1..KMSVOL_NAME_MAX bytes of [A-Za-z0-9._-] (checked by TypeScript). */
#define KMSVOL_NAME_MAX 128
/* A mount directory's path, for messages (the server mounts on a held directory descriptor, never a name). */
#define KMSVOL_MOUNT_PATH_MAX 4095
/* Change tracking: one bit per block of this many bytes of the volume (EBS snapshots' block size). */
#define KMSVOL_CHANGE_BLOCK (512 * 1024)
/* The largest volume the change bitmap covers (64 TiB, EBS's largest): 16 MiB of address space, committed only where written. */
#define KMSVOL_CHANGE_MAX_BYTES (64ULL << 40)

/* What fuse_server_changes does with the bitmap. */
enum { CHANGES_PEEK = 0, CHANGES_TAKE = 1, CHANGES_MERGE = 2 };

typedef struct server server;

typedef struct {
  unsigned long errors; /* failed requests */
  int last_errno;
  int lost_write; /* errno of the first write that failed; 0: none */
  int open_files; /* open handles on the volume file (a loop device holds one) */
} fuse_server_stats;

/*
 * Serve `size` bytes of the payload at `payload` of `fd` as `name` in a FUSE mount placed on the
 * directory `dirfd` (an O_PATH descriptor the caller holds; borrowed, not kept), decrypted with `k`
 * (NULL: an unencrypted volume, bytes pass through). Mounts synchronously with the new mount API,
 * keeps the mount's descriptor, and starts the worker threads. With `track`, every write sets the
 * bit of each KMSVOL_CHANGE_BLOCK it touches (see fuse_server_changes). Returns the server, or NULL
 * with *why saying what failed.
 */
server *fuse_server_start(gkey *k, int fd, uint64_t payload, uint64_t size, int dirfd, const char *name, int track, const char **why);
/* 1 when another mount sits on or in the server's mount (then stop leaves it, and its own, mounted). */
int fuse_server_covered(server *s);
/* Open the served file through the held mount (O_RDWR | O_NOFOLLOW, and O_DIRECT when `direct`): a new fd, or -errno. */
int fuse_server_open(server *s, int direct);
/* The mount's st_dev and unique mount id (0 before Linux 6.8), without a request to the server: 0 or errno. */
int fuse_server_identity(server *s, uint64_t *dev, uint64_t *mnt);
/* Unmount through the held mount descriptor and wait for the workers to finish. Idempotent. */
void fuse_server_stop(server *s);
/* Stop (if running) and free. */
void fuse_server_free(server *s);
/* on: wait for in-flight writes, hold new ones back, fdatasync the backing file; off: let writes continue. 0 or errno. */
int fuse_server_freeze(server *s, int on);
/* Grow the served file to `size` bytes; never shrinks. 0, or EINVAL for a smaller size. */
int fuse_server_resize(server *s, uint64_t size);
void fuse_server_get_stats(server *s, fuse_server_stats *out);
/*
 * The change bitmap, as `len` bytes at `bits` (block b is bit b % 8 of byte b / 8; len * 8 blocks from 0,
 * at most those of KMSVOL_CHANGE_MAX_BYTES): PEEK copies it out, TAKE copies it out and clears what it
 * copied (word by word, atomically: a bit a write sets meanwhile is either taken or stays), MERGE ORs
 * `bits` in. 0, ENOTSUP when the server does not track, EINVAL for a length past the bitmap.
 */
int fuse_server_changes(server *s, int op, uint8_t *bits, size_t len);

#endif
