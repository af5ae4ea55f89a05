/*
 * Test-only racer for the card's direct writes (breaker12). Three threads on
 * one region of a volume (or, with --raw, of a plain file, to show the kernel
 * mechanism without the card):
 *
 *   small:  a 4 KiB write at sector R, over and over (the card buffers it);
 *   reader: drops the region of the image from the page cache and reads it
 *           back sequentially in 128 KiB reads (readahead: large folios);
 *   big:    a 256 KiB write of a fresh pattern at R + 4 KiB (the card sends it
 *           with O_DIRECT), then reads those 256 KiB back and compares.
 *
 * Only "big" writes [R + 4 KiB, R + 260 KiB), so after its write returns a
 * read of that range must give its pattern. Prints "stale ITER SECTOR" and
 * exits 1 at the first difference, "ok ITERS" after SECONDS without one.
 *
 *   dio-racer VOLUME_FILE IMAGE PAYLOAD_OFFSET SECONDS     (through the card)
 *   dio-racer --raw FILE SECONDS                           (no card)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB  1024ull
#define R    (64ull << 20) /* the region: volume offset 64 MiB */
#define BIG  (256 * KiB)
#define SPAN (2ull << 20)

static int vfd_small, vfd_big, vfd_check, ifd;
static uint64_t payload;
static volatile int stop;
static double deadline;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *small(void *arg) {
  (void)arg;
  uint8_t *b = aligned_alloc(4096, 4096);
  for (uint64_t i = 0; !stop; i++) {
    memset(b, (int)(0x80 | (i & 0x7f)), 4096);
    if (pwrite(vfd_small, b, 4096, (off_t)R) != 4096) perror("small pwrite");
  }
  free(b);
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  uint8_t *b = aligned_alloc(4096, 128 * KiB);
  while (!stop) {
    posix_fadvise(ifd, (off_t)(payload + R - SPAN / 2), (off_t)SPAN, POSIX_FADV_DONTNEED);
    for (uint64_t o = R - SPAN / 2; o < R + SPAN / 2 && !stop; o += 128 * KiB)
      if (pread(ifd, b, 128 * KiB, (off_t)(payload + o)) < 0) perror("reader pread");
  }
  free(b);
  return NULL;
}

int main(int argc, char **argv) {
  int raw = argc == 4 && strcmp(argv[1], "--raw") == 0;
  if (!raw && argc != 5) {
    fprintf(stderr, "usage: dio-racer VOLUME_FILE IMAGE PAYLOAD SECONDS | --raw FILE SECONDS\n");
    return 2;
  }
  if (raw) {
    vfd_small = vfd_check = open(argv[2], O_RDWR);
    vfd_big = open(argv[2], O_RDWR | O_DIRECT);
    ifd = open(argv[2], O_RDONLY);
    payload = 0;
    deadline = now() + atof(argv[3]);
  } else {
    vfd_small = vfd_big = vfd_check = open(argv[1], O_RDWR | O_DIRECT);
    ifd = open(argv[2], O_RDONLY);
    payload = strtoull(argv[3], NULL, 10);
    deadline = now() + atof(argv[4]);
  }
  if (vfd_small < 0 || vfd_big < 0 || ifd < 0) {
    perror("open");
    return 2;
  }
  pthread_t ts, tr;
  pthread_create(&ts, NULL, small, NULL);
  pthread_create(&tr, NULL, reader, NULL);
  uint8_t *w = aligned_alloc(4096, BIG), *r = aligned_alloc(4096, BIG);
  int rc = 0;
  uint64_t i;
  for (i = 0; now() < deadline; i++) {
    for (uint64_t k = 0; k < BIG; k += 8) memcpy(w + k, &i, 8);
    if (pwrite(vfd_big, w, BIG, (off_t)(R + 4 * KiB)) != (ssize_t)BIG) {
      perror("big pwrite");
      rc = 2;
      break;
    }
    if (pread(vfd_check, r, BIG, (off_t)(R + 4 * KiB)) != (ssize_t)BIG) {
      perror("check pread");
      rc = 2;
      break;
    }
    if (memcmp(w, r, BIG) != 0) {
      uint64_t k = 0;
      while (k < BIG && memcmp(w + k, r + k, 4096) == 0) k += 4096;
      uint64_t got;
      memcpy(&got, r + k, 8);
      printf("stale %llu %llu (wrote iteration %llu, read back %llu at volume offset %llu)\n", (unsigned long long)i,
             (unsigned long long)((R + 4 * KiB + k) / 4096), (unsigned long long)i, (unsigned long long)got, (unsigned long long)(R + 4 * KiB + k));
      rc = 1;
      break;
    }
  }
  stop = 1;
  pthread_join(ts, NULL);
  pthread_join(tr, NULL);
  if (!rc) printf("ok %llu\n", (unsigned long long)i);
  return rc;
}
