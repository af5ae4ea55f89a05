/*
 * kmsvol native engine: guarded key memory and batched AES-256-XTS.
 *
 * TypeScript validates every argument (native/index.ts); this file trusts
 * lengths and types it is handed and only checks state (a zeroized key).
 * Callers allocate every output buffer; C never allocates results.
 *
 * Guarded key: mmap'd pages with a PROT_NONE guard page on each side, mlock'd,
 * MADV_DONTDUMP and MADV_WIPEONFORK, and PROT_NONE except while cipher contexts
 * are keyed. Zeroize waits for in-flight jobs, frees the cipher contexts (which
 * cleanses their key schedules), explicit_bzero()s the pages and munmaps them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

#include "engine.h"

/* Backend: 0 = OpenSSL EVP (fallback), 1 = AES-NI, 2 = VAES (AVX2). Chosen once at load. */
int use_aesni = 0;
static const char *backend_name = "openssl";

static size_t sched_len(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (sizeof(xts_sched) + page - 1) / page * page;
}

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

static void key_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  gkey *k = (gkey *)data;
  if (k->view) napi_delete_reference(env, k->view);
  pthread_mutex_lock(&k->mu);
  while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->idle);
  free(k);
}

/* Take a keyed cipher context pair from the key's pool, keying a new one if needed. */
ctxnode *ctx_acquire(gkey *k, int *status) {
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

void ctx_release(gkey *k, ctxnode *n) {
  pthread_mutex_lock(&k->mu);
  if (!k->sched) {
    n->next = k->pool;
    k->pool = n;
  }
  if (--k->inflight == 0) pthread_cond_broadcast(&k->idle);
  pthread_mutex_unlock(&k->mu);
}

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
int xts_run(gkey *k, ctxnode *c, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, uint32_t ss, int enc, int skip_zero) {
  EVP_CIPHER_CTX *ctx = enc ? c->enc : c->dec;
  const uint64_t units = ss / 512;
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

static napi_value status_error(napi_env env, int st, int err) {
  (void)err;
  napi_value code, msg, e;
  const char *c = "KMSVOL_CRYPTO", *m = "AES-XTS failed";
  if (st == ST_ZEROIZED) {
    c = "KMSVOL_KEY_ZEROIZED";
    m = "the key has been zeroized";
  } else if (st == ST_NOT_LOADED) {
    c = "KMSVOL_KEY_NOT_LOADED";
    m = "the key has not been loaded";
  }
  napi_create_string_utf8(env, c, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, m, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &e);
  return e;
}

/* ---------- guarded key ---------- */

/* keyCreate(len) -> external */
static napi_value key_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t len;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[0], &len));
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t data = ((len + page - 1) / page) * page;
  gkey *k = calloc(1, sizeof *k);
  if (!k) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  k->map_len = data + 2 * page;
  k->map = mmap(NULL, k->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k->map == MAP_FAILED) {
    free(k);
    return throw_code(env, "KMSVOL_NOMEM", "mmap of the guarded key failed");
  }
  k->key = k->map + page;
  k->data_len = data;
  k->key_len = len;
  mprotect(k->key, data, PROT_READ | PROT_WRITE);
  if (mlock(k->key, data) != 0) {
    munmap(k->map, k->map_len);
    free(k);
    return throw_code(env, "KMSVOL_MLOCK", "mlock of the guarded key failed; raise the locked-memory limit (ulimit -l) or run with CAP_IPC_LOCK");
  }
  k->locked_mem = 1;
  madvise(k->key, data, MADV_DONTDUMP);
  k->wipe_on_fork = madvise(k->key, data, MADV_WIPEONFORK) == 0;
  memset(k->key, 0, data);
  set_prot(k, PROT_NONE);
  if (use_aesni) {
    size_t slen = (sizeof(xts_sched) + page - 1) / page * page;
    k->smap_len = slen + 2 * page;
    k->smap = mmap(NULL, k->smap_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->smap == MAP_FAILED || mprotect(k->smap + page, slen, PROT_READ | PROT_WRITE) != 0 || mlock(k->smap + page, slen) != 0) {
      if (k->smap != MAP_FAILED) munmap(k->smap, k->smap_len);
      munlock(k->key, data);
      munmap(k->map, k->map_len);
      free(k);
      return throw_code(env, "KMSVOL_MLOCK", "mlock of the guarded key schedule failed; raise the locked-memory limit (ulimit -l) or run with CAP_IPC_LOCK");
    }
    k->sched = (xts_sched *)(k->smap + page);
    madvise(k->sched, slen, MADV_DONTDUMP);
    madvise(k->sched, slen, MADV_WIPEONFORK);
    explicit_bzero(k->sched, sizeof(xts_sched));
    mprotect(k->sched, slen, PROT_READ);
  }
  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->idle, NULL);
  napi_value ext;
  if (napi_create_external(env, k, key_finalize, NULL, &ext) != napi_ok) {
    munmap(k->map, k->map_len);
    free(k);
    return throw_code(env, "KMSVOL_NAPI", "napi_create_external failed");
  }
  return ext;
}

/* keyLoad(key, src) -> true, or false when the two halves are equal (nothing kept). */
static napi_value key_load(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  void *src;
  size_t srclen;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &src, &srclen));
  pthread_mutex_lock(&k->mu);
  if (k->zeroized) {
    pthread_mutex_unlock(&k->mu);
    napi_throw(env, status_error(env, ST_ZEROIZED, 0));
    return NULL;
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
  NAPI_CALL(env, napi_get_boolean(env, !equal, &result));
  return result;
}

/* keyView(key) -> ArrayBuffer over the key pages (created once; detached on zeroize). */
static napi_value key_view(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  if (k->zeroized) {
    napi_throw(env, status_error(env, ST_ZEROIZED, 0));
    return NULL;
  }
  if (k->view) {
    NAPI_CALL(env, napi_get_reference_value(env, k->view, &ab));
    return ab;
  }
  NAPI_CALL(env, napi_create_external_arraybuffer(env, k->key, k->key_len, NULL, NULL, &ab));
  NAPI_CALL(env, napi_create_reference(env, ab, 1, &k->view));
  return ab;
}

/* keyProtect(key, writable): make the pages read-write (for loading in place) or no-access again. */
static napi_value key_protect(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool writable;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &writable));
  pthread_mutex_lock(&k->mu);
  if (k->zeroized) {
    pthread_mutex_unlock(&k->mu);
    napi_throw(env, status_error(env, ST_ZEROIZED, 0));
    return NULL;
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
  int loaded = k->loaded;
  pthread_mutex_unlock(&k->mu);
  napi_value r;
  NAPI_CALL(env, napi_get_boolean(env, loaded, &r));
  return r;
}

/* keyZeroize(key): wait for in-flight jobs, wipe, unmap, detach the JS view. Idempotent. */
static napi_value key_zeroize(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  pthread_mutex_lock(&k->mu);
  k->zeroizing = 1; /* no new use from here on; the running jobs finish */
  while (k->inflight) pthread_cond_wait(&k->idle, &k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
  if (k->view) {
    napi_value ab;
    if (napi_get_reference_value(env, k->view, &ab) == napi_ok && ab) napi_detach_arraybuffer(env, ab);
    napi_delete_reference(env, k->view);
    k->view = NULL;
  }
  return NULL;
}

/* keyInfo(key) -> { zeroized, loaded, locked, wipeOnFork, guardBefore, address } (address for tests only) */
static napi_value key_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  NAPI_CALL(env, napi_create_object(env, &o));
  napi_get_boolean(env, k->zeroized, &v);
  napi_set_named_property(env, o, "zeroized", v);
  napi_get_boolean(env, k->loaded, &v);
  napi_set_named_property(env, o, "loaded", v);
  napi_get_boolean(env, k->locked_mem, &v);
  napi_set_named_property(env, o, "locked", v);
  napi_get_boolean(env, k->wipe_on_fork, &v);
  napi_set_named_property(env, o, "wipeOnFork", v);
  napi_create_double(env, (double)(uintptr_t)k->key, &v);
  napi_set_named_property(env, o, "address", v);
  napi_create_double(env, (double)(k->data_len + (k->sched ? k->smap_len - 2 * (size_t)sysconf(_SC_PAGESIZE) : 0)), &v);
  napi_set_named_property(env, o, "lockedBytes", v);
  napi_create_string_utf8(env, k->sched ? backend_name : "openssl", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "backend", v);
  return o;
}

/* ---------- XTS ---------- */

typedef struct {
  qjob q; /* first: the queue hands back a qjob * */
  napi_ref kref, aref, bref;
  gkey *k;
  const uint8_t *src;
  uint8_t *dst;
  size_t len;
  uint64_t first;
  uint32_t ss;
  int enc;
  int status, err;
} job;

/* The job body, shared by the sync call and the thread-pool work. */
static void job_run(job *j) {
  ctxnode *c = ctx_acquire(j->k, &j->status);
  if (!c) return;
  j->status = xts_run(j->k, c, j->src, j->dst, j->len, j->first, j->ss, j->enc, 0);
  if (j->k->sched) xts_scrub(use_aesni == 2);
  ctx_release(j->k, c);
}

/* Arguments (validated by TypeScript): (key, src, dst, firstSector, sectorSize, encrypt). */
static int parse_job(napi_env env, napi_callback_info info, job *j, napi_value *argv) {
  size_t argc = 6;
  void *a = NULL, *b = NULL;
  size_t alen = 0, blen = 0;
  int64_t first;
  bool enc;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  j->k = get_key(env, argv[0]);
  napi_get_buffer_info(env, argv[1], &a, &alen);
  napi_get_buffer_info(env, argv[2], &b, &blen);
  napi_get_value_int64(env, argv[3], &first);
  napi_get_value_uint32(env, argv[4], &j->ss);
  napi_get_value_bool(env, argv[5], &enc);
  j->src = a;
  j->dst = b;
  j->len = alen;
  j->enc = enc;
  j->first = (uint64_t)first;
  return 1;
}

static napi_value xts_sync(napi_env env, napi_callback_info info) {
  job j = {0};
  napi_value argv[6];
  if (!parse_job(env, info, &j, argv)) return throw_code(env, "KMSVOL_NAPI", "bad arguments");
  job_run(&j);
  if (j.status != ST_OK) napi_throw(env, status_error(env, j.status, j.err));
  return NULL;
}

static void async_run(qjob *q) { job_run((job *)q); }

static void async_settle(napi_env env, qjob *q) {
  job *j = (job *)q;
  if (j->status == ST_OK) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, j->q.deferred, undef);
  } else {
    napi_reject_deferred(env, j->q.deferred, status_error(env, j->status, j->err));
  }
  napi_delete_reference(env, j->kref);
  napi_delete_reference(env, j->aref);
  napi_delete_reference(env, j->bref);
  free(j);
}

/* Queue the job for the libuv thread pool (jobq.c); the key and buffers stay pinned by references until it settles. */
static napi_value xts_async(napi_env env, napi_callback_info info) {
  job *j = calloc(1, sizeof *j);
  napi_value argv[6], promise;
  if (!j) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  if (!parse_job(env, info, j, argv)) {
    free(j);
    return throw_code(env, "KMSVOL_NAPI", "bad arguments");
  }
  napi_create_reference(env, argv[0], 1, &j->kref);
  napi_create_reference(env, argv[1], 1, &j->aref);
  napi_create_reference(env, argv[2], 1, &j->bref);
  NAPI_CALL(env, jobq_submit(env, &j->q, async_run, async_settle, &promise));
  return promise;
}

/*
 * keyPbkdf2Sha256(key, salt, iterations, out): PBKDF2-HMAC-SHA256 of the guarded key,
 * for the LUKS2 digest that lets cryptsetup verify the volume key. The key is made
 * readable only for the call; OpenSSL's HMAC context is cleansed when freed.
 */
static napi_value key_pbkdf2(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *salt, *out;
  size_t saltlen, outlen;
  uint32_t iter;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  gkey *k = get_key(env, argv[0]);
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &salt, &saltlen));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &iter));
  NAPI_CALL(env, napi_get_buffer_info(env, argv[3], &out, &outlen));
  pthread_mutex_lock(&k->mu);
  if (k->zeroized || !k->loaded) {
    int st = k->zeroized ? ST_ZEROIZED : ST_NOT_LOADED;
    pthread_mutex_unlock(&k->mu);
    napi_throw(env, status_error(env, st, 0));
    return NULL;
  }
  if (!k->js_unlocked) set_prot(k, PROT_READ);
  int ok = PKCS5_PBKDF2_HMAC((const char *)k->key, (int)k->key_len, salt, (int)saltlen, (int)iter, EVP_sha256(), (int)outlen, out);
  if (!k->js_unlocked) set_prot(k, PROT_NONE);
  pthread_mutex_unlock(&k->mu);
  if (!ok) {
    napi_throw(env, status_error(env, ST_CRYPTO, 0));
    return NULL;
  }
  return NULL;
}

/* lockExclusive(fd) -> 0, or the errno of flock(LOCK_EX | LOCK_NB) (EWOULDBLOCK when held elsewhere). */
static napi_value lock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  int rc = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
  NAPI_CALL(env, napi_create_int32(env, rc, &r));
  return r;
}

/* ---------- re-encryption (snapshots and copies) ---------- */

typedef struct {
  qjob q; /* first: the queue hands back a qjob * */
  napi_ref oref, nref, bref;
  gkey *oldk, *newk; /* NULL: that side is unencrypted */
  int sfd, dfd;
  int64_t soff, doff; /* byte offsets of sector `first` in the source and destination files */
  uint64_t first;
  uint8_t *buf; /* caller-allocated scratch, count * 4096 bytes */
  size_t len;
  int status, err;
  double written;
} recrypt_job;

/*
 * Read sectors, skip the never-written (all-zero) ones so the destination
 * stays sparse, and re-key the rest one sector at a time (decrypt with the old
 * key and encrypt with the new one while the sector is in L1), then write each
 * run of written sectors at the same sector numbers.
 */
static void recrypt_run(qjob *q) {
  recrypt_job *j = (recrypt_job *)q;
  if ((j->err = pread_full(j->sfd, j->buf, j->len, (uint64_t)j->soff))) {
    j->status = ST_CRYPTO;
    return;
  }
  int st = ST_OK;
  ctxnode *co = NULL, *cn = NULL;
  if (j->oldk && !(co = ctx_acquire(j->oldk, &st))) {
    j->status = st;
    return;
  }
  if (j->newk && !(cn = ctx_acquire(j->newk, &st))) {
    if (co) ctx_release(j->oldk, co);
    j->status = st;
    return;
  }
  size_t n = j->len / 4096;
  for (size_t i = 0; i < n && j->status == ST_OK;) {
    if (all_zero(j->buf + i * 4096, 4096)) {
      i++;
      continue;
    }
    size_t run = 0;
    while (i + run < n && !all_zero(j->buf + (i + run) * 4096, 4096)) {
      uint8_t *p = j->buf + (i + run) * 4096;
      if (co && (j->status = xts_run(j->oldk, co, p, p, 4096, j->first + i + run, 4096, 0, 0)) != ST_OK) break;
      if (cn && (j->status = xts_run(j->newk, cn, p, p, 4096, j->first + i + run, 4096, 1, 0)) != ST_OK) break;
      run++;
    }
    size_t len = run * 4096;
    if (j->status == ST_OK && (j->err = pwrite_full(j->dfd, j->buf + i * 4096, len, (uint64_t)j->doff + i * 4096))) j->status = ST_CRYPTO;
    j->written += (double)len;
    i += run;
  }
  if ((j->oldk && j->oldk->sched) || (j->newk && j->newk->sched)) xts_scrub(use_aesni == 2);
  if (co) ctx_release(j->oldk, co);
  if (cn) ctx_release(j->newk, cn);
}

static void recrypt_settle(napi_env env, qjob *q) {
  recrypt_job *j = (recrypt_job *)q;
  if (j->status == ST_OK) {
    napi_value v;
    napi_create_double(env, j->written, &v);
    napi_resolve_deferred(env, j->q.deferred, v);
  } else {
    napi_value e = status_error(env, j->status, j->err);
    if (j->err) {
      napi_value ev;
      napi_create_int32(env, j->err, &ev);
      napi_set_named_property(env, e, "errno", ev);
    }
    napi_reject_deferred(env, j->q.deferred, e);
  }
  if (j->oref) napi_delete_reference(env, j->oref);
  if (j->nref) napi_delete_reference(env, j->nref);
  napi_delete_reference(env, j->bref);
  free(j);
}

/* recryptAsync(oldKey|null, newKey|null, srcFd, srcOffset, dstFd, dstOffset, firstSector, scratch) -> bytes written */
static napi_value recrypt_async(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], promise;
  napi_valuetype t0, t1;
  recrypt_job *j = calloc(1, sizeof *j);
  if (!j) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typeof(env, argv[0], &t0);
  napi_typeof(env, argv[1], &t1);
  if (t0 == napi_external) {
    j->oldk = get_key(env, argv[0]);
    napi_create_reference(env, argv[0], 1, &j->oref);
  }
  if (t1 == napi_external) {
    j->newk = get_key(env, argv[1]);
    napi_create_reference(env, argv[1], 1, &j->nref);
  }
  int64_t first;
  napi_get_value_int32(env, argv[2], &j->sfd);
  napi_get_value_int64(env, argv[3], &j->soff);
  napi_get_value_int32(env, argv[4], &j->dfd);
  napi_get_value_int64(env, argv[5], &j->doff);
  napi_get_value_int64(env, argv[6], &first);
  j->first = (uint64_t)first;
  void *b;
  napi_get_buffer_info(env, argv[7], &b, &j->len);
  j->buf = b;
  napi_create_reference(env, argv[7], 1, &j->bref);
  NAPI_CALL(env, jobq_submit(env, &j->q, recrypt_run, recrypt_settle, &promise));
  return promise;
}

/* seek(fd, offset, hole) -> next data (or hole) offset at or after `offset`, or -1 past the last data. */
static napi_value seek_extent(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], r;
  int32_t fd;
  int64_t off;
  bool hole;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_int64(env, argv[1], &off);
  napi_get_value_bool(env, argv[2], &hole);
  off_t o = lseek(fd, (off_t)off, hole ? SEEK_HOLE : SEEK_DATA);
  if (o < 0 && errno != ENXIO) return throw_code(env, "KMSVOL_SEEK", strerror(errno));
  napi_create_double(env, o < 0 ? -1.0 : (double)o, &r);
  return r;
}

/* ---------- process hardening ---------- */

/* setNonDumpable(): PR_SET_DUMPABLE 0 and RLIMIT_CORE 0, so no core file or ptrace-attach reads the key. */
static napi_value set_non_dumpable(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit rl = {0, 0};
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &rl) != 0)
    return throw_code(env, "KMSVOL_HARDEN", "could not make the process non-dumpable");
  return NULL;
}

/* backend() -> "vaes" or "aesni" (own XTS, schedules in guarded pages) or "openssl" (EVP fallback). */
static napi_value backend(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_string_utf8(env, backend_name, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  /* KMSVOL_XTS_BACKEND=openssl|aesni|vaes forces a backend (for benchmarks and tests); default: the best the CPU has. */
  const char *want = getenv("KMSVOL_XTS_BACKEND");
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
  napi_property_descriptor props[] = {
      {"backend", NULL, backend, NULL, NULL, NULL, napi_default, NULL},
      {"keyCreate", NULL, key_create, NULL, NULL, NULL, napi_default, NULL},
      {"keyLoad", NULL, key_load, NULL, NULL, NULL, napi_default, NULL},
      {"keyView", NULL, key_view, NULL, NULL, NULL, napi_default, NULL},
      {"keyProtect", NULL, key_protect, NULL, NULL, NULL, napi_default, NULL},
      {"keyZeroize", NULL, key_zeroize, NULL, NULL, NULL, napi_default, NULL},
      {"keyInfo", NULL, key_info, NULL, NULL, NULL, napi_default, NULL},
      {"xtsSync", NULL, xts_sync, NULL, NULL, NULL, napi_default, NULL},
      {"xtsAsync", NULL, xts_async, NULL, NULL, NULL, napi_default, NULL},
      {"setNonDumpable", NULL, set_non_dumpable, NULL, NULL, NULL, napi_default, NULL},
      {"keyPbkdf2", NULL, key_pbkdf2, NULL, NULL, NULL, napi_default, NULL},
      {"lockExclusive", NULL, lock_exclusive, NULL, NULL, NULL, napi_default, NULL},
      {"recryptAsync", NULL, recrypt_async, NULL, NULL, NULL, napi_default, NULL},
      {"seekExtent", NULL, seek_extent, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  fuse_server_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
