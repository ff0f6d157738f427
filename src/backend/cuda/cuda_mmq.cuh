/*
 * cuda_mmq.cuh — what cuda_mmq.cu's kernel and its host-side check
 * (tests/cuda/cuda_mmq_unpack_check.cu) share: the weight types' step
 * layout and the unpacking of a row's raw 256-element step to int8 quants
 * plus the row's scale record (host and device code).
 *
 *   mq_unpack<T>(s, c, q, rec): chunk c (0..7, elements 32c..32c+31) of the
 *   step whose raw bytes start at s: q = its 32 quants as int8 (4 a word,
 *   element order), and the scale record's entries for that chunk (below).
 *   The value of element e of the chunk is, per kind:
 *     MQ_LEGACY      d_c · q_e                      (Q4_0, Q5_0, Q8_0)
 *     MQ_LEGACY_MIN  d_c · q_e + m_c                (Q4_1, Q5_1)
 *     MQ_K_MIN       d · sc_c · q_e − dmin · m_c    (Q4_K, Q5_K)
 *     MQ_K16         d · sc_s · q_e, s = 2c + e/16  (Q3_K, Q6_K)
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_MMQ_CUH
#define LARDER_BACKEND_CUDA_CUDA_MMQ_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda_quant.cuh"

#define MQ_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define MQ_UNROLL _Pragma("unroll")
#else
#define MQ_UNROLL /* the host compiler knows no unroll pragma */
#endif
#define MQ_BK 256                  /* K elements per step */
#define MQ_XREC 320                /* bytes of one (token, step) activation record (cuda_mmq.cu) */
#define MQ_SREC 41                 /* 32-bit words of a row's scale record (odd: fewer bank conflicts) */

/* A row's scale record for the current step (shared memory, 32-bit words):
 *   [0, 16)   int: sub-block scales (K-quants: sc_j, 8 or 16 of them)
 *   [16, 32)  f32: K-quants [16] = d, [17] = dmin; legacy [16 + b] = d of
 *             block b, [24 + b] = m of block b (Q4_1/Q5_1)
 *   [32, 40)  f16 pairs: Q4_K/Q5_K m_0..m_7, 64·m_0..64·m_7 (the min MMA's B) */

enum { MQ_LEGACY, MQ_LEGACY_MIN, MQ_K_MIN, MQ_K16 };

template <int T> struct mq_traits;
template <> struct mq_traits<TYPE_Q4_0> { static const int kind = MQ_LEGACY, slice = 18 * 8, block = 18; };
template <> struct mq_traits<TYPE_Q4_1> { static const int kind = MQ_LEGACY_MIN, slice = 20 * 8, block = 20; };
template <> struct mq_traits<TYPE_Q5_0> { static const int kind = MQ_LEGACY, slice = 22 * 8, block = 22; };
template <> struct mq_traits<TYPE_Q5_1> { static const int kind = MQ_LEGACY_MIN, slice = 24 * 8, block = 24; };
template <> struct mq_traits<TYPE_Q8_0> { static const int kind = MQ_LEGACY, slice = 34 * 8, block = 34; };
template <> struct mq_traits<TYPE_Q3_K> { static const int kind = MQ_K16, slice = 110, block = 110; };
template <> struct mq_traits<TYPE_Q4_K> { static const int kind = MQ_K_MIN, slice = 144, block = 144; };
template <> struct mq_traits<TYPE_Q5_K> { static const int kind = MQ_K_MIN, slice = 176, block = 176; };
template <> struct mq_traits<TYPE_Q6_K> { static const int kind = MQ_K16, slice = 210, block = 210; };

/* raw bytes of a row's step in shared memory: the slice plus up to 15 bytes of alignment */
template <int T> struct mq_slot { static const int bytes = (mq_traits<T>::slice + 30) / 16 * 16; };

/* bytewise a - b (no borrow between bytes) */
MQ_HD uint32_t mq_vsub4(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
    return __vsub4(a, b);
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= ((((a >> (8 * i)) & 0xff) - ((b >> (8 * i)) & 0xff)) & 0xff) << (8 * i);
    return r;
#endif
}

/* ---- unpacking: chunk c (0..7, 32 elements) of a row's raw step at s
 * (shared memory) to 32 int8 quants (8 words, element order) and the scale
 * record's entries for that chunk. */

MQ_HD uint32_t mq_u16(const uint8_t *p) { return *(const uint16_t *)p; }
MQ_HD uint32_t mq_u32a2(const uint8_t *p) { return mq_u16(p) | mq_u16(p + 2) << 16; } /* 2-byte aligned */
/* out[0..N) = the N little-endian words at p (any alignment), from N + 1
 * aligned 4-byte loads (may read up to 3 bytes past p + 4N: the raw slots
 * of shared memory are followed by more shared memory) */
template <int N> MQ_HD void mq_words(const uint8_t *p, uint32_t *out) {
    const int sh = (int)((uintptr_t)p & 3) * 8;
    const uint32_t *w = (const uint32_t *)(p - ((uintptr_t)p & 3));
    uint32_t lo = w[0];
    MQ_UNROLL
    for (int i = 0; i < N; i++) {
        const uint32_t hi = w[i + 1];
#ifdef __CUDA_ARCH__
        out[i] = __funnelshift_r(lo, hi, sh);
#else
        out[i] = sh ? (lo >> sh) | (hi << (32 - sh)) : lo;
#endif
        lo = hi;
    }
}
/* bits 0..3 of x to bit 4 of bytes 0..3 */
MQ_HD uint32_t mq_spread4(uint32_t x) {
    return ((x & 1) | (x & 2) << 7 | (x & 4) << 14 | (x & 8) << 21) << 4;
}

template <int T> MQ_HD void mq_unpack(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec);

/* legacy blocks: 16 bytes of nibbles; element i < 16 low nibble of byte i, else high nibble of byte i - 16 */
MQ_HD void mq_nibbles(const uint8_t *qs, uint32_t qh, int bias, uint32_t q[8]) {
    uint32_t ws[4];
    mq_words<4>(qs, ws);
MQ_UNROLL
    for (int u = 0; u < 4; u++) {
        const uint32_t w = ws[u];
        uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
        lo |= mq_spread4((qh >> (4 * u)) & 15);
        hi |= mq_spread4((qh >> (16 + 4 * u)) & 15);
        q[u] = mq_vsub4(lo, bias * 0x01010101u);
        q[4 + u] = mq_vsub4(hi, bias * 0x01010101u);
    }
}

template <> MQ_HD void mq_unpack<TYPE_Q4_0>(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec) {
    const uint8_t *b = s + 18 * c;
    mq_nibbles(b + 2, 0, 8, q);
    ((float *)rec)[16 + c] = cq_h((uint16_t)mq_u16(b));
}
template <> MQ_HD void mq_unpack<TYPE_Q4_1>(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec) {
    const uint8_t *b = s + 20 * c;
    mq_nibbles(b + 4, 0, 0, q);
    ((float *)rec)[16 + c] = cq_h((uint16_t)mq_u16(b));
    ((float *)rec)[24 + c] = cq_h((uint16_t)mq_u16(b + 2));
}
template <> MQ_HD void mq_unpack<TYPE_Q5_0>(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec) {
    const uint8_t *b = s + 22 * c;
    mq_nibbles(b + 6, mq_u32a2(b + 2), 16, q);
    ((float *)rec)[16 + c] = cq_h((uint16_t)mq_u16(b));
}
template <> MQ_HD void mq_unpack<TYPE_Q5_1>(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec) {
    const uint8_t *b = s + 24 * c;
    mq_nibbles(b + 8, mq_u32a2(b + 4), 0, q);
    ((float *)rec)[16 + c] = cq_h((uint16_t)mq_u16(b));
    ((float *)rec)[24 + c] = cq_h((uint16_t)mq_u16(b + 2));
}
template <> MQ_HD void mq_unpack<TYPE_Q8_0>(const uint8_t *s, int c, uint32_t q[8], uint32_t *rec) {
    const uint8_t *b = s + 34 * c;
    mq_words<8>(b + 2, q);
    ((float *)rec)[16 + c] = cq_h((uint16_t)mq_u16(b));
}

/* The scale record of sub-block j of a Q4_K / Q5_K super-block b (same
 * header: d, dmin, 12 packed scale/min bytes): its 6-bit scale, its min
 * (and 64 x min) in f16, and at j 0 the super-block's d and dmin. */
MQ_HD void mq_k_min_rec(const uint8_t *b, int j, uint32_t *rec) {
    float sc, m;
    cq_q4k_scale_min(b + 4, j, &sc, &m);
    rec[j] = (uint32_t)(int)sc;
    __half *mh = (__half *)(rec + 32);
    mh[j] = __float2half_rn(m), mh[8 + j] = __float2half_rn(64.0f * m);
    if (j == 0) ((float *)rec)[16] = cq_h((uint16_t)mq_u16(b)), ((float *)rec)[17] = cq_h((uint16_t)mq_u16(b + 2));
}

template <> MQ_HD void mq_unpack<TYPE_Q4_K>(const uint8_t *b, int j, uint32_t q[8], uint32_t *rec) {
    const uint4 *qs = (const uint4 *)(b + 16 + 32 * (j / 2)); /* Q4_K rows are 16-byte aligned (144 = 9 x 16) */
    const int sh = 4 * (j & 1);
MQ_UNROLL
    for (int k = 0; k < 2; k++) {
        const uint4 v = qs[k];
        q[4 * k] = (v.x >> sh) & 0x0F0F0F0Fu, q[4 * k + 1] = (v.y >> sh) & 0x0F0F0F0Fu;
        q[4 * k + 2] = (v.z >> sh) & 0x0F0F0F0Fu, q[4 * k + 3] = (v.w >> sh) & 0x0F0F0F0Fu;
    }
    mq_k_min_rec(b, j, rec);
}

template <> MQ_HD void mq_unpack<TYPE_Q5_K>(const uint8_t *b, int j, uint32_t q[8], uint32_t *rec) {
    const uint4 *qh = (const uint4 *)(b + 16); /* 176 = 11 x 16 */
    const uint4 *qs = (const uint4 *)(b + 48 + 32 * (j / 2));
    const int sh = 4 * (j & 1);
MQ_UNROLL
    for (int k = 0; k < 2; k++) {
        const uint4 v = qs[k], h = qh[k];
        const uint32_t w[4] = {v.x, v.y, v.z, v.w}, hw[4] = {h.x, h.y, h.z, h.w};
MQ_UNROLL
        for (int u = 0; u < 4; u++) q[4 * k + u] = ((w[u] >> sh) & 0x0F0F0F0Fu) | ((hw[u] >> j) & 0x01010101u) << 4;
    }
    mq_k_min_rec(b, j, rec);
}

template <> MQ_HD void mq_unpack<TYPE_Q6_K>(const uint8_t *b, int j, uint32_t q[8], uint32_t *rec) {
    const int h = j / 4, g = j % 4;
    const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h; /* 2-byte aligned */
    const int lsh = g < 2 ? 0 : 4, hsh = 2 * g;
    uint32_t lw[8], hw[8];
    mq_words<8>(ql, lw), mq_words<8>(qh, hw);
MQ_UNROLL
    for (int u = 0; u < 8; u++) {
        const uint32_t l = (lw[u] >> lsh) & 0x0F0F0F0Fu, hb = (hw[u] >> hsh) & 0x03030303u;
        q[u] = mq_vsub4(l | hb << 4, 0x20202020u);
    }
    const int8_t *scales = (const int8_t *)(b + 192);
    rec[2 * j] = (uint32_t)(int)scales[2 * j], rec[2 * j + 1] = (uint32_t)(int)scales[2 * j + 1];
    if (j == 0) ((float *)rec)[16] = cq_h((uint16_t)mq_u16(b + 208));
}

template <> MQ_HD void mq_unpack<TYPE_Q3_K>(const uint8_t *b, int j, uint32_t q[8], uint32_t *rec) {
    const uint8_t *hm = b, *qs = b + 32 + 32 * (j / 4), *sc = b + 96; /* 2-byte aligned (110-byte blocks) */
    const int sh = 2 * (j % 4);
    uint32_t lw[8], hw[8];
    mq_words<8>(qs, lw), mq_words<8>(hm, hw);
MQ_UNROLL
    for (int u = 0; u < 8; u++) {
        const uint32_t l = (lw[u] >> sh) & 0x03030303u, hb = (hw[u] >> j) & 0x01010101u;
        q[u] = mq_vsub4(l | hb << 2, 0x04040404u); /* q - (bit ? 0 : 4) */
    }
MQ_UNROLL
    for (int hh = 0; hh < 2; hh++) {
        const int s = 2 * j + hh;
        const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
        const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        rec[s] = (uint32_t)((low | high << 4) - 32);
    }
    if (j == 0) ((float *)rec)[16] = cq_h((uint16_t)mq_u16(b + 108));
}

#endif
