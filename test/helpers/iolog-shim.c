/*
 * Test-only LD_PRELOAD shim below the card: records every pwrite and flush the
 * card makes on its image, and can inject EIO, as dm-log-writes and
 * CrashMonkey do in the kernel. Built by the tests (cc -shared), never shipped.
 *
 * Its settings are compiled in (cc -D, test/helpers/crash.ts buildShim), not
 * read from the environment: the card runs with a short environment of its
 * own (src/card/spec.ts CARD_ENV), which carries LD_PRELOAD but nothing else.
 *
 *   IOLOG_FILE="FILE"       append records to FILE: 'W' u64 off u32 len data,
 *                           'S' n (flush n starts) and 'E' n (flush n ended), each
 *                           as op u8, u64, u32 (+ data for W), little-endian
 *   IOLOG_MATCH="SUFFIX"    only fds whose path ends with SUFFIX (the image)
 *   IOLOG_EIO_AT=OFFSET     a pwrite on a matching fd covering byte OFFSET
 *                           fails with EIO and writes nothing
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef IOLOG_FILE
#define IOLOG_FILE NULL
#endif
#ifndef IOLOG_MATCH
#define IOLOG_MATCH NULL
#endif
#ifndef IOLOG_EIO_AT
#define IOLOG_EIO_AT -1
#endif

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int logfd = -2;
static const char *match;
static long long eio_at = -1;
static uint64_t flushes; /* each flush's 'S' and 'E' carry its number in the offset field */

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);

static void init(void) {
  if (logfd != -2) return;
  real_pwrite = dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
  real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
  real_fsync = dlsym(RTLD_NEXT, "fsync");
  match = IOLOG_MATCH;
  eio_at = IOLOG_EIO_AT;
  const char *f = IOLOG_FILE;
  logfd = f ? open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
}

static int matches(int fd) {
  if (!match) return 0;
  char p[64], path[4096];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(p, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  size_t m = strlen(match);
  return (size_t)n >= m && strcmp(path + n - m, match) == 0;
}

static void put(char op, uint64_t off, uint32_t len, const void *data) {
  if (logfd < 0) return;
  uint8_t h[13];
  h[0] = (uint8_t)op;
  memcpy(h + 1, &off, 8);
  memcpy(h + 9, &len, 4);
  /* One writev-equivalent under the lock: records never interleave. */
  size_t total = 13 + (data ? len : 0);
  uint8_t *b = malloc(total);
  if (!b) abort();
  memcpy(b, h, 13);
  if (data) memcpy(b + 13, data, len);
  for (size_t put = 0; put < total;) {
    ssize_t w = write(logfd, b + put, total - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abort(); /* a lost record would make the test lie */
    put += (size_t)w;
  }
  free(b);
}

static ssize_t do_pwrite(ssize_t (*real)(int, const void *, size_t, off_t), int fd, const void *buf, size_t len, off_t off) {
  init();
  if (!matches(fd)) return real(fd, buf, len, off);
  if (eio_at >= 0 && eio_at >= off && eio_at < off + (off_t)len) {
    errno = EIO;
    return -1;
  }
  pthread_mutex_lock(&mu);
  ssize_t r = real(fd, buf, len, off);
  if (r > 0) put('W', (uint64_t)off, (uint32_t)r, buf);
  pthread_mutex_unlock(&mu);
  return r;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
  init();
  return do_pwrite(real_pwrite, fd, buf, len, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) {
  init();
  return do_pwrite(real_pwrite64 ? real_pwrite64 : real_pwrite, fd, buf, len, off);
}

static int do_sync(int (*real)(int), int fd) {
  init();
  if (!matches(fd)) return real(fd);
  /* Writes logged before 'S' are durable once 'E' is logged; those between may or may not be. */
  pthread_mutex_lock(&mu);
  uint64_t n = ++flushes;
  put('S', n, 0, NULL);
  pthread_mutex_unlock(&mu);
  int r = real(fd);
  if (r == 0) {
    pthread_mutex_lock(&mu);
    put('E', n, 0, NULL);
    pthread_mutex_unlock(&mu);
  }
  return r;
}

int fdatasync(int fd) {
  init();
  return do_sync(real_fdatasync, fd);
}
int fsync(int fd) {
  init();
  return do_sync(real_fsync, fd);
}
