/*
 * A LUKS2 keyslot for a guarded volume key, written the way cryptsetup reads
 * one (the LUKS2 on-disk format; cryptsetup's luks2_keyslot_luks2.c and
 * af.c): the key is split with the luks1 anti-forensic splitter over SHA-256
 * into `stripes` stripes, and the split key is encrypted with aes-xts-plain64
 * (a 512-bit key, 512-byte sectors numbered from 0 at the area's start) under
 * PBKDF2-HMAC-SHA256 of the passphrase.
 *
 * The split key is key-equivalent, so it lives only in a private mapping that
 * is mlock'd (best effort) and MADV_DONTDUMP, and is wiped before it is
 * unmapped; only the encrypted area reaches the caller's buffer.
 */
#define _GNU_SOURCE
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

#define KS_SECTOR 512
#define KS_KEY    64 /* aes-xts-plain64, 512-bit */

typedef struct {
  const uint8_t *pass;
  size_t passlen;
  const uint8_t *salt;
  size_t saltlen;
  uint32_t iter, stripes;
  uint8_t *out;
  size_t outlen;
} ks_args;

/* dst = H(be32(i) || src) over each hash-sized chunk (the last one truncated): cryptsetup's diffuse(). */
static int diffuse(uint8_t *buf, size_t size) {
  uint8_t d[32];
  unsigned int dl = 0;
  int ok = 1;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return 0;
  for (size_t i = 0, off = 0; off < size; i++, off += sizeof d) {
    size_t n = size - off < sizeof d ? size - off : sizeof d;
    uint8_t iv[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    ok = ok && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, iv, 4) == 1 && EVP_DigestUpdate(md, buf + off, n) == 1 &&
         EVP_DigestFinal_ex(md, d, &dl) == 1;
    if (ok) memcpy(buf + off, d, n);
  }
  EVP_MD_CTX_free(md);
  OPENSSL_cleanse(d, sizeof d);
  return ok;
}

/* The luks1 AF split of key (len bytes) into stripes blocks at split: random stripes, the last one key XOR the diffused running sum. */
static int af_split(const uint8_t *key, size_t len, uint32_t stripes, uint8_t *split, uint8_t *sum) {
  memset(sum, 0, len);
  for (uint32_t i = 0; i + 1 < stripes; i++) {
    uint8_t *block = split + (size_t)i * len;
    if (RAND_priv_bytes(block, (int)len) != 1) return 0;
    for (size_t j = 0; j < len; j++) sum[j] ^= block[j];
    if (!diffuse(sum, len)) return 0;
  }
  uint8_t *last = split + (size_t)(stripes - 1) * len;
  for (size_t j = 0; j < len; j++) last[j] = key[j] ^ sum[j];
  return 1;
}

/* aes-xts-plain64 over whole 512-byte sectors, the IV the sector number (little-endian) counted from 0. */
static int xts_encrypt(const uint8_t *kk, const uint8_t *src, uint8_t *dst, size_t len) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_xts(), NULL, kk, NULL) == 1;
  uint8_t iv[16];
  for (size_t off = 0; ok && off < len; off += KS_SECTOR) {
    uint64_t n = off / KS_SECTOR;
    memset(iv, 0, sizeof iv);
    for (int i = 0; i < 8; i++) iv[i] = (uint8_t)(n >> (8 * i));
    int outl = 0;
    ok = EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) == 1 && EVP_EncryptUpdate(c, dst + off, &outl, src + off, KS_SECTOR) == 1 && outl == KS_SECTOR;
  }
  EVP_CIPHER_CTX_free(c);
  return ok;
}

static int build(const uint8_t *key, size_t len, void *arg) {
  ks_args *a = arg;
  size_t split_len = len * a->stripes;
  size_t area = (split_len + KS_SECTOR - 1) / KS_SECTOR * KS_SECTOR;
  if (area > a->outlen || a->stripes < 1) return ST_CRYPTO;
  /* One private mapping: the derived key, the running sum, the split key. */
  size_t map_len = KS_KEY + len + area;
  uint8_t *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return ST_NOMEM;
  madvise(m, map_len, MADV_DONTDUMP);
  int locked = mlock(m, map_len) == 0;
  uint8_t *kk = m, *sum = m + KS_KEY, *split = m + KS_KEY + len;
  memset(split, 0, area);
  int ok = PKCS5_PBKDF2_HMAC((const char *)a->pass, (int)a->passlen, a->salt, (int)a->saltlen, (int)a->iter, EVP_sha256(), KS_KEY, kk) == 1 &&
           af_split(key, len, a->stripes, split, sum) && xts_encrypt(kk, split, a->out, area);
  memset(a->out + area, 0, a->outlen - area);
  if (!ok) memset(a->out, 0, a->outlen);
  explicit_bzero(m, map_len);
  if (locked) munlock(m, map_len);
  munmap(m, map_len);
  return ok ? ST_OK : ST_CRYPTO;
}

int gkey_luks2_keyslot(gkey *k, const uint8_t *pass, size_t passlen, const uint8_t *salt, size_t saltlen, uint32_t iter, uint32_t stripes, uint8_t *out,
                       size_t outlen) {
  ks_args a = {pass, passlen, salt, saltlen, iter, stripes, out, outlen};
  return gkey_with_key(k, build, &a);
}
