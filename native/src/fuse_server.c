/*
 * The card's FUSE server, in C: one regular file (the decrypted volume) served
 * by libfuse's multi-threaded loop, with every read and write going straight
 * to the sector engine (engine.h) and the backing file on libfuse's own
 * threads. No request crosses into JavaScript; JavaScript only starts and
 * stops the server, through the binding (binding.c), which this file never
 * calls.
 *
 * The FUSE edge stays thin: it clips to the volume, maps byte ranges onto
 * 4096-byte sectors (read-modify-write for partial sectors under striped
 * sector locks), and turns failures into errno. ENOSPC, EDQUOT and EROFS from
 * the backing file pass through; anything else is EIO.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 26
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <unistd.h>
#include "engine.h"
#include "fuse_server.h"

#define SECTOR  ((unsigned)KMSVOL_SECTOR_SIZE)
#define STRIPES 256
#define MAX_IO  KMSVOL_MAX_IO

struct server {
  gkey *k; /* NULL: an unencrypted volume, bytes pass through */
  int fd;
  uint64_t payload; /* byte offset of the payload in the image */
  uint64_t size;    /* volume size in bytes */
  char *mountdir;
  char path[KMSVOL_NAME_MAX + 2]; /* "/<file name>" */
  struct fuse *fuse;
  struct fuse_chan *ch;
  pthread_t thread;
  int running;
  pthread_mutex_t stripes[STRIPES];
  /* Writes hold it shared; a snapshot holds it exclusively (fuse_server_freeze) to quiesce them. */
  pthread_rwlock_t freeze;
  atomic_ulong errors;
  atomic_int last_errno;
  /* The errno of the first write that failed; from then on every fsync fails (see s_sync). */
  atomic_int lost_write;
  atomic_int opens; /* open handles on the volume file (a loop device holds one) */
};

static server *self(void) { return (server *)fuse_get_context()->private_data; }

static int fail(server *s, int err) {
  atomic_fetch_add(&s->errors, 1);
  atomic_store(&s->last_errno, err);
  return (err == ENOSPC || err == EDQUOT || err == EROFS) ? -err : -EIO;
}

/*
 * A request that failed: log the sectors (one JSON line on stderr, which is the
 * card's log), count it, and give the kernel the errno. The request fails
 * whole; the card keeps serving the others. A failed write also makes every
 * later fsync fail (see s_sync).
 */
static int fail_io(server *s, int err, int write, uint64_t off, size_t size) {
  if (write) {
    int none = 0;
    atomic_compare_exchange_strong(&s->lost_write, &none, err);
  }
  uint64_t first = off / SECTOR, last = size ? (off + size - 1) / SECTOR : first;
  fprintf(
      stderr,
      "{\"level\":50,\"component\":\"fuse\",\"msg\":\"%s failed; the request gets an error\",\"sector\":%llu,\"sectors\":%llu,\"errno\":%d,\"error\":\"%s\"}\n",
      write ? (size ? "write" : "fsync") : "read", (unsigned long long)first, (unsigned long long)(last - first + 1), err, strerror(err));
  return fail(s, err);
}

/* Encrypt or decrypt whole sectors in place; all-zero ciphertext reads as zeros. */
static int crypt_sectors(server *s, uint8_t *buf, size_t len, uint64_t first, int enc) {
  return engine_crypt(s->k, buf, buf, len, first, SECTOR, enc, !enc) == ST_OK ? 0 : EIO;
}

/* Read and decrypt sectors [first, first + count) into buf. */
static int read_sectors(server *s, uint8_t *buf, uint64_t first, uint64_t count) {
  int e = pread_full(s->fd, buf, count * SECTOR, s->payload + first * SECTOR);
  return e ? e : crypt_sectors(s, buf, count * SECTOR, first, 0);
}

/* Lock the stripes of sectors [first, last] in ascending stripe order (no deadlock between ranges). */
static void lock_range(server *s, uint64_t first, uint64_t last, int lock) {
  uint8_t want[STRIPES] = {0};
  for (uint64_t n = first; n <= last && n - first < STRIPES; n++) want[n % STRIPES] = 1;
  for (int i = 0; i < STRIPES; i++) {
    if (!want[i]) continue;
    if (lock)
      pthread_mutex_lock(&s->stripes[i]);
    else
      pthread_mutex_unlock(&s->stripes[i]);
  }
}

static int s_getattr(const char *p, struct stat *st) {
  server *s = self();
  memset(st, 0, sizeof *st);
  st->st_uid = getuid();
  st->st_gid = getgid();
  if (strcmp(p, "/") == 0) {
    st->st_mode = S_IFDIR | 0700;
    st->st_nlink = 2;
    st->st_size = 4096;
    return 0;
  }
  if (strcmp(p, s->path) != 0) return -ENOENT;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = (off_t)s->size;
  st->st_blksize = SECTOR;
  st->st_blocks = (blkcnt_t)(s->size / 512);
  return 0;
}

static int s_readdir(const char *p, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi) {
  (void)off;
  (void)fi;
  if (strcmp(p, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0);
  fill(buf, "..", NULL, 0);
  fill(buf, self()->path + 1, NULL, 0);
  return 0;
}

static int s_open(const char *p, struct fuse_file_info *fi) {
  (void)fi;
  if (strcmp(p, self()->path) != 0) return -ENOENT;
  atomic_fetch_add(&self()->opens, 1);
  return 0;
}

static int s_read(const char *p, char *out, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)p;
  (void)fi;
  server *s = self();
  uint64_t off = (uint64_t)offset;
  if (off >= s->size || size == 0) return 0;
  if (off + size > s->size) size = (size_t)(s->size - off);
  if (!s->k) {
    int e = pread_full(s->fd, (uint8_t *)out, size, s->payload + off);
    return e ? fail_io(s, e, 0, off, size) : (int)size;
  }
  uint64_t first = off / SECTOR, last = (off + size - 1) / SECTOR, count = last - first + 1;
  int aligned = off % SECTOR == 0 && size % SECTOR == 0;
  uint8_t *buf = aligned ? (uint8_t *)out : malloc(count * SECTOR);
  if (!buf) return -ENOMEM;
  int e = read_sectors(s, buf, first, count);
  if (!e && !aligned) memcpy(out, buf + off % SECTOR, size);
  if (!aligned) free(buf);
  return e ? fail_io(s, e, 0, off, size) : (int)size;
}

/*
 * Reserve [off, off + len) in the backing file before any byte of a write is
 * encrypted or written, so that a full disk fails the request as a whole
 * (ENOSPC) instead of after part of it reached the image. File systems
 * without fallocate (EOPNOTSUPP) go straight to the write.
 */
static int reserve(server *s, uint64_t off, size_t len) {
  if (fallocate(s->fd, 0, (off_t)off, (off_t)len) == 0) return 0;
  return errno == EOPNOTSUPP ? 0 : errno;
}

static int s_write(const char *p, const char *in, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)p;
  (void)fi;
  server *s = self();
  uint64_t off = (uint64_t)offset;
  if (size == 0) return 0;
  if (off >= s->size) return -ENOSPC; /* a volume has a fixed size, like a block device */
  if (off + size > s->size) size = (size_t)(s->size - off);
  if (!s->k) {
    pthread_rwlock_rdlock(&s->freeze);
    int e = reserve(s, s->payload + off, size);
    if (!e) e = pwrite_full(s->fd, (const uint8_t *)in, size, s->payload + off);
    pthread_rwlock_unlock(&s->freeze);
    return e ? fail_io(s, e, 1, off, size) : (int)size;
  }
  uint64_t first = off / SECTOR, last = (off + size - 1) / SECTOR, count = last - first + 1;
  size_t head = off % SECTOR, tail = (size_t)((last + 1) * SECTOR - (off + size));
  uint8_t *buf = malloc(count * SECTOR);
  if (!buf) return -ENOMEM;
  int e = 0;
  pthread_rwlock_rdlock(&s->freeze);
  lock_range(s, first, last, 1);
  /* Only the first and last sectors can be partial: read them, patch, encrypt all, write. */
  if (head) e = read_sectors(s, buf, first, 1);
  if (!e && tail && (last != first || !head)) e = read_sectors(s, buf + (count - 1) * SECTOR, last, 1);
  if (!e) {
    memcpy(buf + head, in, size);
    e = crypt_sectors(s, buf, count * SECTOR, first, 1);
  }
  if (!e) e = reserve(s, s->payload + first * SECTOR, count * SECTOR);
  if (!e) e = pwrite_full(s->fd, buf, count * SECTOR, s->payload + first * SECTOR);
  lock_range(s, first, last, 0);
  pthread_rwlock_unlock(&s->freeze);
  free(buf);
  return e ? fail_io(s, e, 1, off, size) : (int)size;
}

/*
 * Postcondition: once a write has failed, no fsync succeeds again on this
 * attachment. The kernel does not always pass a failed FUSE write on: a loop
 * device request larger than max_write is split into several FUSE writes, and
 * when a later one fails the loop driver completes the request as a (short)
 * success, so the filesystem above believes blocks are on disk that are not.
 * Failing every later flush makes the fsync that would acknowledge them fail.
 */
static int s_sync(server *s) {
  int lost = atomic_load(&s->lost_write);
  if (lost) return (lost == ENOSPC || lost == EDQUOT || lost == EROFS) ? -lost : -EIO;
  return fdatasync(s->fd) == 0 ? 0 : fail_io(s, errno, 1, 0, 0);
}
static int s_fsync(const char *p, int datasync, struct fuse_file_info *fi) {
  (void)p;
  (void)datasync;
  (void)fi;
  return s_sync(self());
}
static int s_flush(const char *p, struct fuse_file_info *fi) {
  (void)p;
  (void)fi;
  return s_sync(self());
}
static int s_release(const char *p, struct fuse_file_info *fi) {
  (void)p;
  (void)fi;
  atomic_fetch_sub(&self()->opens, 1);
  return 0;
}

static int s_truncate(const char *p, off_t size) {
  server *s = self();
  if (strcmp(p, s->path) != 0) return -ENOENT;
  return (uint64_t)size == s->size ? 0 : -EPERM; /* fixed size; truncating to it is a no-op */
}

static int s_ftruncate(const char *p, off_t size, struct fuse_file_info *fi) {
  (void)fi;
  return s_truncate(p, size);
}

static int s_statfs(const char *p, struct statvfs *st) {
  (void)p;
  memset(st, 0, sizeof *st);
  st->f_bsize = st->f_frsize = SECTOR;
  st->f_blocks = self()->size / SECTOR;
  st->f_files = 1;
  st->f_namemax = 255;
  return 0;
}

static struct fuse_operations ops = {
    .getattr = s_getattr,
    .readdir = s_readdir,
    .open = s_open,
    .read = s_read,
    .write = s_write,
    .fsync = s_fsync,
    .flush = s_flush,
    .release = s_release,
    .truncate = s_truncate,
    .ftruncate = s_ftruncate,
    .statfs = s_statfs,
    .flag_nullpath_ok = 1,
};

static void *loop_thread(void *arg) {
  server *s = (server *)arg;
  fuse_loop_mt(s->fuse);
  return NULL;
}

void fuse_server_stop(server *s) {
  if (!s->running) return;
  s->running = 0;
  fuse_exit(s->fuse);
  fuse_unmount(s->mountdir, s->ch); /* closes the channel: the loop sees ENODEV and returns */
  pthread_join(s->thread, NULL);
  fuse_destroy(s->fuse);
}

void fuse_server_free(server *s) {
  fuse_server_stop(s);
  for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&s->stripes[i]);
  pthread_rwlock_destroy(&s->freeze);
  free(s->mountdir);
  free(s);
}

server *fuse_server_start(gkey *k, int fd, uint64_t payload, uint64_t size, const char *mountdir, const char *name, const char **why) {
  server *s = calloc(1, sizeof *s);
  if (!s) {
    *why = "out of memory";
    return NULL;
  }
  s->k = k;
  s->fd = fd;
  s->payload = payload;
  s->size = size;
  s->mountdir = strdup(mountdir);
  snprintf(s->path, sizeof s->path, "/%s", name);
  for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&s->stripes[i], NULL);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&s->freeze, &ra);
  pthread_rwlockattr_destroy(&ra);
  if (!s->mountdir) {
    fuse_server_free(s);
    *why = "out of memory";
    return NULL;
  }

  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  char opts[256];
  snprintf(opts, sizeof opts, "big_writes,max_write=%d,max_read=%d,fsname=kmsvol,subtype=kmsvol", MAX_IO, MAX_IO);
  fuse_opt_add_arg(&args, "kmsvol");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, opts);
  s->ch = fuse_mount(s->mountdir, &args);
  if (!s->ch) {
    fuse_opt_free_args(&args);
    fuse_server_free(s);
    *why = "fuse_mount failed: is /dev/fuse present, the directory empty and not mounted already?";
    return NULL;
  }
  s->fuse = fuse_new(s->ch, &args, &ops, sizeof ops, s);
  fuse_opt_free_args(&args);
  if (!s->fuse) {
    fuse_unmount(s->mountdir, s->ch);
    fuse_server_free(s);
    *why = "fuse_new failed";
    return NULL;
  }
  s->running = 1;
  if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) {
    s->running = 0;
    fuse_unmount(s->mountdir, s->ch);
    fuse_destroy(s->fuse);
    fuse_server_free(s);
    *why = "could not start the FUSE thread";
    return NULL;
  }
  return s;
}

/* Holding the lock exclusively waits for in-flight writes (they hold it shared) and holds new ones back. For snapshots. */
int fuse_server_freeze(server *s, int on) {
  if (!on) {
    pthread_rwlock_unlock(&s->freeze);
    return 0;
  }
  pthread_rwlock_wrlock(&s->freeze);
  if (fdatasync(s->fd) == 0) return 0;
  int e = errno;
  pthread_rwlock_unlock(&s->freeze);
  return e;
}

/*
 * EBS Elastic Volumes: the backing image was already extended. Readers see the
 * old or the new size; the kernel learns it at its next getattr.
 */
int fuse_server_resize(server *s, uint64_t size) {
  if (size == 0 || size < __atomic_load_n(&s->size, __ATOMIC_SEQ_CST)) return EINVAL;
  __atomic_store_n(&s->size, size, __ATOMIC_SEQ_CST);
  return 0;
}

void fuse_server_get_stats(server *s, fuse_server_stats *out) {
  out->errors = atomic_load(&s->errors);
  out->last_errno = atomic_load(&s->last_errno);
  out->lost_write = atomic_load(&s->lost_write);
  out->open_files = atomic_load(&s->opens);
}
