/*
 * kmsvol's sector engine: guarded key memory and batched AES-256-XTS.
 *
 * TypeScript validates every argument (src/native/index.ts) and the binding
 * (binding.c) checks handle types; this file trusts lengths it is handed and
 * only checks state (a zeroized or unloaded key). Callers allocate every output
 * buffer; the engine never allocates results.
 *
 * Guarded key: mmap'd pages with a PROT_NONE guard page on each side, mlock'd,
 * MADV_DONTDUMP and MADV_WIPEONFORK, and PROT_NONE except while cipher contexts
 * are keyed. Zeroize waits for in-flight jobs, frees the cipher contexts (which
 * cleanses their key schedules), explicit_bzero()s the pages and munmaps them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

#include "aesni_xts.h"
#include "engine.h"

typedef struct ctxnode {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
  struct ctxnode *next;
} ctxnode;

struct gkey {
  uint8_t *map; /* whole mapping: guard | data pages | guard */
  size_t map_len;
  uint8_t *key;    /* first data page */
  size_t data_len; /* data pages, page-rounded */
  size_t key_len;
  /* AES-NI backend: expanded key schedules in their own guarded, read-only pages. */
  uint8_t *smap;
  size_t smap_len;
  xts_sched *sched;
  int loaded, zeroized, zeroizing, locked_mem, wipe_on_fork, js_unlocked;
  int inflight;
  pthread_mutex_t mu;
  pthread_cond_t idle;
  ctxnode *pool;
};

/* Backend: 0 = OpenSSL EVP (fallback), 1 = AES-NI, 2 = VAES (AVX2). Chosen once at load. */
static int use_aesni = 0;
static const char *backend_name = "openssl";

void engine_init(const char *want) {
  int best = xts_cpu_supported() ? (xts_cpu_has_vaes() ? 2 : 1) : 0;
  use_aesni = best;
  /* A backend the CPU lacks falls back to the best it has (TypeScript refuses unknown names). */
  if (want && strcmp(want, "openssl") == 0)
    use_aesni = 0;
  else if (want && strcmp(want, "aesni") == 0 && best >= 1)
    use_aesni = 1;
  else if (want && strcmp(want, "vaes") == 0 && best >= 2)
    use_aesni = 2;
  backend_name = use_aesni == 2 ? "vaes" : use_aesni == 1 ? "aesni" : "openssl";
}

const char *engine_backend(void) { return backend_name; }

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static size_t sched_len(void) {
  size_t page = page_size();
  return (sizeof(xts_sched) + page - 1) / page * page;
}

static void set_prot(gkey *k, int prot) { mprotect(k->key, k->data_len, prot); }

/* Wipe the expanded schedules (they stay mapped, read-write only while being rewritten). Caller holds mu. */
static void unkey_sched(gkey *k) {
  if (!k->sched) return;
  mprotect(k->sched, sched_len(), PROT_READ | PROT_WRITE);
  explicit_bzero(k->sched, sizeof(xts_sched));
  mprotect(k->sched, sched_len(), PROT_READ);
}

/* Expand the loaded key into the schedule pages (AES-NI backend). Caller holds mu; key pages readable. */
static void key_sched(gkey *k) {
  if (!k->sched) return;
  mprotect(k->sched, sched_len(), PROT_READ | PROT_WRITE);
  xts_expand(k->sched, k->key, k->key + 32);
  if (use_aesni == 2) xts_expand_wide(k->sched);
  xts_scrub(use_aesni == 2);
  mprotect(k->sched, sched_len(), PROT_READ);
}

/* Free cipher contexts; EVP_CIPHER_CTX_free cleanses the expanded key. Caller holds mu. */
static void free_pool(gkey *k) {
  ctxnode *n = k->pool;
  while (n) {
    ctxnode *next = n->next;
    EVP_CIPHER_CTX_free(n->enc);
    EVP_CIPHER_CTX_free(n->dec);
    free(n);
    n = next;
  }
  k->pool = NULL;
}

/* Wipe and unmap. Caller holds mu and has waited for inflight == 0. */
static void wipe_locked(gkey *k) {
  if (k->zeroized) return;
  k->zeroized = 1;
  free_pool(k);
  unkey_sched(k);
  set_prot(k, PROT_READ | PROT_WRITE);
  explicit_bzero(k->key, k->data_len);
  if (k->locked_mem) munlock(k->key, k->data_len);
  munmap(k->map, k->map_len);
  k->map = k->key = NULL;
  if (k->smap) {
    munlock(k->sched, sizeof(xts_sched));
    munmap(k->smap, k->smap_len);
    k->smap = NULL;
    k->sched = NULL;
  }
}

/* ---------- guarded key ---------- */

int gkey_new(size_t len, gkey **out) {
  size_t page = page_size();
  size_t data = ((len + page - 1) / page) * page;
  gkey *k = calloc(1, sizeof *k);
  if (!k) return ST_NOMEM;
  k->map_len = data + 2 * page;
  k->map = mmap(NULL, k->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k->map == MAP_FAILED) {
    free(k);
    return ST_NOMEM;
  }
  k->key = k->map + page;
  k->data_len = data;
  k->key_len = len;
  mprotect(k->key, data, PROT_READ | PROT_WRITE);
  if (mlock(k->key, data) != 0) {
    munmap(k->map, k->map_len);
    free(k);
    return ST_MLOCK;
  }
  k->locked_mem = 1;
  madvise(k->key, data, MADV_DONTDUMP);
  k->wipe_on_fork = madvise(k->key, data, MADV_WIPEONFORK) == 0;
  memset(k->key, 0, data);
  set_prot(k, PROT_NONE);
  if (use_aesni) {
    size_t slen = sched_len();
    k->smap_len = slen + 2 * page;
    k->smap = mmap(NULL, k->smap_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->smap == MAP_FAILED || mprotect(k->smap + page, slen, PROT_READ | PROT_WRITE) != 0 || mlock(k->smap + page, slen) != 0) {
      if (k->smap != MAP_FAILED) munmap(k->smap, k->smap_len);
      munlock(k->key, data);
      munmap(k->map, k->map_len);
      free(k);
      return ST_MLOCK_SCHED;
    }
    k->sched = (xts_sched *)(k->smap + page);
    madvise(k->sched, slen, MADV_DONTDUMP);
    madvise(k->sched, slen, MADV_WIPEONFORK);
    explicit_bzero(k->sched, sizeof(xts_sched));
    mprotect(k->sched, slen, PROT_READ);
  }
  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->idle, NULL);
  *out = k;
  return ST_OK;
}

void gkey_free(gkey *k) {
  pthread_mutex_lock(&k->mu);
  while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->idle);
  free(k);
}

int gkey_load(gkey *k, const uint8_t *src, int *loaded) {
  pthread_mutex_lock(&k->mu);
  if (k->zeroized) {
    pthread_mutex_unlock(&k->mu);
    return ST_ZEROIZED;
  }
  while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
  free_pool(k);
  set_prot(k, PROT_READ | PROT_WRITE);
  memcpy(k->key, src, k->key_len);
  size_t half = k->key_len / 2;
  /* Precondition: XTS needs two different keys (IEEE 1619 and OpenSSL both insist). */
  int equal = CRYPTO_memcmp(k->key, k->key + half, half) == 0;
  if (equal) explicit_bzero(k->key, k->data_len);
  k->loaded = !equal;
  if (k->loaded)
    key_sched(k);
  else
    unkey_sched(k);
  if (!k->js_unlocked) set_prot(k, PROT_NONE);
  pthread_mutex_unlock(&k->mu);
  *loaded = !equal;
  return ST_OK;
}

int gkey_protect(gkey *k, int writable, int *loaded) {
  pthread_mutex_lock(&k->mu);
  if (k->zeroized) {
    pthread_mutex_unlock(&k->mu);
    return ST_ZEROIZED;
  }
  if (writable) {
    while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
    free_pool(k);
    unkey_sched(k);
    k->loaded = 0;
  } else {
    size_t half = k->key_len / 2;
    set_prot(k, PROT_READ);
    k->loaded = CRYPTO_memcmp(k->key, k->key + half, half) != 0;
    if (!k->loaded)
      explicit_bzero(k->key, k->data_len);
    else
      key_sched(k);
  }
  k->js_unlocked = writable;
  set_prot(k, writable ? PROT_READ | PROT_WRITE : PROT_NONE);
  *loaded = k->loaded;
  pthread_mutex_unlock(&k->mu);
  return ST_OK;
}

void gkey_zeroize(gkey *k) {
  pthread_mutex_lock(&k->mu);
  k->zeroizing = 1; /* no new use from here on; the running jobs finish */
  while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
}

uint8_t *gkey_pages(gkey *k, size_t *len) {
  *len = k->key_len;
  return k->zeroized ? NULL : k->key;
}

void gkey_describe(gkey *k, gkey_info *out) {
  out->zeroized = k->zeroized;
  out->loaded = k->loaded;
  out->locked = k->locked_mem;
  out->wipe_on_fork = k->wipe_on_fork;
  out->address = (uintptr_t)k->key;
  out->locked_bytes = k->data_len + (k->sched ? k->smap_len - 2 * page_size() : 0);
  out->backend = k->sched ? backend_name : "openssl";
}

/*
 * PBKDF2-HMAC-SHA256 of the guarded key, for the LUKS2 digest that lets
 * cryptsetup verify the volume key. The key is made readable only for the
 * call; OpenSSL's HMAC context is cleansed when freed.
 */
int gkey_pbkdf2(gkey *k, const uint8_t *salt, size_t saltlen, uint32_t iter, uint8_t *out, size_t outlen) {
  pthread_mutex_lock(&k->mu);
  if (k->zeroized || !k->loaded) {
    int st = k->zeroized ? ST_ZEROIZED : ST_NOT_LOADED;
    pthread_mutex_unlock(&k->mu);
    return st;
  }
  if (!k->js_unlocked) set_prot(k, PROT_READ);
  int ok = PKCS5_PBKDF2_HMAC((const char *)k->key, (int)k->key_len, salt, (int)saltlen, (int)iter, EVP_sha256(), (int)outlen, out);
  if (!k->js_unlocked) set_prot(k, PROT_NONE);
  pthread_mutex_unlock(&k->mu);
  return ok ? ST_OK : ST_CRYPTO;
}

/*
 * Run fn over the key bytes, readable only for the call, under the key's lock
 * (no zeroize can run meanwhile). For the LUKS2 keyslot (keyslot.c).
 */
int gkey_with_key(gkey *k, int (*fn)(const uint8_t *key, size_t len, void *arg), void *arg) {
  pthread_mutex_lock(&k->mu);
  if (k->zeroized || !k->loaded) {
    int st = k->zeroized ? ST_ZEROIZED : ST_NOT_LOADED;
    pthread_mutex_unlock(&k->mu);
    return st;
  }
  if (!k->js_unlocked) set_prot(k, PROT_READ);
  int st = fn(k->key, k->key_len, arg);
  if (!k->js_unlocked) set_prot(k, PROT_NONE);
  pthread_mutex_unlock(&k->mu);
  return st;
}

/* ---------- cipher contexts ---------- */

/* Take a keyed cipher context pair from the key's pool, keying a new one if needed; counts the caller as in flight. */
static ctxnode *ctx_acquire(gkey *k, int *status) {
  pthread_mutex_lock(&k->mu);
  if (k->zeroized || k->zeroizing || !k->loaded) {
    *status = k->zeroized || k->zeroizing ? ST_ZEROIZED : ST_NOT_LOADED;
    pthread_mutex_unlock(&k->mu);
    return NULL;
  }
  if (k->sched) {
    static ctxnode none;
    k->inflight++;
    pthread_mutex_unlock(&k->mu);
    *status = ST_OK;
    return &none;
  }
  ctxnode *n = k->pool;
  if (n) {
    k->pool = n->next;
  } else {
    n = calloc(1, sizeof *n);
    if (n) {
      n->enc = EVP_CIPHER_CTX_new();
      n->dec = EVP_CIPHER_CTX_new();
    }
    int ok = n && n->enc && n->dec;
    if (ok) {
      if (!k->js_unlocked) set_prot(k, PROT_READ);
      ok = EVP_EncryptInit_ex(n->enc, EVP_aes_256_xts(), NULL, k->key, NULL) == 1 && EVP_DecryptInit_ex(n->dec, EVP_aes_256_xts(), NULL, k->key, NULL) == 1;
      if (!k->js_unlocked) set_prot(k, PROT_NONE);
    }
    if (!ok) {
      if (n) {
        EVP_CIPHER_CTX_free(n->enc);
        EVP_CIPHER_CTX_free(n->dec);
        free(n);
      }
      *status = ST_CRYPTO;
      pthread_mutex_unlock(&k->mu);
      return NULL;
    }
  }
  k->inflight++;
  pthread_mutex_unlock(&k->mu);
  *status = ST_OK;
  return n;
}

/* Scrub what the XTS run left in registers and on the stack (own backend), then give the context back. */
static void ctx_release(gkey *k, ctxnode *n) {
  if (k->sched) xts_scrub(use_aesni == 2);
  pthread_mutex_lock(&k->mu);
  if (!k->sched) {
    n->next = k->pool;
    k->pool = n;
  }
  if (--k->inflight == 0) pthread_cond_broadcast(&k->idle);
  pthread_mutex_unlock(&k->mu);
}

static int all_zero(const uint8_t *p, size_t n) {
  const uint64_t *w = (const uint64_t *)p;
  for (size_t i = 0; i < n / 8; i++)
    if (w[i]) return 0;
  return 1;
}

/*
 * XTS over whole sectors. The IV is plain64: the sector number counted in
 * 512-byte units, little-endian, so a 4096-byte sector n gets IV 8n (dm-crypt).
 * With skip_zero, an all-zero source sector is never-written space and maps to
 * zeros (the sparse-image rule for reads).
 */
static int xts_run(gkey *k, ctxnode *c, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, uint32_t ss, int enc, int skip_zero) {
  EVP_CIPHER_CTX *ctx = enc ? c->enc : c->dec;
  const uint64_t units = ss / KMSVOL_XTS_UNIT;
  uint8_t iv[16];
  for (size_t off = 0; off < len; off += ss) {
    if (skip_zero && all_zero(src + off, ss)) {
      if (dst != src) memset(dst + off, 0, ss);
      continue;
    }
    uint64_t n = (first + off / ss) * units;
    if (k->sched) {
      if (use_aesni == 2)
        xts_sector_vaes(k->sched, n, src + off, dst + off, ss, enc);
      else
        xts_sector(k->sched, n, src + off, dst + off, ss, enc);
      continue;
    }
    memset(iv, 0, sizeof iv);
    for (int i = 0; i < 8; i++) iv[i] = (uint8_t)(n >> (8 * i));
    int outl = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1) return ST_CRYPTO;
    if (EVP_CipherUpdate(ctx, dst + off, &outl, src + off, (int)ss) != 1 || (size_t)outl != ss) return ST_CRYPTO;
  }
  return ST_OK;
}

int engine_crypt(gkey *k, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, uint32_t ss, int enc, int skip_zero) {
  int st;
  ctxnode *c = ctx_acquire(k, &st);
  if (!c) return st;
  st = xts_run(k, c, src, dst, len, first, ss, enc, skip_zero);
  ctx_release(k, c);
  return st;
}

/* ---------- file I/O ---------- */

int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) { /* past the end of a sparse image: never written */
      memset(buf + got, 0, len - got);
      break;
    }
    got += (size_t)r;
  }
  return 0;
}

int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t off) {
  size_t put = 0;
  while (put < len) {
    ssize_t w = pwrite(fd, buf + put, len - put, (off_t)(off + put));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    put += (size_t)w;
  }
  return 0;
}

/* ---------- re-encryption (snapshots and copies) ---------- */

/*
 * Read sectors, skip the never-written (all-zero) ones so the destination
 * stays sparse, and re-key the rest one sector at a time (decrypt with the old
 * key and encrypt with the new one while the sector is in L1), then write each
 * run of written sectors at the same sector numbers.
 */
int engine_recrypt(gkey *oldk, gkey *newk, int sfd, uint64_t soff, int dfd, uint64_t doff, uint64_t first, uint8_t *buf, size_t len, int *err,
                   double *written) {
  const size_t ss = KMSVOL_SECTOR_SIZE;
  *err = 0;
  *written = 0;
  if ((*err = pread_full(sfd, buf, len, soff))) return ST_CRYPTO;
  int st = ST_OK;
  ctxnode *co = NULL, *cn = NULL;
  if (oldk && !(co = ctx_acquire(oldk, &st))) return st;
  if (newk && !(cn = ctx_acquire(newk, &st))) {
    if (co) ctx_release(oldk, co);
    return st;
  }
  size_t n = len / ss;
  for (size_t i = 0; i < n && st == ST_OK;) {
    if (all_zero(buf + i * ss, ss)) {
      i++;
      continue;
    }
    size_t run = 0;
    while (i + run < n && !all_zero(buf + (i + run) * ss, ss)) {
      uint8_t *p = buf + (i + run) * ss;
      if (co && (st = xts_run(oldk, co, p, p, ss, first + i + run, ss, 0, 0)) != ST_OK) break;
      if (cn && (st = xts_run(newk, cn, p, p, ss, first + i + run, ss, 1, 0)) != ST_OK) break;
      run++;
    }
    size_t bytes = run * ss;
    if (st == ST_OK && (*err = pwrite_full(dfd, buf + i * ss, bytes, doff + i * ss))) st = ST_CRYPTO;
    *written += (double)bytes;
    i += run;
  }
  if (co) ctx_release(oldk, co);
  if (cn) ctx_release(newk, cn);
  return st;
}
