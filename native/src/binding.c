/*
 * The N-API binding: every napi_* call of the addon except the job queue's
 * (jobq.c), the loop device's (loop.c) and the descriptor-held path calls'
 * (paths.c), which use the checks declared in napi_check.h. It turns
 * JavaScript values into engine (engine.h) and FUSE server (fuse_server.h)
 * calls, and engine statuses into errors with stable codes. Neither of those
 * calls back here: module init registers both.
 *
 * TypeScript validates every argument (src/native/index.ts). This file still
 * checks every napi_status (a failure throws an Error naming the call, a
 * TypeError for a value of the wrong type) and the type tag of every handle:
 * a key handle where a server is expected, or any other object, is a
 * TypeError, never a cast.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include "engine.h"
#include "fuse_server.h"
#include "jobq.h"
#include "loop.h"
#include "napi_check.h"
#include "paths.h"

/* ---------- engine statuses ---------- */

static void status_text(int st, const char **code, const char **msg) {
  *code = "KMSVOL_CRYPTO";
  *msg = "AES-XTS failed";
  if (st == ST_ZEROIZED) {
    *code = "KMSVOL_KEY_ZEROIZED";
    *msg = "the key has been zeroized";
  } else if (st == ST_NOT_LOADED) {
    *code = "KMSVOL_KEY_NOT_LOADED";
    *msg = "the key has not been loaded";
  }
}

static napi_value throw_status(napi_env env, int st) {
  const char *code, *msg;
  status_text(st, &code, &msg);
  return throw_code(env, code, msg);
}

/* An Error for an engine status (with `errno` when err != 0), or NULL after throwing. */
static napi_value status_error(napi_env env, int st, int err) {
  const char *c, *m;
  napi_value code, msg, e, ev;
  status_text(st, &c, &m);
  CHECK(env, napi_create_string_utf8(env, c, NAPI_AUTO_LENGTH, &code));
  CHECK(env, napi_create_string_utf8(env, m, NAPI_AUTO_LENGTH, &msg));
  CHECK(env, napi_create_error(env, code, msg, &e));
  if (err) {
    CHECK(env, napi_create_int32(env, err, &ev));
    CHECK(env, napi_set_named_property(env, e, "errno", ev));
  }
  return e;
}

/* ---------- typed handles ---------- */

static const napi_type_tag KEY_TAG = {0x6b6d73766f6c2d6bULL, 0x65792d68616e646cULL};    /* "kmsvol-key-handl" */
static const napi_type_tag SERVER_TAG = {0x6b6d73766f6c2d73ULL, 0x65727665722d6866ULL}; /* "kmsvol-server-hf" */

/* A guarded key as JavaScript holds it: the engine's key and the one ArrayBuffer over its pages (if created). */
typedef struct {
  gkey *k;
  napi_ref view;
} key_handle;

/* A FUSE server and the reference that keeps its key alive while it runs. */
typedef struct {
  server *s;
  napi_ref kref;
} server_handle;

/* The data of an external carrying `tag`, or NULL after throwing a TypeError naming what was expected. */
static void *unwrap(napi_env env, napi_value v, const napi_type_tag *tag, const char *what) {
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_external && napi_check_object_type_tag(env, v, tag, &tagged) == napi_ok && tagged &&
      napi_get_value_external(env, v, &p) == napi_ok && p)
    return p;
  char msg[160];
  snprintf(msg, sizeof msg, "expected %s (from this addon); got another value", what);
  napi_throw_type_error(env, "KMSVOL_ARG", msg);
  return NULL;
}

static key_handle *get_key(napi_env env, napi_value v) { return unwrap(env, v, &KEY_TAG, "a guarded key handle"); }
static server_handle *get_server(napi_env env, napi_value v) { return unwrap(env, v, &SERVER_TAG, "a FUSE server handle"); }

/* A key or null/undefined (an unencrypted side): *out NULL for null. False after throwing. */
static bool get_key_or_null(napi_env env, napi_value v, key_handle **out) {
  napi_valuetype t;
  *out = NULL;
  if (!OK(env, napi_typeof(env, v, &t))) return false;
  if (t == napi_null || t == napi_undefined) return true;
  *out = get_key(env, v);
  return *out != NULL;
}

/* ---------- guarded key ---------- */

static void key_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  key_handle *h = data;
  /* A finalizer cannot throw: a failed delete only leaks the reference of an environment going away. */
  if (h->view) (void)napi_delete_reference(env, h->view);
  gkey_free(h->k);
  free(h);
}

/* keyCreate(len) -> key handle */
static napi_value key_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ext;
  uint32_t len;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_uint32(env, argv[0], &len));
  key_handle *h = calloc(1, sizeof *h);
  if (!h) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  int st = gkey_new(len, &h->k);
  if (st != ST_OK) {
    free(h);
    if (st == ST_MLOCK)
      return throw_code(env, "KMSVOL_MLOCK", "mlock of the guarded key failed; raise the locked-memory limit (ulimit -l) or run with CAP_IPC_LOCK");
    if (st == ST_MLOCK_SCHED)
      return throw_code(env, "KMSVOL_MLOCK", "mlock of the guarded key schedule failed; raise the locked-memory limit (ulimit -l) or run with CAP_IPC_LOCK");
    return throw_code(env, "KMSVOL_NOMEM", "mmap of the guarded key failed");
  }
  if (napi_create_external(env, h, key_finalize, NULL, &ext) != napi_ok) {
    gkey_free(h->k);
    free(h);
    return throw_code(env, "KMSVOL_NAPI", "napi_create_external failed");
  }
  CHECK(env, napi_type_tag_object(env, ext, &KEY_TAG));
  return ext;
}

/* keyLoad(key, src) -> true, or false when the two halves are equal (nothing kept). */
static napi_value key_load(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  void *src;
  size_t srclen;
  int loaded;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_buffer_info(env, argv[1], &src, &srclen));
  int st = gkey_load(h->k, src, &loaded);
  if (st != ST_OK) return throw_status(env, st);
  CHECK(env, napi_get_boolean(env, loaded, &result));
  return result;
}

/* keyView(key) -> ArrayBuffer over the key pages (created once; detached on zeroize). */
static napi_value key_view(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1], ab;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  uint8_t *pages = gkey_pages(h->k, &len);
  if (!pages) return throw_status(env, ST_ZEROIZED);
  if (h->view) {
    CHECK(env, napi_get_reference_value(env, h->view, &ab));
    return ab;
  }
  CHECK(env, napi_create_external_arraybuffer(env, pages, len, NULL, NULL, &ab));
  CHECK(env, napi_create_reference(env, ab, 1, &h->view));
  return ab;
}

/* keyProtect(key, writable) -> loaded: make the pages read-write (for loading in place) or no-access again. */
static napi_value key_protect(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], r;
  bool writable;
  int loaded;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[1], &writable));
  int st = gkey_protect(h->k, writable, &loaded);
  if (st != ST_OK) return throw_status(env, st);
  CHECK(env, napi_get_boolean(env, loaded, &r));
  return r;
}

/* keyZeroize(key): wait for in-flight jobs, wipe, unmap, detach the JS view. Idempotent. */
static napi_value key_zeroize(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  gkey_zeroize(h->k);
  if (h->view) {
    napi_ref view = h->view;
    h->view = NULL;
    CHECK(env, napi_get_reference_value(env, view, &ab));
    if (ab) CHECK(env, napi_detach_arraybuffer(env, ab));
    CHECK(env, napi_delete_reference(env, view));
  }
  return NULL;
}

static bool set_bool(napi_env env, napi_value o, const char *name, bool b) {
  napi_value v;
  return OK(env, napi_get_boolean(env, b, &v)) && OK(env, napi_set_named_property(env, o, name, v));
}

/* keyInfo(key) -> { zeroized, loaded, locked, wipeOnFork, address, lockedBytes, backend } (address for tests only) */
static napi_value key_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  gkey_info ki;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  gkey_describe(h->k, &ki);
  CHECK(env, napi_create_object(env, &o));
  if (!set_bool(env, o, "zeroized", ki.zeroized) || !set_bool(env, o, "loaded", ki.loaded) || !set_bool(env, o, "locked", ki.locked) ||
      !set_bool(env, o, "wipeOnFork", ki.wipe_on_fork) || !set_double(env, o, "address", (double)ki.address) ||
      !set_double(env, o, "lockedBytes", (double)ki.locked_bytes) || !set_string(env, o, "backend", ki.backend))
    return NULL;
  return o;
}

/* keyPbkdf2Sha256(key, salt, iterations, out): PBKDF2-HMAC-SHA256 of the guarded key (the LUKS2 key digest). */
static napi_value key_pbkdf2(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *salt, *out;
  size_t saltlen, outlen;
  uint32_t iter;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_buffer_info(env, argv[1], &salt, &saltlen));
  CHECK(env, napi_get_value_uint32(env, argv[2], &iter));
  CHECK(env, napi_get_buffer_info(env, argv[3], &out, &outlen));
  int st = gkey_pbkdf2(h->k, salt, saltlen, iter, out, outlen);
  return st == ST_OK ? NULL : throw_status(env, st);
}

/* keyLuks2Keyslot(key, pass, salt, iterations, stripes, out): the encrypted LUKS2 keyslot area of the guarded key (keyslot.c). */
static napi_value key_luks2_keyslot(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  void *pass, *salt, *out;
  size_t passlen, saltlen, outlen;
  uint32_t iter, stripes;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  key_handle *h = get_key(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_buffer_info(env, argv[1], &pass, &passlen));
  CHECK(env, napi_get_buffer_info(env, argv[2], &salt, &saltlen));
  CHECK(env, napi_get_value_uint32(env, argv[3], &iter));
  CHECK(env, napi_get_value_uint32(env, argv[4], &stripes));
  CHECK(env, napi_get_buffer_info(env, argv[5], &out, &outlen));
  int st = gkey_luks2_keyslot(h->k, pass, passlen, salt, saltlen, iter, stripes, out, outlen);
  return st == ST_OK ? NULL : throw_status(env, st);
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
  int status;
} job;

/* Arguments (validated by TypeScript): (key, src, dst, firstSector, sectorSize, encrypt). False after throwing. */
static bool parse_job(napi_env env, napi_callback_info info, job *j, napi_value *argv) {
  size_t argc = 6;
  void *a = NULL, *b = NULL;
  size_t alen = 0, blen = 0;
  int64_t first;
  bool enc;
  if (!OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return false;
  key_handle *h = get_key(env, argv[0]);
  if (!h) return false;
  if (!OK(env, napi_get_buffer_info(env, argv[1], &a, &alen)) || !OK(env, napi_get_buffer_info(env, argv[2], &b, &blen)) ||
      !OK(env, napi_get_value_int64(env, argv[3], &first)) || !OK(env, napi_get_value_uint32(env, argv[4], &j->ss)) ||
      !OK(env, napi_get_value_bool(env, argv[5], &enc)))
    return false;
  j->k = h->k;
  j->src = a;
  j->dst = b;
  j->len = alen;
  j->enc = enc;
  j->first = (uint64_t)first;
  return true;
}

static napi_value xts_sync(napi_env env, napi_callback_info info) {
  job j = {0};
  napi_value argv[6];
  if (!parse_job(env, info, &j, argv)) return NULL;
  int st = engine_crypt(j.k, j.src, j.dst, j.len, j.first, j.ss, j.enc, 0);
  return st == ST_OK ? NULL : throw_status(env, st);
}

static void xts_job_run(qjob *q) {
  job *j = (job *)q;
  j->status = engine_crypt(j->k, j->src, j->dst, j->len, j->first, j->ss, j->enc, 0);
}

/* Release what a job pinned. Cleanup after the fact: a failed delete only leaks a reference, so it is not thrown. */
static void job_unref(napi_env env, job *j) {
  if (j->kref) (void)napi_delete_reference(env, j->kref);
  if (j->aref) (void)napi_delete_reference(env, j->aref);
  if (j->bref) (void)napi_delete_reference(env, j->bref);
  free(j);
}

/*
 * Settle a job's promise on the JS thread: resolve with v, or reject with it. When building v
 * failed (v NULL, an exception pending), the promise rejects with that exception instead of
 * never settling.
 */
static void settle(napi_env env, napi_deferred d, bool resolve, napi_value v) {
  if (!v) {
    resolve = false;
    if (!OK(env, napi_get_and_clear_last_exception(env, &v))) return;
  }
  OK(env, resolve ? napi_resolve_deferred(env, d, v) : napi_reject_deferred(env, d, v));
}

static void xts_job_settle(napi_env env, qjob *q) {
  job *j = (job *)q;
  napi_value v = NULL;
  if (j->status == ST_OK)
    settle(env, j->q.deferred, true, OK(env, napi_get_undefined(env, &v)) ? v : NULL);
  else
    settle(env, j->q.deferred, false, status_error(env, j->status, 0));
  job_unref(env, j);
}

/* Queue the job for the libuv thread pool (jobq.c); the key and buffers stay pinned by references until it settles. */
static napi_value xts_async(napi_env env, napi_callback_info info) {
  job *j = calloc(1, sizeof *j);
  napi_value argv[6], promise;
  if (!j) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  if (!parse_job(env, info, j, argv) || !OK(env, napi_create_reference(env, argv[0], 1, &j->kref)) ||
      !OK(env, napi_create_reference(env, argv[1], 1, &j->aref)) || !OK(env, napi_create_reference(env, argv[2], 1, &j->bref)) ||
      !OK(env, jobq_submit(env, &j->q, xts_job_run, xts_job_settle, &promise))) {
    job_unref(env, j);
    return NULL;
  }
  return promise;
}

/* ---------- re-encryption (snapshots and copies) ---------- */

typedef struct {
  qjob q; /* first: the queue hands back a qjob * */
  napi_ref oref, nref, bref;
  gkey *oldk, *newk; /* NULL: that side is unencrypted */
  int sfd, dfd;
  int64_t soff, doff; /* byte offsets of sector `first` in the source and destination files */
  uint64_t first;
  uint8_t *buf; /* caller-allocated scratch, whole sectors */
  size_t len;
  int status, err;
  double written;
} recrypt_job;

static void recrypt_run(qjob *q) {
  recrypt_job *j = (recrypt_job *)q;
  j->status = engine_recrypt(j->oldk, j->newk, j->sfd, (uint64_t)j->soff, j->dfd, (uint64_t)j->doff, j->first, j->buf, j->len, &j->err, &j->written);
}

/* Release what a job pinned (see job_unref). */
static void recrypt_unref(napi_env env, recrypt_job *j) {
  if (j->oref) (void)napi_delete_reference(env, j->oref);
  if (j->nref) (void)napi_delete_reference(env, j->nref);
  if (j->bref) (void)napi_delete_reference(env, j->bref);
  free(j);
}

static void recrypt_settle(napi_env env, qjob *q) {
  recrypt_job *j = (recrypt_job *)q;
  napi_value v = NULL;
  if (j->status == ST_OK)
    settle(env, j->q.deferred, true, OK(env, napi_create_double(env, j->written, &v)) ? v : NULL);
  else
    settle(env, j->q.deferred, false, status_error(env, j->status, j->err));
  recrypt_unref(env, j);
}

/* recryptAsync(oldKey|null, newKey|null, srcFd, srcOffset, dstFd, dstOffset, firstSector, scratch) -> bytes written */
static napi_value recrypt_async(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], promise;
  key_handle *ho, *hn;
  int64_t first;
  void *b;
  recrypt_job *j = calloc(1, sizeof *j);
  if (!j) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  bool ok = OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL)) && get_key_or_null(env, argv[0], &ho) && get_key_or_null(env, argv[1], &hn) &&
            OK(env, napi_get_value_int32(env, argv[2], &j->sfd)) && OK(env, napi_get_value_int64(env, argv[3], &j->soff)) &&
            OK(env, napi_get_value_int32(env, argv[4], &j->dfd)) && OK(env, napi_get_value_int64(env, argv[5], &j->doff)) &&
            OK(env, napi_get_value_int64(env, argv[6], &first)) && OK(env, napi_get_buffer_info(env, argv[7], &b, &j->len)) &&
            (!ho || OK(env, napi_create_reference(env, argv[0], 1, &j->oref))) && (!hn || OK(env, napi_create_reference(env, argv[1], 1, &j->nref))) &&
            OK(env, napi_create_reference(env, argv[7], 1, &j->bref));
  if (ok) {
    j->oldk = ho ? ho->k : NULL;
    j->newk = hn ? hn->k : NULL;
    j->first = (uint64_t)first;
    j->buf = b;
    ok = OK(env, jobq_submit(env, &j->q, recrypt_run, recrypt_settle, &promise));
  }
  if (!ok) {
    recrypt_unref(env, j);
    return NULL;
  }
  return promise;
}

/* ---------- files ---------- */

/* lockExclusive(fd) -> 0, or the errno of flock(LOCK_EX | LOCK_NB) (EWOULDBLOCK when held elsewhere). */
static napi_value lock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  int rc = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
  CHECK(env, napi_create_int32(env, rc, &r));
  return r;
}

/* seekExtent(fd, offset, hole) -> next data (or hole) offset at or after `offset`, or -1 past the last data. */
static napi_value seek_extent(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], r;
  int32_t fd;
  int64_t off;
  bool hole;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int64(env, argv[1], &off));
  CHECK(env, napi_get_value_bool(env, argv[2], &hole));
  off_t o = lseek(fd, (off_t)off, hole ? SEEK_HOLE : SEEK_DATA);
  if (o < 0 && errno != ENXIO) return throw_code(env, "KMSVOL_SEEK", strerror(errno));
  CHECK(env, napi_create_double(env, o < 0 ? -1.0 : (double)o, &r));
  return r;
}

/* ---------- FUSE server ---------- */

static void server_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  server_handle *h = data;
  fuse_server_free(h->s);
  /* A finalizer cannot throw: a failed delete only leaks the reference of an environment going away. */
  if (h->kref) (void)napi_delete_reference(env, h->kref);
  free(h);
}

/* A string argument of at most `max` bytes into buf (max + 1 bytes). NULL after throwing; a longer one is a RangeError. */
static napi_value get_string(napi_env env, napi_value v, char *buf, size_t max, const char *what) {
  size_t len;
  CHECK(env, napi_get_value_string_utf8(env, v, NULL, 0, &len));
  if (len > max) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s is %zu bytes; the most is %zu", what, len, max);
    napi_throw_range_error(env, "KMSVOL_ARG", msg);
    return NULL;
  }
  CHECK(env, napi_get_value_string_utf8(env, v, buf, max + 1, &len));
  return v;
}

/*
 * fuseStart(key | null, fd, payloadOffset, sizeBytes, dirFd, fileName, track) -> server handle.
 * Mounts on the held directory descriptor synchronously (errors throw) and starts the worker threads.
 */
static napi_value fuse_start(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], ext;
  bool track;
  key_handle *kh;
  int64_t payload, size;
  int32_t fd, dirfd;
  char name[KMSVOL_NAME_MAX + 1];
  const char *why = NULL;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_key_or_null(env, argv[0], &kh)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[1], &fd));
  CHECK(env, napi_get_value_int64(env, argv[2], &payload));
  CHECK(env, napi_get_value_int64(env, argv[3], &size));
  CHECK(env, napi_get_value_int32(env, argv[4], &dirfd));
  if (!get_string(env, argv[5], name, KMSVOL_NAME_MAX, "the file name")) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[6], &track));
  server_handle *h = calloc(1, sizeof *h);
  if (!h) return throw_code(env, "KMSVOL_NOMEM", "out of memory");
  if (kh && napi_create_reference(env, argv[0], 1, &h->kref) != napi_ok) {
    free(h);
    return throw_code(env, "KMSVOL_NAPI", "napi_create_reference failed");
  }
  h->s = fuse_server_start(kh ? kh->k : NULL, fd, (uint64_t)payload, (uint64_t)size, dirfd, name, track, &why);
  if (!h->s) {
    if (h->kref) (void)napi_delete_reference(env, h->kref);
    free(h);
    return throw_code(env, "KMSVOL_FUSE", why);
  }
  if (napi_create_external(env, h, server_finalize, NULL, &ext) != napi_ok) {
    server_finalize(env, h, NULL);
    return throw_code(env, "KMSVOL_NAPI", "napi_create_external failed");
  }
  CHECK(env, napi_type_tag_object(env, ext, &SERVER_TAG));
  return ext;
}

/* fuseOpen(server, direct) -> a new fd on the served file, opened through the held mount; or -errno. */
static napi_value fuse_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], r;
  bool direct;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[1], &direct));
  CHECK(env, napi_create_int32(env, fuse_server_open(h->s, direct), &r));
  return r;
}

/* fuseIdentity(server) -> { dev, mnt }: the mount's st_dev and unique id (0: none), without a request to the server. */
static napi_value fuse_identity(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  uint64_t dev = 0, mnt = 0;
  int e = fuse_server_identity(h->s, &dev, &mnt);
  if (e) return throw_code(env, "KMSVOL_IO", strerror(e));
  CHECK(env, napi_create_object(env, &o));
  if (!set_double(env, o, "dev", (double)dev) || !set_double(env, o, "mnt", (double)mnt)) return NULL;
  return o;
}

/* fuseCovered(server) -> true when another mount sits on or in the server's mount. */
static napi_value fuse_covered(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_boolean(env, fuse_server_covered(h->s) != 0, &r));
  return r;
}

/* fuseStop(server): unmount, wait for the workers to finish. Idempotent. */
static napi_value fuse_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  fuse_server_stop(h->s);
  if (h->kref) {
    napi_ref kref = h->kref;
    h->kref = NULL;
    CHECK(env, napi_delete_reference(env, kref));
  }
  return NULL;
}

/*
 * fuseFreeze(server, on): on waits for in-flight writes and holds new ones back,
 * then fdatasyncs the backing file; off lets writes continue. For snapshots.
 */
static napi_value fuse_freeze(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[1], &on));
  int e = fuse_server_freeze(h->s, on);
  return e ? throw_code(env, "KMSVOL_IO", strerror(e)) : NULL;
}

/* fuseResize(server, size): grow the served file to `size` bytes (the backing image was already extended). Never shrinks. */
static napi_value fuse_resize(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t size;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_value_int64(env, argv[1], &size));
  if (size <= 0 || fuse_server_resize(h->s, (uint64_t)size) != 0) return throw_code(env, "KMSVOL_ARG", "a volume only grows");
  return NULL;
}

/* fuseChanges(server, op, bits): the change bitmap through `bits` (a Uint8Array): op 0 peek, 1 take, 2 merge (fuse_server_changes). */
static napi_value fuse_changes(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  int32_t op;
  void *data;
  napi_typedarray_type type;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[1], &op));
  CHECK(env, napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL));
  if (type != napi_uint8_array || op < CHANGES_PEEK || op > CHANGES_MERGE) return throw_code(env, "KMSVOL_ARG", "fuseChanges takes op 0..2 and a Uint8Array");
  int e = fuse_server_changes(h->s, op, data, len);
  return e ? throw_code(env, e == ENOTSUP ? "KMSVOL_NOTRACK" : "KMSVOL_ARG", strerror(e)) : NULL;
}

/* fuseStats(server) -> { errors, lastErrno, lostWrite, openFiles } */
static napi_value fuse_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  fuse_server_stats st;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_handle *h = get_server(env, argv[0]);
  if (!h) return NULL;
  fuse_server_get_stats(h->s, &st);
  CHECK(env, napi_create_object(env, &o));
  if (!set_double(env, o, "errors", (double)st.errors) || !set_int(env, o, "lastErrno", st.last_errno) || !set_int(env, o, "lostWrite", st.lost_write) ||
      !set_int(env, o, "openFiles", st.open_files))
    return NULL;
  return o;
}

/* ---------- process ---------- */

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
  CHECK(env, napi_create_string_utf8(env, engine_backend(), NAPI_AUTO_LENGTH, &v));
  return v;
}

/* constants: the limits C holds, for TypeScript to read instead of writing them again (frozen). */
static napi_value constants(napi_env env) {
  napi_value o;
  CHECK(env, napi_create_object(env, &o));
  if (!set_int(env, o, "SECTOR_SIZE", KMSVOL_SECTOR_SIZE) || !set_int(env, o, "XTS_UNIT", KMSVOL_XTS_UNIT) ||
      !set_int(env, o, "XTS_KEY_BYTES", KMSVOL_XTS_KEY_BYTES) || !set_int(env, o, "MAX_IO", KMSVOL_MAX_IO) || !set_int(env, o, "NAME_MAX", KMSVOL_NAME_MAX) ||
      !set_int(env, o, "MOUNT_PATH_MAX", KMSVOL_MOUNT_PATH_MAX) || !set_int(env, o, "EWOULDBLOCK", EWOULDBLOCK) ||
      !set_int(env, o, "CHANGE_BLOCK", KMSVOL_CHANGE_BLOCK))
    return NULL;
  CHECK(env, napi_object_freeze(env, o));
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  /* KMSVOL_XTS_BACKEND=openssl|aesni|vaes forces a backend (for benchmarks and tests); default: the best the CPU has. */
  engine_init(getenv("KMSVOL_XTS_BACKEND"));
  napi_value c = constants(env);
  if (!c) return NULL;
  napi_property_descriptor props[] = {
      {"constants", NULL, NULL, NULL, NULL, c, napi_enumerable, NULL},
      {"backend", NULL, backend, NULL, NULL, NULL, napi_default, NULL},
      {"keyCreate", NULL, key_create, NULL, NULL, NULL, napi_default, NULL},
      {"keyLoad", NULL, key_load, NULL, NULL, NULL, napi_default, NULL},
      {"keyView", NULL, key_view, NULL, NULL, NULL, napi_default, NULL},
      {"keyProtect", NULL, key_protect, NULL, NULL, NULL, napi_default, NULL},
      {"keyZeroize", NULL, key_zeroize, NULL, NULL, NULL, napi_default, NULL},
      {"keyInfo", NULL, key_info, NULL, NULL, NULL, napi_default, NULL},
      {"keyPbkdf2", NULL, key_pbkdf2, NULL, NULL, NULL, napi_default, NULL},
      {"keyLuks2Keyslot", NULL, key_luks2_keyslot, NULL, NULL, NULL, napi_default, NULL},
      {"xtsSync", NULL, xts_sync, NULL, NULL, NULL, napi_default, NULL},
      {"xtsAsync", NULL, xts_async, NULL, NULL, NULL, napi_default, NULL},
      {"recryptAsync", NULL, recrypt_async, NULL, NULL, NULL, napi_default, NULL},
      {"lockExclusive", NULL, lock_exclusive, NULL, NULL, NULL, napi_default, NULL},
      {"seekExtent", NULL, seek_extent, NULL, NULL, NULL, napi_default, NULL},
      {"fuseStart", NULL, fuse_start, NULL, NULL, NULL, napi_default, NULL},
      {"fuseStop", NULL, fuse_stop, NULL, NULL, NULL, napi_default, NULL},
      {"fuseOpen", NULL, fuse_open, NULL, NULL, NULL, napi_default, NULL},
      {"fuseCovered", NULL, fuse_covered, NULL, NULL, NULL, napi_default, NULL},
      {"fuseIdentity", NULL, fuse_identity, NULL, NULL, NULL, napi_default, NULL},
      {"fuseStats", NULL, fuse_stats, NULL, NULL, NULL, napi_default, NULL},
      {"fuseFreeze", NULL, fuse_freeze, NULL, NULL, NULL, napi_default, NULL},
      {"fuseResize", NULL, fuse_resize, NULL, NULL, NULL, napi_default, NULL},
      {"fuseChanges", NULL, fuse_changes, NULL, NULL, NULL, napi_default, NULL},
      {"setNonDumpable", NULL, set_non_dumpable, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  if (!loop_define(env, exports)) return NULL;
  return paths_register(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
