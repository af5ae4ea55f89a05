/*
 * Shared between the engine (kmsvol_native.c) and the FUSE server
 * (fuse_server.c): the guarded key and the sector cipher.
 */
#ifndef KMSVOL_ENGINE_H
#define KMSVOL_ENGINE_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "aesni_xts.h"

enum { ST_OK = 0, ST_ZEROIZED = 1, ST_CRYPTO = 2, ST_NOT_LOADED = 4 };

typedef struct ctxnode {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
  struct ctxnode *next;
} ctxnode;

typedef struct {
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
  napi_ref view; /* the one ArrayBuffer over the key pages, if created */
} gkey;

/* ---------- helpers ---------- */

#define NAPI_CALL(env, call)                                                                                                                                   \
  do {                                                                                                                                                         \
    if ((call) != napi_ok) {                                                                                                                                   \
      napi_throw_error((env), "KMSVOL_NAPI", #call " failed");                                                                                                 \
      return NULL;                                                                                                                                             \
    }                                                                                                                                                          \
  } while (0)

static inline napi_value throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static inline gkey *get_key(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (gkey *)p;
}

static inline void set_prot(gkey *k, int prot) { mprotect(k->key, k->data_len, prot); }

/* Backend: 0 = OpenSSL EVP (fallback), 1 = AES-NI, 2 = VAES. */
extern int use_aesni;

/* Take a keyed cipher context (counts the caller as in flight); NULL with *status set when unusable. */
ctxnode *ctx_acquire(gkey *k, int *status);
void ctx_release(gkey *k, ctxnode *n);
/* XTS over whole sectors with plain64 IVs; skip_zero maps all-zero source sectors to zeros. */
int xts_run(gkey *k, ctxnode *c, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, uint32_t ss, int enc, int skip_zero);

void fuse_server_register(napi_env env, napi_value exports);

/* An async engine job (jobq.c): `run` on a libuv pool thread, then `settle` on the JS thread (settles `deferred`, frees). */
typedef struct qjob {
  struct qjob *next;
  void (*run)(struct qjob *);
  void (*settle)(napi_env, struct qjob *);
  napi_deferred deferred;
} qjob;
/* JS thread: queue a job; *promise settles when it has run. */
napi_status jobq_submit(napi_env env, qjob *j, void (*run)(qjob *), void (*settle)(napi_env, qjob *), napi_value *promise);

/* pread all of `len` bytes (retrying EINTR); past the end of a sparse file reads as zeros. Returns 0 or errno. */
int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off);
/* pwrite all of `len` bytes (retrying EINTR). Returns 0 or errno. */
int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t off);

#endif
