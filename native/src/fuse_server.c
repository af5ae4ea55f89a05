/*
 * The card's FUSE server, in C and without libfuse: it speaks the kernel's
 * FUSE protocol (linux/fuse.h) on /dev/fuse itself, for one regular file (the
 * decrypted volume). Worker threads, each on its own cloned /dev/fuse file
 * descriptor, take a request, run it through the sector engine (engine.h)
 * and the backing file, and answer; no request crosses into JavaScript.
 * JavaScript only starts and stops the server, through the binding
 * (binding.c), which this file never calls.
 *
 * Why not libfuse: the loop device above this file sends its requests as
 * asynchronous direct I/O, and the path is only fast when the kernel may
 * send many of them at once, each up to 1 MiB (FUSE_ASYNC_DIO, FUSE_MAX_PAGES,
 * FOPEN_DIRECT_IO, FOPEN_PARALLEL_DIRECT_WRITES). libfuse 2 cannot negotiate
 * most of these, and the protocol subset a one-file server needs is small.
 *
 * The FUSE edge stays thin: it clips to the volume, maps byte ranges onto
 * 4096-byte sectors (read-modify-write for partial sectors under striped
 * sector locks), and turns failures into errno. ENOSPC, EDQUOT and EROFS from
 * the backing file pass through; anything else is EIO.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include "engine.h"
#include "fuse_server.h"

#define SECTOR               ((unsigned)KMSVOL_SECTOR_SIZE)
#define STRIPES              256
#define MAX_IO               KMSVOL_MAX_IO
#define THREADS              4               /* requests in flight at once; the loop device keeps several outstanding */
#define REQ_BUF              (MAX_IO + 8192) /* the kernel refuses a read(2) of /dev/fuse shorter than max_write + 8 KiB */
#define ROOT_ID              FUSE_ROOT_ID
#define FILE_ID              2
#define DIRECT_IO_ALLOW_MMAP (1ULL << 36)       /* FUSE_DIRECT_IO_ALLOW_MMAP, protocol 7.39 (newer than Debian 12's header) */
#define RESERVE_CHUNK        (64ull << 10)      /* see reserve() */
#define RESERVE_RUN          (4ull << 20)       /* see reserve() */
#define RUN_HEADROOM         (64 * RESERVE_RUN) /* see reserve() */
#define READ_AROUND          (64ull << 10)      /* see read_around() */
#define STREAM               (RESERVE_RUN / 16) /* a write this large is part of a stream: see reserve(), write_image() */
#define ATTR_TTL             1                  /* seconds the kernel may cache attributes and the name */
#define CHANGE_BLOCK         ((uint64_t)KMSVOL_CHANGE_BLOCK)
#define CHANGE_WORDS         (KMSVOL_CHANGE_MAX_BYTES / KMSVOL_CHANGE_BLOCK / 64)

struct server {
  gkey *k; /* NULL: an unencrypted volume, bytes pass through */
  int fd;
  uint64_t payload;               /* byte offset of the payload in the image */
  _Atomic uint64_t size;          /* volume size in bytes; grows only (fuseResize) */
  int mnt;                        /* the mount (fsmount's descriptor): files are opened and the mount released through it, never by name */
  char name[KMSVOL_NAME_MAX + 1]; /* the file's name in the mount */
  int dev[THREADS];               /* /dev/fuse: [0] is the mount's, the others clones of it */
  struct worker {
    struct server *s;
    int dev;
    pthread_t thread;
  } workers[THREADS];
  int nthreads;
  int running;
  pthread_mutex_t stripes[STRIPES];
  /* Writes hold it shared; a snapshot holds it exclusively (fuseFreeze) to quiesce them. */
  pthread_rwlock_t freeze;
  atomic_ulong errors;
  atomic_int last_errno;
  /* The errno of the first write that failed; from then on every fsync fails (see do_sync). */
  atomic_int lost_write;
  atomic_int opens;           /* open handles on the volume file (a loop device holds one) */
  _Atomic uint64_t *reserved; /* a bit per RESERVE_CHUNK of the volume already reserved in the image (see reserve) */
  uint64_t nchunks;           /* chunks the bitmap covers: the size at start (a grown tail is reserved write by write) */
  _Atomic uint64_t *changes;  /* a bit per CHANGE_BLOCK written since the last take (see mark_changed); NULL: not tracking */
  uint64_t window;            /* read-around window in bytes (see read_around); 0: none */
  uint64_t direct;            /* writes of at least this many bytes go to the disk directly (see write_image); 0: none */
  uint64_t direct_read;       /* reads of at least this many bytes go to the disk directly (see read_image); 0: none */
  int dfd;                    /* the image opened again with O_DIRECT, from fd itself (see open_direct); -1: none */
  uint64_t dalign;            /* the alignment dfd needs of offsets and lengths */
  atomic_int writing;         /* writes in progress (see write_image) */
};

/* The errno a request gets: what the backing file said when it is about space or a read-only disk, else EIO. */
static int kernel_errno(int err) { return (err == ENOSPC || err == EDQUOT || err == EROFS) ? err : EIO; }

static int fail(server *s, int err) {
  atomic_fetch_add(&s->errors, 1);
  atomic_store(&s->last_errno, err);
  return kernel_errno(err);
}

/*
 * A request that failed: log the sectors (one JSON line on stderr, which is the
 * card's log), count it, and give the kernel the errno. The request fails
 * whole; the card keeps serving the others. A failed write also makes every
 * later fsync fail (see do_sync).
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

/* Encrypt or decrypt whole sectors from src to dst (may be the same); all-zero ciphertext reads as zeros. */
static int crypt_sectors(server *s, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, int enc) {
  return engine_crypt(s->k, src, dst, len, first, SECTOR, enc, !enc) == ST_OK ? 0 : EIO;
}

/* Read and decrypt sectors [first, first + count) into buf. */
static int read_sectors(server *s, uint8_t *buf, uint64_t first, uint64_t count) {
  int e = pread_full(s->fd, buf, count * SECTOR, s->payload + first * SECTOR);
  return e ? e : crypt_sectors(s, buf, buf, count * SECTOR, first, 0);
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

/*
 * Reserve volume bytes [off, off + len) in the backing file before any byte of
 * a write is encrypted or written, so that a full disk fails the request as a
 * whole (ENOSPC) instead of after part of it reached the image. File systems
 * without fallocate (EOPNOTSUPP) go straight to the write.
 *
 * fallocate dirties the image's inode in the journal every time, so space is
 * reserved RESERVE_CHUNK bytes at a time and remembered: a write into a chunk
 * already reserved makes no system call. Nothing gives space back while the
 * volume is attached (the server has no FALLOCATE operation, so no discard
 * reaches the image).
 *
 * Where the image's blocks land on disk is decided here, in the order the
 * workers reserve: four of them reserving 64 KiB pieces of one sequential
 * stream interleave the pieces on disk, and a later 1 MiB read of the image
 * becomes several disk reads (1,263 extents for 800 MiB laid out by fio, where
 * the plain loop device's image had 24). So a large write (STREAM bytes or
 * more: a stream, as the file system above writes back a file) reserves
 * the whole aligned RESERVE_RUN around it in one call, which the file system
 * allocates as one extent; a small write still reserves only its 64 KiB
 * chunks, so small scattered writes keep a sparse image sparse. Scattered
 * large writes do not: each takes its 4 MiB (up to 16x the bytes written,
 * never more than the volume). Telling them from a stream by where they land
 * (the start of a run, or next to reserved space) left a stream whose writes
 * arrive out of order in 370 extents instead of 35, so size alone decides.
 *
 * Runs are tried only while the file system has RUN_HEADROOM free: ext4 and
 * XFS keep what a fallocate that fails part-way allocated, so a run tried
 * near a full disk would take the space the write itself needs, for good.
 * When a run is not tried or fails, the write's chunks are, then its own
 * range.
 */
static inline int reserved(server *s, uint64_t c) { return c < s->nchunks && (atomic_load(&s->reserved[c / 64]) & (1ull << (c % 64))); }

static int reserve_range(server *s, uint64_t start, uint64_t end) {
  uint64_t vsize = atomic_load(&s->size);
  if (end > vsize) end = vsize; /* never past the end: fallocate would grow the image */
  if (end / RESERVE_CHUNK > s->nchunks || fallocate(s->fd, 0, (off_t)(s->payload + start), (off_t)(end - start)) != 0) return -1;
  for (uint64_t c = start / RESERVE_CHUNK; c * RESERVE_CHUNK < end && c < s->nchunks; c++) atomic_fetch_or(&s->reserved[c / 64], 1ull << (c % 64));
  return 0;
}

static int streams(server *s, size_t len) {
  struct statvfs v;
  return len >= STREAM && fstatvfs(s->fd, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize >= RUN_HEADROOM;
}

static int reserve(server *s, uint64_t off, size_t len) {
  uint64_t c0 = off / RESERVE_CHUNK, c1 = (off + len - 1) / RESERVE_CHUNK, c;
  for (c = c0; c <= c1 && reserved(s, c);) c++;
  if (c > c1) return 0;
  if (streams(s, len) && reserve_range(s, off / RESERVE_RUN * RESERVE_RUN, (off + len + RESERVE_RUN - 1) / RESERVE_RUN * RESERVE_RUN) == 0) return 0;
  if (reserve_range(s, c0 * RESERVE_CHUNK, (c1 + 1) * RESERVE_CHUNK) == 0) return 0;
  if (fallocate(s->fd, 0, (off_t)(s->payload + off), (off_t)len) == 0) return 0;
  return errno == EOPNOTSUPP ? 0 : errno;
}

/*
 * Change tracking, for incremental snapshots: set the bit of every
 * CHANGE_BLOCK that bytes [off, off + size) touch. The hot path takes no lock
 * and writes no shared line that is already marked: a relaxed load, and an
 * atomic OR only when the bit is not set yet (a block is usually written
 * many times between two snapshots). Called before the data is written, with
 * the freeze lock held shared, so a snapshot's freeze (which holds it
 * exclusively) sees every write it waited for marked; a write that then fails
 * stays marked, which only over-counts. The bitmap never moves: it is sized
 * for the largest volume (CHANGE_WORDS) and its pages are committed as they
 * are first written, so a resize needs nothing here.
 */
static inline void mark_changed(server *s, uint64_t off, size_t size) {
  _Atomic uint64_t *w = s->changes;
  if (!w) return;
  for (uint64_t b = off / CHANGE_BLOCK, last = (off + size - 1) / CHANGE_BLOCK; b <= last; b++) {
    uint64_t bit = 1ULL << (b % 64);
    if (!(atomic_load_explicit(&w[b / 64], memory_order_relaxed) & bit)) atomic_fetch_or_explicit(&w[b / 64], bit, memory_order_relaxed);
  }
}

/*
 * The image opened a second time, with O_DIRECT, for write_image and read_image: from the
 * descriptor the card holds (its /proc/self/fd link), never by name, and kept
 * only if it is the same file and the file system says how to align direct
 * I/O (statx STATX_DIOALIGN) within what the workers' page-aligned buffers
 * give. Else -1, and every request goes through the page cache (tmpfs before
 * Linux 6.6, file systems without direct I/O).
 */
static int open_direct(int fd, uint64_t *align) {
  char link[32];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  int d = open(link, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (d < 0) return -1;
  struct stat a, b;
  struct statx x;
  if (fstat(fd, &a) == 0 && fstat(d, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino && statx(d, "", AT_EMPTY_PATH, STATX_DIOALIGN, &x) == 0 &&
      (x.stx_mask & STATX_DIOALIGN) && x.stx_dio_offset_align && x.stx_dio_mem_align <= 4096 && x.stx_dio_offset_align <= 4096) {
    *align = x.stx_dio_offset_align;
    return d;
  }
  close(d);
  return -1;
}

/*
 * Write ciphertext (buf, page-aligned) at volume offset off of the image. A
 * write of STREAM bytes or more, while another write is in progress
 * (queued writes, as a file system on the loop device writes a file back),
 * goes to the disk with O_DIRECT: that file system caches the plaintext, so
 * keeping the ciphertext in the image's page cache too, as buffered writes
 * did, doubled the memory a stream of writes takes and the copying, as
 * dm-crypt never does. A lone writer (dd to the volume, one write at a time)
 * stays buffered: it would wait for the disk on every write, and a 1 MiB
 * stream ran at 492 against 844-954 MiB/s (breaker12). So do smaller writes.
 * The kernel writes back and drops whatever the image's page cache holds of
 * the range first, so the two paths stay coherent, and a direct write that
 * fails fails its request at once (do_write). The data is on the disk, not
 * yet past its cache: fsync still flushes (do_sync).
 */
static int write_image(server *s, const uint8_t *buf, size_t len, uint64_t off, int queued) {
  uint64_t at = s->payload + off;
  if (queued && s->dfd >= 0 && s->direct && len >= s->direct && at % s->dalign == 0 && len % s->dalign == 0) return pwrite_full(s->dfd, buf, len, at);
  return pwrite_full(s->fd, buf, len, at);
}

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* Linux 6.5, the same number on every architecture; newer than Debian 12's headers */
#endif

/* Pages of image bytes [at, at + len) the page cache holds (cachestat(2)); -1 when it cannot tell. */
static int64_t cached_pages(int fd, uint64_t at, uint64_t len) {
  struct {
    uint64_t off, len;
  } range = {at, len};
  struct {
    uint64_t cache, dirty, writeback, evicted, recently_evicted;
  } cs = {0};
  return syscall(__NR_cachestat, fd, &range, &cs, 0) == 0 ? (int64_t)cs.cache : -1;
}

/*
 * 1 when cachestat sees the image's page cache: the first page, just read
 * through fd, must show. Not on overlayfs (the root of a container): its file
 * keeps no page cache of its own, the file below does, so cachestat on it
 * says 0 whatever was just written; nor before Linux 6.5 (no cachestat).
 * Without it read_image could not tell a range just written from one never
 * read, and would send both to the disk; so the card reads through the page
 * cache there.
 */
static int sees_cache(int fd) {
  uint8_t b;
  return pread(fd, &b, 1, 0) == 1 && cached_pages(fd, 0, 4096) > 0;
}

/*
 * Read image bytes at volume offset off into buf (page-aligned). A read of
 * direct_read bytes or more (a stream: a file system's readahead through the
 * loop device, cp, a sequential reader) of a range the image's page cache
 * holds none of goes to the disk with O_DIRECT, as dm-crypt reads: the file
 * system on the volume caches the plaintext it asked for, so a second copy as
 * ciphertext in the image's page cache only doubled the memory and the
 * copying. On this VM it also cost the card 1.2-2.2 s of CPU per GiB copied
 * out against 0.4-0.5 s (page-cache pages the host had taken back, faulted in
 * one by one). cachestat(2) tells without starting a readahead (a RWF_NOWAIT
 * read would); where it cannot see the cache (sees_cache) no read goes direct.
 * A range the page cache holds any of is read through it: those pages may be
 * what was just written. Either way the kernel writes back the range's dirty
 * pages before a direct read, so the two paths stay coherent.
 *
 * A direct read that fails is read again through the page cache: the kernel
 * fails a direct read with the error of an earlier failed write-back of any
 * range of the file (filemap_write_and_wait_range reports the mapping's
 * AS_EIO/AS_ENOSPC once), which a buffered read never does; a block that
 * cannot be read fails both.
 */
static int read_image(server *s, uint8_t *buf, size_t len, uint64_t off) {
  uint64_t at = s->payload + off;
  if (s->dfd >= 0 && s->direct_read && len >= s->direct_read && at % s->dalign == 0 && len % s->dalign == 0 && cached_pages(s->fd, at, len) == 0 &&
      pread_full(s->dfd, buf, len, at) == 0)
    return 0;
  return pread_full(s->fd, buf, len, at);
}

/*
 * Read volume bytes [off, off + len) of the image into buf; *at is where they
 * start in buf (MAX_IO + 2 sectors). A read smaller than the window that the
 * page cache cannot answer whole (RWF_NOWAIT) reads the aligned window around
 * it in one I/O instead, as the kernel's fault-around does for a mapped file:
 * the neighbours land in the image's page cache (as ciphertext), and a later
 * read of one of them costs no disk read. The loop device sends its requests
 * as direct I/O and the file system above asks for no readahead on random
 * reads, so without this every small read is one disk read.
 */
static int read_around(server *s, uint8_t *buf, uint64_t off, size_t len, uint8_t **at) {
  uint64_t w = s->window;
  *at = buf;
  if (w && len < w) {
    struct iovec v = {buf, len};
    if (preadv2(s->fd, &v, 1, (off_t)(s->payload + off), RWF_NOWAIT) == (ssize_t)len) return 0;
    uint64_t start = off / w * w, end = (off + len + w - 1) / w * w, vsize = atomic_load(&s->size);
    if (end > vsize) end = vsize;
    if (end - start <= MAX_IO) {
      *at = buf + (off - start);
      if (pread_full(s->fd, buf, (size_t)(end - start), s->payload + start) == 0) return 0;
      *at = buf; /* a neighbour that cannot be read (EIO) must not fail this read: read the request alone */
    }
  }
  return read_image(s, buf, len, off);
}

/* A size from the environment, for benchmarks (KMSVOL_READ_AROUND_KB, KMSVOL_DIRECT_WRITE_KB, KMSVOL_DIRECT_READ_KB): decimal KiB, 0 for off, at most MAX_IO;
 * unset or not digits: dflt. */
static uint64_t kb_setting(const char *name, uint64_t dflt) {
  const char *kb = getenv(name);
  if (!kb || !*kb || kb[strspn(kb, "0123456789")]) return dflt;
  unsigned long long v = strtoull(kb, NULL, 10); /* saturates on overflow */
  return v > MAX_IO / 1024 ? MAX_IO : (uint64_t)v << 10;
}

/* ---------- the operations on the one file; each returns 0 or an errno ---------- */

/* Read `size` bytes at `off` into *out (a pointer into buf, which has MAX_IO + 2 sectors); *got is the byte count. */
static int do_read(server *s, uint8_t *buf, uint64_t off, size_t size, const uint8_t **out, size_t *got) {
  uint64_t vsize = atomic_load(&s->size);
  *out = buf;
  *got = 0;
  if (off >= vsize || size == 0) return 0;
  if (off + size > vsize) size = (size_t)(vsize - off);
  uint64_t first = off / SECTOR, last = (off + size - 1) / SECTOR;
  uint64_t start = s->k ? first * SECTOR : off;
  size_t len = s->k ? (size_t)((last - first + 1) * SECTOR) : size;
  uint8_t *p;
  int e = read_around(s, buf, start, len, &p);
  if (!e && s->k) e = crypt_sectors(s, p, p, len, first, 0);
  if (e) return fail_io(s, e, 0, off, size);
  *out = p + (off - start);
  *got = size;
  return 0;
}

/* Write `size` bytes from `in` at `off`, using buf (MAX_IO + 2 sectors) for the ciphertext. */
static int do_write(server *s, uint8_t *buf, const uint8_t *in, uint64_t off, size_t size, size_t *put) {
  uint64_t vsize = atomic_load(&s->size);
  *put = 0;
  if (size == 0) return 0;
  if (off >= vsize) return ENOSPC; /* a volume has a fixed size, like a block device */
  if (off + size > vsize) size = (size_t)(vsize - off);
  int e = 0, queued = atomic_fetch_add(&s->writing, 1) > 0;
  pthread_rwlock_rdlock(&s->freeze);
  mark_changed(s, off, size);
  if (!s->k) {
    e = reserve(s, off, size);
    if (!e) e = pwrite_full(s->fd, in, size, s->payload + off);
  } else {
    uint64_t first = off / SECTOR, last = (off + size - 1) / SECTOR, count = last - first + 1;
    size_t head = off % SECTOR, tail = (size_t)((last + 1) * SECTOR - (off + size));
    lock_range(s, first, last, 1);
    if (!head && !tail) {
      e = crypt_sectors(s, in, buf, size, first, 1); /* whole sectors: encrypt straight from the request */
    } else {
      /* Only the first and last sectors can be partial: read them, patch, encrypt all. */
      if (head) e = read_sectors(s, buf, first, 1);
      if (!e && tail && (last != first || !head)) e = read_sectors(s, buf + (count - 1) * SECTOR, last, 1);
      if (!e) {
        memcpy(buf + head, in, size);
        e = crypt_sectors(s, buf, buf, count * SECTOR, first, 1);
      }
    }
    if (!e) e = reserve(s, first * SECTOR, count * SECTOR);
    if (!e) e = write_image(s, buf, count * SECTOR, first * SECTOR, queued);
    lock_range(s, first, last, 0);
  }
  pthread_rwlock_unlock(&s->freeze);
  atomic_fetch_sub(&s->writing, 1);
  if (e) return fail_io(s, e, 1, off, size);
  *put = size;
  return 0;
}

/*
 * Postcondition: once a write has failed, no fsync succeeds again on this
 * attachment. The kernel does not always pass a failed FUSE write on: a loop
 * device request larger than max_write is split into several FUSE writes, and
 * when a later one fails the loop driver completes the request as a (short)
 * success, so the filesystem above believes blocks are on disk that are not.
 * Failing every later flush makes the fsync that would acknowledge them fail.
 */
static int do_sync(server *s) {
  int lost = atomic_load(&s->lost_write);
  if (lost) return kernel_errno(lost);
  return fdatasync(s->fd) == 0 ? 0 : fail_io(s, errno, 1, 0, 0);
}

/* ---------- the protocol ---------- */

static void fill_attr(server *s, struct fuse_attr *a, uint64_t ino) {
  memset(a, 0, sizeof *a);
  a->ino = ino;
  a->uid = getuid();
  a->gid = getgid();
  if (ino == ROOT_ID) {
    a->mode = S_IFDIR | 0700;
    a->nlink = 2;
    a->size = 4096;
  } else {
    uint64_t size = atomic_load(&s->size);
    a->mode = S_IFREG | 0600;
    a->nlink = 1;
    a->size = size;
    a->blocks = size / 512;
    a->blksize = SECTOR;
  }
}

/* Answer a request: the header, then up to two pieces of payload (none when err). */
static void reply(int dev, uint64_t unique, int err, const void *a, size_t alen, const void *b, size_t blen) {
  if (err) alen = blen = 0;
  struct fuse_out_header h = {.len = (uint32_t)(sizeof h + alen + blen), .error = -err, .unique = unique};
  struct iovec v[3] = {{&h, sizeof h}, {(void *)a, alen}, {(void *)b, blen}};
  /* ENOENT: the request was interrupted or the connection aborted; nobody waits for the answer. */
  while (writev(dev, v, 3) < 0 && errno == EINTR) {}
}

#define REPLY(err, p, n) reply(dev, in->unique, (err), (p), (n), NULL, 0)

static void handle_init(int dev, const struct fuse_in_header *in, const struct fuse_init_in *ii) {
  if (ii->major != FUSE_KERNEL_VERSION) {
    REPLY(EPROTO, NULL, 0);
    return;
  }
  struct fuse_init_out o = {0};
  o.major = FUSE_KERNEL_VERSION;
  o.minor = FUSE_KERNEL_MINOR_VERSION;
  o.max_readahead = ii->max_readahead;
  o.flags = ii->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ASYNC_DIO | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS);
  o.max_background = 64; /* asynchronous direct I/O is sent as background requests */
  o.congestion_threshold = 48;
  o.max_write = MAX_IO;
  o.max_pages = MAX_IO / 4096;
  o.time_gran = 1;
  if (ii->flags & FUSE_INIT_EXT) { /* let tools that mmap the file do so, although it is served uncached */
    o.flags |= FUSE_INIT_EXT;
    o.flags2 = ii->flags2 & (uint32_t)(DIRECT_IO_ALLOW_MMAP >> 32);
  }
  REPLY(0, &o, sizeof o);
}

static void handle_readdir(int dev, const struct fuse_in_header *in, const struct fuse_read_in *r, const char *name) {
  char d[1024];
  size_t len = 0;
  const char *names[] = {".", "..", name};
  for (uint64_t i = r->offset; i < 3; i++) {
    size_t nl = strlen(names[i]), rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
    if (len + rec > r->size || len + rec > sizeof d) break;
    struct fuse_dirent *de = (struct fuse_dirent *)(d + len);
    memset(de, 0, rec);
    de->ino = i == 2 ? FILE_ID : ROOT_ID;
    de->off = i + 1;
    de->namelen = (uint32_t)nl;
    de->type = i == 2 ? DT_REG : DT_DIR;
    memcpy(de->name, names[i], nl);
    len += rec;
  }
  REPLY(0, d, len);
}

static void handle(server *s, int dev, uint8_t *req, size_t n, uint8_t *buf) {
  const struct fuse_in_header *in = (const struct fuse_in_header *)req;
  const void *arg = req + sizeof *in;
  if (n < sizeof *in || in->len != n) return;
  switch (in->opcode) {
  case FUSE_INIT:
    handle_init(dev, in, arg);
    return;
  case FUSE_FORGET:
  case FUSE_BATCH_FORGET:
  case FUSE_INTERRUPT: /* every request finishes quickly; none is abandoned */
  case FUSE_NOTIFY_REPLY:
    return; /* no answer expected */
  case FUSE_LOOKUP: {
    if (in->nodeid != ROOT_ID || strcmp((const char *)arg, s->name) != 0) {
      REPLY(ENOENT, NULL, 0);
      return;
    }
    struct fuse_entry_out e = {0};
    e.nodeid = FILE_ID;
    e.entry_valid = e.attr_valid = ATTR_TTL;
    fill_attr(s, &e.attr, FILE_ID);
    REPLY(0, &e, sizeof e);
    return;
  }
  case FUSE_GETATTR:
  case FUSE_SETATTR: {
    if (in->opcode == FUSE_SETATTR) {
      const struct fuse_setattr_in *sa = arg;
      /* Fixed size, owner and mode, like a block device; truncating to the size is a no-op. */
      if (((sa->valid & FATTR_SIZE) && sa->size != atomic_load(&s->size)) || (sa->valid & (FATTR_MODE | FATTR_UID | FATTR_GID))) {
        REPLY(EPERM, NULL, 0);
        return;
      }
    }
    struct fuse_attr_out a = {0};
    a.attr_valid = ATTR_TTL;
    fill_attr(s, &a.attr, in->nodeid);
    REPLY(0, &a, sizeof a);
    return;
  }
  case FUSE_OPEN: {
    if (in->nodeid != FILE_ID) {
      REPLY(EISDIR, NULL, 0);
      return;
    }
    atomic_fetch_add(&s->opens, 1);
    /*
     * An O_DIRECT open (the loop device in direct-I/O mode, or fio --direct=1) is served uncached,
     * its requests sent asynchronously and in parallel; any other open goes through the page cache
     * with the kernel's readahead, as a regular file does.
     */
    const struct fuse_open_in *oi = arg;
    struct fuse_open_out o = {.open_flags = (oi->flags & O_DIRECT) ? FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES : 0};
    REPLY(0, &o, sizeof o);
    return;
  }
  case FUSE_OPENDIR: {
    struct fuse_open_out o = {0};
    REPLY(in->nodeid == ROOT_ID ? 0 : ENOTDIR, &o, sizeof o);
    return;
  }
  case FUSE_READ: {
    const struct fuse_read_in *r = arg;
    const uint8_t *out = NULL;
    size_t got = 0;
    int e = r->size > MAX_IO ? EINVAL : do_read(s, buf, r->offset, r->size, &out, &got);
    REPLY(e, out, got);
    return;
  }
  case FUSE_WRITE: {
    const struct fuse_write_in *w = arg;
    struct fuse_write_out o = {0};
    size_t put = 0;
    int e = w->size > MAX_IO || sizeof *in + sizeof *w + w->size > n ? EINVAL : do_write(s, buf, (const uint8_t *)(w + 1), w->offset, w->size, &put);
    o.size = (uint32_t)put;
    REPLY(e, &o, sizeof o);
    return;
  }
  case FUSE_FSYNC:
  case FUSE_FLUSH:
    REPLY(do_sync(s), NULL, 0);
    return;
  case FUSE_RELEASE:
    atomic_fetch_sub(&s->opens, 1);
    REPLY(0, NULL, 0);
    return;
  case FUSE_RELEASEDIR:
  case FUSE_FSYNCDIR:
    REPLY(0, NULL, 0);
    return;
  case FUSE_READDIR:
    handle_readdir(dev, in, arg, s->name);
    return;
  case FUSE_STATFS: {
    struct fuse_statfs_out o = {0};
    o.st.bsize = o.st.frsize = SECTOR;
    o.st.blocks = atomic_load(&s->size) / SECTOR;
    o.st.files = 1;
    o.st.namelen = 255;
    REPLY(0, &o, sizeof o);
    return;
  }
  case FUSE_DESTROY:
    REPLY(0, NULL, 0);
    return;
  default: /* create, unlink, xattrs, locks, fallocate, ioctl...: the kernel remembers ENOSYS and answers for itself */
    REPLY(ENOSYS, NULL, 0);
    return;
  }
}

static void *worker(void *arg) {
  server *s = ((struct worker *)arg)->s;
  int dev = ((struct worker *)arg)->dev;
  uint8_t *req = aligned_alloc(4096, REQ_BUF);
  uint8_t *buf = aligned_alloc(4096, MAX_IO + 2 * SECTOR);
  if (!req || !buf) {
    fprintf(stderr, "{\"level\":50,\"component\":\"fuse\",\"msg\":\"a FUSE worker could not allocate its buffers; it stops\"}\n");
    free(req);
    free(buf);
    return NULL;
  }
  for (;;) {
    ssize_t n = read(dev, req, REQ_BUF);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      break; /* ENODEV: unmounted or aborted */
    }
    handle(s, dev, req, (size_t)n, buf);
  }
  free(req);
  free(buf);
  return NULL;
}

/* ---------- mount and unmount ---------- */

/*
 * The new mount API (fsopen(2), fsconfig, fsmount, move_mount), called through
 * syscall(2): Debian 12's glibc declares the wrappers, older ones do not, and
 * <linux/mount.h> conflicts with <sys/mount.h>. The constants are the uapi's
 * (linux/mount.h), defined here where <sys/mount.h> lacks them.
 */
#ifndef FSCONFIG_SET_STRING
#define FSCONFIG_SET_STRING 1
#endif
#ifndef FSCONFIG_CMD_CREATE
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

static int fsconfig_string(int fsfd, const char *key, const char *value) { return (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, key, value, 0); }

/*
 * Mount a FUSE file system served on a new /dev/fuse descriptor on the
 * directory `dirfd` (held by the caller since it walked to it: no name is
 * resolved here), keeping the mount's descriptor in s->mnt; 0 or errno (with
 * *what naming the step).
 */
static int mount_fuse(server *s, int dirfd, const char **what) {
  s->dev[0] = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (s->dev[0] < 0) {
    *what = "open /dev/fuse";
    return errno;
  }
  int e = 0, fsfd = (int)syscall(SYS_fsopen, "fuse", FSOPEN_CLOEXEC);
  if (fsfd < 0) {
    *what = "fsopen(fuse)";
    e = errno;
  } else {
    char fd[16], uid[16], gid[16], max_read[16];
    snprintf(fd, sizeof fd, "%d", s->dev[0]);
    snprintf(uid, sizeof uid, "%u", getuid());
    snprintf(gid, sizeof gid, "%u", getgid());
    snprintf(max_read, sizeof max_read, "%d", MAX_IO);
    const char *opts[][2] = {{"source", "kmsvol"}, {"subtype", "kmsvol"}, {"fd", fd}, {"rootmode", "40000"}, {"user_id", uid},
                             {"group_id", gid},    {"max_read", max_read}};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0] && !e; i++)
      if (fsconfig_string(fsfd, opts[i][0], opts[i][1]) != 0) {
        *what = "fsconfig";
        e = errno;
      }
    if (!e && syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
      *what = "fsconfig(create)";
      e = errno;
    }
    if (!e) {
      s->mnt = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
      if (s->mnt < 0) {
        *what = "fsmount";
        e = errno;
      }
    }
    close(fsfd);
    if (!e && syscall(SYS_move_mount, s->mnt, "", dirfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
      *what = "move_mount";
      e = errno;
    }
  }
  if (e) {
    if (s->mnt >= 0) close(s->mnt); /* never attached, or attached nowhere: closing it frees the superblock */
    s->mnt = -1;
    close(s->dev[0]);
    s->dev[0] = -1;
  }
  return e;
}

/*
 * Unmount through the held mount descriptor: /proc/self/fd/N is a magic link
 * to exactly that mount, whatever is at its path now. The descriptor itself
 * keeps the mount busy, so it is detached (MNT_DETACH), then the descriptor
 * closed. The connection is always aborted first (MNT_FORCE: FUSE's
 * umount_begin), so every worker's read(2) returns ENODEV now: a copy of the
 * mount elsewhere would otherwise keep the connection, and the card with its
 * key, alive until it went. Such copies are made by anyone, without privilege
 * (unshare -Urm copies every mount into a new namespace), and a bind mount by
 * root is one too. A plain detach comes here only once nothing has the file
 * open, so no request of a user is cut off; a forced one cuts them off on purpose.
 */
static void unmount_fuse(server *s) {
  if (s->mnt < 0) return;
  char self[32];
  snprintf(self, sizeof self, "/proc/self/fd/%d", s->mnt);
  /* umount(2) ends on the top of a stack of mounts: with one over ours it would release that one; never do. */
  if (!fuse_server_covered(s)) umount2(self, MNT_DETACH | MNT_FORCE);
  close(s->mnt);
  s->mnt = -1;
}

/*
 * 1 when another mount sits on (or in) this server's mount: a mount whose
 * parent, in /proc/self/mountinfo, is ours (our mount id from statx). Only
 * root can do that; umount2 through /proc/self/fd/N would then reach the top
 * of the stack, not ours, because umount follows mounts at the end of its lookup.
 */
int fuse_server_covered(server *s) {
  struct statx st;
  if (s->mnt < 0 || statx(s->mnt, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &st) != 0 || !(st.stx_mask & STATX_MNT_ID)) return 0;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return 0;
  unsigned long long id, parent;
  int covered = 0, c;
  while (!covered && fscanf(f, "%llu %llu", &id, &parent) == 2) {
    covered = parent == st.stx_mnt_id && id != st.stx_mnt_id;
    while ((c = fgetc(f)) != EOF && c != '\n') {}
  }
  fclose(f);
  return covered;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U /* Linux 6.8 */
#endif

/*
 * The mount's device number (st_dev as stat(2) gives it) and its unique mount
 * id (0 before Linux 6.8), from the root inode as cached (AT_STATX_DONT_SYNC):
 * no request reaches this server, so a card killed meanwhile cannot wait on itself.
 */
int fuse_server_identity(server *s, uint64_t *dev, uint64_t *mnt) {
  struct statx st;
  if (s->mnt < 0) return ENODEV;
  if (statx(s->mnt, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS | STATX_MNT_ID_UNIQUE, &st) != 0) return errno;
  *dev = makedev(st.stx_dev_major, st.stx_dev_minor);
  *mnt = (st.stx_mask & STATX_MNT_ID_UNIQUE) ? st.stx_mnt_id : 0;
  return 0;
}

/* openat(mount, name): the served file through the held mount, never by path; an fd or -errno. */
int fuse_server_open(server *s, int direct) {
  if (s->mnt < 0) return -ENODEV;
  int fd = openat(s->mnt, s->name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (direct ? O_DIRECT : 0));
  return fd < 0 ? -errno : fd;
}

/* Start the workers with every signal blocked: signals belong to Node's threads. */
static int start_workers(server *s) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int e = 0;
  for (int i = 0; i < THREADS && !e; i++) {
    if (i > 0) {
      uint32_t master = (uint32_t)s->dev[0];
      s->dev[i] = open("/dev/fuse", O_RDWR | O_CLOEXEC);
      if (s->dev[i] < 0 || ioctl(s->dev[i], FUSE_DEV_IOC_CLONE, &master) != 0) {
        if (s->dev[i] >= 0) close(s->dev[i]);
        s->dev[i] = -1;
        break; /* fewer workers still serve */
      }
    }
    s->workers[i] = (struct worker){.s = s, .dev = s->dev[i]};
    if (pthread_create(&s->workers[i].thread, NULL, worker, &s->workers[i]) != 0) {
      if (i == 0) {
        e = EAGAIN; /* the mount's own descriptor is closed by fuse_server_stop */
        break;
      }
      close(s->dev[i]);
      s->dev[i] = -1;
      break; /* fewer workers still serve */
    }
    s->nthreads = i + 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return e;
}

void fuse_server_stop(server *s) {
  if (!s->running) return;
  s->running = 0;
  unmount_fuse(s);
  for (int i = 0; i < s->nthreads; i++) pthread_join(s->workers[i].thread, NULL);
  for (int i = 0; i < THREADS; i++)
    if (s->dev[i] >= 0) close(s->dev[i]);
  s->nthreads = 0;
  if (s->dfd >= 0) close(s->dfd); /* no request is left to use it: the image is not held past detach */
  s->dfd = -1;
}

void fuse_server_free(server *s) {
  fuse_server_stop(s);
  if (s->dfd >= 0) close(s->dfd);
  for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&s->stripes[i]);
  pthread_rwlock_destroy(&s->freeze);
  free((void *)s->reserved);
  if (s->changes) munmap((void *)s->changes, CHANGE_WORDS * sizeof *s->changes);
  free(s);
}

server *fuse_server_start(gkey *k, int fd, uint64_t payload, uint64_t size, int dirfd, const char *name, int track, const char **why) {
  static __thread char msg[256];
  server *s = calloc(1, sizeof *s);
  if (!s) {
    *why = "out of memory";
    return NULL;
  }
  s->k = k;
  s->fd = fd;
  s->payload = payload;
  atomic_store(&s->size, size);
  s->mnt = -1;
  s->window = kb_setting("KMSVOL_READ_AROUND_KB", READ_AROUND);
  s->direct = kb_setting("KMSVOL_DIRECT_WRITE_KB", STREAM);
  s->direct_read = kb_setting("KMSVOL_DIRECT_READ_KB", STREAM);
  s->dfd = (s->direct || s->direct_read) && k ? open_direct(fd, &s->dalign) : -1;
  if (s->dfd < 0 || !sees_cache(fd)) s->direct_read = 0;
  s->nchunks = (size + RESERVE_CHUNK - 1) / RESERVE_CHUNK;
  s->reserved = calloc(s->nchunks / 64 + 1, sizeof *s->reserved); /* 2 KiB per GiB of volume */
  snprintf(s->name, sizeof s->name, "%s", name);
  for (int i = 0; i < THREADS; i++) s->dev[i] = -1;
  for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&s->stripes[i], NULL);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&s->freeze, &ra);
  pthread_rwlockattr_destroy(&ra);
  if (track && size <= KMSVOL_CHANGE_MAX_BYTES) {
    /* Address space for the largest volume; untouched pages cost nothing (MAP_NORESERVE, zero-filled on first write). */
    void *m = mmap(NULL, CHANGE_WORDS * sizeof *s->changes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->changes = m == MAP_FAILED ? NULL : m;
  }
  if (!s->reserved || (track && !s->changes)) {
    fuse_server_free(s);
    *why = track && size > KMSVOL_CHANGE_MAX_BYTES ? "the volume is larger than change tracking covers (64 TiB)" : "out of memory";
    return NULL;
  }
  const char *what = NULL;
  int e = mount_fuse(s, dirfd, &what);
  if (!e) {
    s->running = 1;
    e = start_workers(s);
    if (e) what = "starting the FUSE workers";
  }
  if (e) {
    fuse_server_free(s);
    snprintf(msg, sizeof msg, "%s failed: %s%s", what, strerror(e),
             e == EPERM || e == EACCES       ? " (mounting a volume needs root)"
             : e == ENOENT && what[0] == 'o' ? " (load the fuse module: modprobe fuse)"
                                             : "");
    *why = msg;
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
 * Tell the kernel the file's attributes changed (after a resize), so that the
 * next stat sees the new size without waiting for the attribute cache to expire.
 */
static void notify_attr(server *s) {
  struct fuse_notify_inval_inode_out o = {.ino = FILE_ID, .off = -1, .len = 0};
  struct fuse_out_header h = {.len = sizeof h + sizeof o, .error = FUSE_NOTIFY_INVAL_INODE, .unique = 0};
  struct iovec v[2] = {{&h, sizeof h}, {&o, sizeof o}};
  if (writev(s->dev[0], v, 2) < 0) { /* ENOENT: the kernel has not looked the file up yet; nothing cached */
  }
}

/* EBS Elastic Volumes: the backing image was already extended. Readers see the old or the new size; the kernel is told at once. */
int fuse_server_resize(server *s, uint64_t size) {
  if (size == 0 || size < atomic_load(&s->size) || (s->changes && size > KMSVOL_CHANGE_MAX_BYTES)) return EINVAL;
  atomic_store(&s->size, size);
  if (s->running) notify_attr(s);
  return 0;
}

void fuse_server_get_stats(server *s, fuse_server_stats *out) {
  out->errors = atomic_load(&s->errors);
  out->last_errno = atomic_load(&s->last_errno);
  out->lost_write = atomic_load(&s->lost_write);
  out->open_files = atomic_load(&s->opens);
}

int fuse_server_changes(server *s, int op, uint8_t *bits, size_t len) {
  if (!s->changes) return ENOTSUP;
  if (len > CHANGE_WORDS * 8) return EINVAL;
  for (size_t i = 0; i * 8 < len; i++) {
    size_t nb = len - i * 8 < 8 ? len - i * 8 : 8;
    uint64_t mask = nb == 8 ? ~0ULL : (1ULL << (nb * 8)) - 1, x = 0;
    if (op == CHANGES_MERGE) {
      for (size_t j = 0; j < nb; j++) x |= (uint64_t)bits[i * 8 + j] << (8 * j);
      if (x) atomic_fetch_or(&s->changes[i], x);
      continue;
    }
    x = atomic_load(&s->changes[i]) & mask;
    if (x && op == CHANGES_TAKE) x = atomic_fetch_and(&s->changes[i], ~mask) & mask;
    for (size_t j = 0; j < nb; j++) bits[i * 8 + j] = (uint8_t)(x >> (8 * j));
  }
  return 0;
}
