/*
 * The sector engine (engine.c): guarded key memory, keyed cipher contexts,
 * batched AES-256-XTS, whole-buffer file I/O and re-encryption. Plain C with
 * no N-API: the FUSE server (fuse_server.c) and the binding (binding.c) both
 * call it, and it calls neither.
 *
 * The limits below are the engine's and the FUSE server's; the binding
 * exports them to TypeScript (src/native/index.ts reads them from there).
 */
#ifndef KMSVOL_ENGINE_H
#define KMSVOL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* The volume sector: what the FUSE server serves and recrypt copies. */
#define KMSVOL_SECTOR_SIZE 4096
/* XTS runs on any whole multiple of this; the IV counts in these units (plain64). */
#define KMSVOL_XTS_UNIT 512
/* An AES-256-XTS key: two 32-byte AES keys. */
#define KMSVOL_XTS_KEY_BYTES 64

/* Statuses of the engine's calls. */
enum { ST_OK = 0, ST_ZEROIZED = 1, ST_CRYPTO = 2, ST_NOMEM = 3, ST_NOT_LOADED = 4, ST_MLOCK = 5, ST_MLOCK_SCHED = 6 };

/* A key in guarded memory (opaque outside engine.c). */
typedef struct gkey gkey;

/* Pick the XTS backend once, before any key exists: "openssl", "aesni", "vaes", or NULL for the best the CPU has. */
void engine_init(const char *want);
/* "vaes" or "aesni" (own XTS, schedules in guarded pages) or "openssl" (EVP fallback). */
const char *engine_backend(void);

/* A zeroed, no-access guarded key of `len` bytes: ST_OK, ST_NOMEM, ST_MLOCK or ST_MLOCK_SCHED. */
int gkey_new(size_t len, gkey **out);
/* Wait for in-flight work, wipe, unmap and free (the binding's finalizer). */
void gkey_free(gkey *k);
/* Copy len bytes (its length) into the key; *loaded = 0 when the two halves are equal (nothing kept). ST_OK or ST_ZEROIZED. */
int gkey_load(gkey *k, const uint8_t *src, int *loaded);
/* Make the key pages read-write for loading in place (writable) or check, key and lock them again. ST_OK or ST_ZEROIZED. */
int gkey_protect(gkey *k, int writable, int *loaded);
/* Stop new use, wait for in-flight work, wipe and unmap. Idempotent. */
void gkey_zeroize(gkey *k);
/* The key pages and the key's length; NULL once zeroized. */
uint8_t *gkey_pages(gkey *k, size_t *len);

typedef struct {
  int zeroized, loaded, locked, wipe_on_fork;
  uintptr_t address; /* of the key pages; for tests of the mapping */
  size_t locked_bytes;
  const char *backend;
} gkey_info;
void gkey_describe(gkey *k, gkey_info *out);

/* fn(key bytes, length, arg) with the key readable for the call only: fn's status, ST_ZEROIZED or ST_NOT_LOADED. */
int gkey_with_key(gkey *k, int (*fn)(const uint8_t *key, size_t len, void *arg), void *arg);
/*
 * A LUKS2 keyslot area (keyslot.c): the key AF-split (luks1 AF, sha256) into
 * `stripes` stripes and encrypted with aes-xts-plain64 (512-bit, 512-byte
 * sectors from 0) under PBKDF2-HMAC-SHA256(pass, salt, iter). out holds
 * key_len * stripes bytes rounded up to 512 (rest zero). ST_OK, ST_CRYPTO, ST_NOMEM.
 */
int gkey_luks2_keyslot(gkey *k, const uint8_t *pass, size_t passlen, const uint8_t *salt, size_t saltlen, uint32_t iter, uint32_t stripes, uint8_t *out,
                       size_t outlen);
/* PBKDF2-HMAC-SHA256 of the key into out: ST_OK, ST_ZEROIZED, ST_NOT_LOADED or ST_CRYPTO. */
int gkey_pbkdf2(gkey *k, const uint8_t *salt, size_t saltlen, uint32_t iter, uint8_t *out, size_t outlen);

/*
 * XTS over whole sectors [first, first + len / ss) with plain64 IVs: take a
 * keyed context, run, scrub, give it back. skip_zero maps all-zero source
 * sectors to zeros (the sparse-image rule for reads). src may equal dst.
 */
int engine_crypt(gkey *k, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, uint32_t ss, int enc, int skip_zero);

/*
 * Re-encrypt len bytes (whole KMSVOL_SECTOR_SIZE sectors, the first being `first`) read at
 * soff of sfd into doff of dfd, using buf as scratch: never-written (all-zero) sectors are
 * skipped so the destination stays sparse. oldk/newk NULL: that side is unencrypted.
 * Returns a status; *err is the errno of a failed read or write; *written the bytes written.
 */
int engine_recrypt(gkey *oldk, gkey *newk, int sfd, uint64_t soff, int dfd, uint64_t doff, uint64_t first, uint8_t *buf, size_t len, int *err, double *written);

/* pread all of `len` bytes (retrying EINTR); past the end of a sparse file reads as zeros. Returns 0 or errno. */
int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off);
/* pwrite all of `len` bytes (retrying EINTR). Returns 0 or errno. */
int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t off);

#endif
