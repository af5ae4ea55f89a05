/*
 * AES-256-XTS on AES-NI, with the expanded key schedules in caller-provided
 * memory (the guarded pages), so no copy of the key or its schedule lives in
 * ordinary heap. Eight blocks are processed in parallel to keep the AES units
 * busy. XTS as IEEE 1619: T = E_K2(IV); C_j = E_K1(P_j ^ T_j) ^ T_j; T_{j+1} = T_j * alpha.
 * Sector sizes are whole multiples of 16 bytes, so no ciphertext stealing.
 */
#ifndef KMSVOL_AESNI_XTS_H
#define KMSVOL_AESNI_XTS_H

#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#define XTS_TARGET __attribute__((target("aes,sse2,sse4.1"), optimize("O3", "unroll-loops")))

typedef struct {
  __m128i ek1[15];  /* K1 encryption schedule */
  __m128i dk1[15];  /* K1 decryption schedule (equivalent inverse cipher) */
  __m128i ek2[15];  /* K2 encryption schedule, for the tweak */
  __m256i vek1[15]; /* the K1 schedules broadcast to both lanes, for VAES */
  __m256i vdk1[15];
} xts_sched;

/*
 * Hygiene after touching key material: the vector registers and the stack
 * below the caller may still hold round keys (spills, or simply the last
 * values loaded), and a core image records both. Clear them.
 */
__attribute__((noinline, unused)) static void xts_burn_stack(void) {
  volatile uint8_t scratch[16384];
  explicit_bzero((void *)scratch, sizeof scratch);
}

__attribute__((target("sse2"))) static inline void xts_clear_sse(void) {
  __asm__ __volatile__("pxor %%xmm0,%%xmm0\n\tpxor %%xmm1,%%xmm1\n\tpxor %%xmm2,%%xmm2\n\tpxor %%xmm3,%%xmm3\n\t"
                       "pxor %%xmm4,%%xmm4\n\tpxor %%xmm5,%%xmm5\n\tpxor %%xmm6,%%xmm6\n\tpxor %%xmm7,%%xmm7\n\t"
                       "pxor %%xmm8,%%xmm8\n\tpxor %%xmm9,%%xmm9\n\tpxor %%xmm10,%%xmm10\n\tpxor %%xmm11,%%xmm11\n\t"
                       "pxor %%xmm12,%%xmm12\n\tpxor %%xmm13,%%xmm13\n\tpxor %%xmm14,%%xmm14\n\tpxor %%xmm15,%%xmm15" ::
                           : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                             "xmm15");
}

__attribute__((target("avx"))) static inline void xts_clear_avx(void) { _mm256_zeroall(); }

/* Clear vector registers and burn the stack; call after expansion and after each batch. */
static inline void xts_scrub(int have_avx) {
  if (have_avx)
    xts_clear_avx();
  else
    xts_clear_sse();
  xts_burn_stack();
}

static inline int xts_cpu_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

XTS_TARGET static inline __m128i xts_assist_a(__m128i key, __m128i gen) {
  gen = _mm_shuffle_epi32(gen, 0xff);
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  return _mm_xor_si128(key, gen);
}

XTS_TARGET static inline __m128i xts_assist_b(__m128i key, __m128i gen) {
  gen = _mm_shuffle_epi32(gen, 0xaa);
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  return _mm_xor_si128(key, gen);
}

/* AES-256 key expansion (FIPS 197) with AESKEYGENASSIST; the round constant must be an immediate. */
#define XTS_EXPAND_PAIR(rk, i, rcon)                                                                                                                           \
  do {                                                                                                                                                         \
    rk[i] = xts_assist_a(rk[i - 2], _mm_aeskeygenassist_si128(rk[i - 1], rcon));                                                                               \
    if (i + 1 < 15) rk[i + 1] = xts_assist_b(rk[i - 1], _mm_aeskeygenassist_si128(rk[i], 0));                                                                  \
  } while (0)

XTS_TARGET static inline void xts_expand256(__m128i rk[15], const uint8_t *key) {
  rk[0] = _mm_loadu_si128((const __m128i *)key);
  rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
  XTS_EXPAND_PAIR(rk, 2, 0x01);
  XTS_EXPAND_PAIR(rk, 4, 0x02);
  XTS_EXPAND_PAIR(rk, 6, 0x04);
  XTS_EXPAND_PAIR(rk, 8, 0x08);
  XTS_EXPAND_PAIR(rk, 10, 0x10);
  XTS_EXPAND_PAIR(rk, 12, 0x20);
  rk[14] = xts_assist_a(rk[12], _mm_aeskeygenassist_si128(rk[13], 0x40));
}

XTS_TARGET static inline void xts_expand(xts_sched *s, const uint8_t *k1, const uint8_t *k2) {
  xts_expand256(s->ek1, k1);
  xts_expand256(s->ek2, k2);
  s->dk1[0] = s->ek1[14];
  for (int i = 1; i < 14; i++) s->dk1[i] = _mm_aesimc_si128(s->ek1[14 - i]);
  s->dk1[14] = s->ek1[0];
}

__attribute__((target("avx2"))) static inline void xts_expand_wide(xts_sched *s) {
  for (int r = 0; r < 15; r++) {
    s->vek1[r] = _mm256_broadcastsi128_si256(s->ek1[r]);
    s->vdk1[r] = _mm256_broadcastsi128_si256(s->dk1[r]);
  }
}

/* Multiply the tweak by alpha in GF(2^128), little-endian as XTS defines it. */
XTS_TARGET static inline __m128i xts_double(__m128i t) {
  __m128i carry = _mm_srai_epi32(t, 31);
  carry = _mm_and_si128(carry, _mm_set_epi32(0x87, 1, 1, 1));
  carry = _mm_shuffle_epi32(carry, 0x93);
  return _mm_xor_si128(_mm_slli_epi32(t, 1), carry);
}

/* The initial tweak of a data unit: E_K2(n), n as a 128-bit little-endian number. */
XTS_TARGET static inline __m128i xts_tweak(const xts_sched *s, uint64_t n) {
  __m128i t = _mm_xor_si128(_mm_set_epi64x(0, (long long)n), s->ek2[0]);
  for (int r = 1; r < 14; r++) t = _mm_aesenc_si128(t, s->ek2[r]);
  return _mm_aesenclast_si128(t, s->ek2[14]);
}

/* One data unit (sector) of `len` bytes (a multiple of 128) with 64-bit sector number `n`. In place allowed. */
XTS_TARGET static inline void xts_sector(const xts_sched *s, uint64_t n, const uint8_t *src, uint8_t *dst, size_t len, int enc) {
  const __m128i *rk = enc ? s->ek1 : s->dk1;
  __m128i t = xts_tweak(s, n);

  for (size_t off = 0; off < len; off += 128) {
    __m128i tw[8], b[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      tw[i] = t;
      t = xts_double(t);
      b[i] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + off + 16 * i)), tw[i]);
      b[i] = _mm_xor_si128(b[i], rk[0]);
    }
    if (enc) {
#pragma GCC unroll 13
      for (int r = 1; r < 14; r++)
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) b[i] = _mm_aesenc_si128(b[i], rk[r]);
      for (int i = 0; i < 8; i++) b[i] = _mm_aesenclast_si128(b[i], rk[14]);
    } else {
#pragma GCC unroll 13
      for (int r = 1; r < 14; r++)
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) b[i] = _mm_aesdec_si128(b[i], rk[r]);
      for (int i = 0; i < 8; i++) b[i] = _mm_aesdeclast_si128(b[i], rk[14]);
    }
    for (int i = 0; i < 8; i++) _mm_storeu_si128((__m128i *)(dst + off + 16 * i), _mm_xor_si128(b[i], tw[i]));
  }
}

/*
 * The same with VAES on 256-bit registers: two blocks per instruction, sixteen
 * blocks in flight. Used when the CPU has VAES and AVX2.
 */
#define XTS_VTARGET __attribute__((target("aes,avx2,vaes"), optimize("O3", "unroll-loops")))

static inline int xts_cpu_has_vaes(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("vaes") && __builtin_cpu_supports("avx2");
}

XTS_VTARGET static inline void xts_sector_vaes(const xts_sched *s, uint64_t n, const uint8_t *src, uint8_t *dst, size_t len, int enc) {
  /* Round keys are read from the guarded schedule pages, not copied to the stack. */
  const __m256i *k = enc ? s->vek1 : s->vdk1;
  __m128i t = xts_tweak(s, n);

  for (size_t off = 0; off < len; off += 128) {
    __m256i tw[4], b[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      __m128i lo = t;
      __m128i hi = xts_double(t);
      t = xts_double(hi);
      tw[i] = _mm256_set_m128i(hi, lo);
      b[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + off + 32 * i)), tw[i]);
      b[i] = _mm256_xor_si256(b[i], k[0]);
    }
    if (enc) {
#pragma GCC unroll 13
      for (int r = 1; r < 14; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) b[i] = _mm256_aesenc_epi128(b[i], k[r]);
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) b[i] = _mm256_aesenclast_epi128(b[i], k[14]);
    } else {
#pragma GCC unroll 13
      for (int r = 1; r < 14; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) b[i] = _mm256_aesdec_epi128(b[i], k[r]);
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) b[i] = _mm256_aesdeclast_epi128(b[i], k[14]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)(dst + off + 32 * i), _mm256_xor_si256(b[i], tw[i]));
  }
}

#endif
