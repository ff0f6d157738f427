/*
 * cuda_quant_q8.cuh — the 8-bit GEMV's weight side: a quantized weight's
 * 32-element chunk (as in cuda_quant.cuh) unpacked to its integer quants,
 * four per 32-bit word, and multiplied with the activation's int8 quants
 * (ACT_LAYOUT_Q8, cuda_act_round.cuh) by dp4a, the scales applied once per
 * chunk. The integer sums are the CPU's (src/tensor/quant_legacy.c,
 * quant_k.c: Σ q_w·q_a exactly); only where the scales multiply them does
 * the float order differ (per chunk here, per block or super-block there).
 *
 *   chunk_q8<T>(row, c, &w): w.q[i] holds elements 4i..4i+3 of chunk c as
 *     bytes (unsigned 0..63 for the offset types, int8 for Q8_0), with
 *     the chunk's integer scales and float factors;
 *   chunk_q8_dot<T>(w, xq, meta): Σ_e W[e]·x̃[e] over the chunk for one
 *     token's 32 quants xq (8 words) and its block's meta.
 *
 * For every type, with s_h = Σ of the activation's quants over half h
 * (16 elements) and dot_h the dp4a sum over half h:
 *   isum = sc0·(dot_0 + BIAS·s_0) + sc1·(dot_1 + BIAS·s_1)
 *   summ = mn0·s_0 + mn1·s_1                        (types with mins)
 *   y    = (d_a·d)·isum − (d_a·dmin)·summ  [+ m·s_a for Q4_1 / Q5_1]
 * BIAS is the type's offset (Q4_0 −8, Q5_0 −16, Q3_K −4, Q6_K −32, else 0).
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_QUANT_Q8_CUH
#define LARDER_BACKEND_CUDA_CUDA_QUANT_Q8_CUH

#include "backend/cuda/cuda_act_round.cuh"
#include "backend/cuda/cuda_quant.cuh"

struct q8_chunk {
    int q[8];            /* elements 4i..4i+3 in word i, byte k = element 4i+k */
    int sc0, sc1;        /* integer scales of the two 16-element halves */
    int mn0, mn1;        /* integer mins of the halves (Q2_K, Q4_K, Q5_K) */
    float d, dmin;       /* float factors; dmin is Q4_1/Q5_1's m */
};

template <int T> struct q8_traits { static const int bias = 0, mins = 0, offset_s = 0; };
template <> struct q8_traits<TYPE_Q4_0> { static const int bias = -8, mins = 0, offset_s = 0; };
template <> struct q8_traits<TYPE_Q5_0> { static const int bias = -16, mins = 0, offset_s = 0; };
template <> struct q8_traits<TYPE_Q4_1> { static const int bias = 0, mins = 0, offset_s = 1; };
template <> struct q8_traits<TYPE_Q5_1> { static const int bias = 0, mins = 0, offset_s = 1; };
template <> struct q8_traits<TYPE_Q2_K> { static const int bias = 0, mins = 1, offset_s = 0; };
template <> struct q8_traits<TYPE_Q3_K> { static const int bias = -4, mins = 0, offset_s = 0; };
template <> struct q8_traits<TYPE_Q4_K> { static const int bias = 0, mins = 1, offset_s = 0; };
template <> struct q8_traits<TYPE_Q5_K> { static const int bias = 0, mins = 1, offset_s = 0; };
template <> struct q8_traits<TYPE_Q6_K> { static const int bias = -32, mins = 0, offset_s = 0; };

/* Whether T takes the 8-bit path (every quantized type cuda_quant.cuh has). */
template <int T> struct q8_supported { static const bool value = T != TYPE_F32 && T != TYPE_F16 && T != TYPE_BF16; };

/* A 32-bit word at a 2-byte aligned address (blocks of 18, 22, 34, 110, 210 bytes). */
__device__ __forceinline__ uint32_t q8_ld2(const uint8_t *p) {
    const uint16_t *h = (const uint16_t *)p;
    return (uint32_t)__ldg(h) | (uint32_t)__ldg(h + 1) << 16;
}
__device__ __forceinline__ uint32_t q8_ld4(const uint8_t *p) { return __ldg((const uint32_t *)p); }

/* Bits 0..3 of v to bit 4 of bytes 0..3 (a 5th quant bit). */
__device__ __forceinline__ uint32_t q8_spread4(uint32_t v) {
    return (v & 1u) << 4 | (v & 2u) << 11 | (v & 4u) << 18 | (v & 8u) << 25;
}

template <int T> __device__ __forceinline__ void chunk_q8(const uint8_t *row, int64_t c, q8_chunk &w);

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q4_0>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + c * 18;
    w.d = cq_f16(b), w.dmin = 0.0f, w.sc0 = w.sc1 = 1, w.mn0 = w.mn1 = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t v = q8_ld2(b + 2 + 4 * i);
        w.q[i] = (int)(v & 0x0F0F0F0Fu), w.q[4 + i] = (int)(v >> 4 & 0x0F0F0F0Fu);
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q4_1>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + c * 20;
    w.d = cq_f16(b), w.dmin = cq_f16(b + 2), w.sc0 = w.sc1 = 1, w.mn0 = w.mn1 = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t v = q8_ld4(b + 4 + 4 * i);
        w.q[i] = (int)(v & 0x0F0F0F0Fu), w.q[4 + i] = (int)(v >> 4 & 0x0F0F0F0Fu);
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q5_0>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + c * 22;
    w.d = cq_f16(b), w.dmin = 0.0f, w.sc0 = w.sc1 = 1, w.mn0 = w.mn1 = 0;
    const uint32_t qh = q8_ld2(b + 2); /* bit e: element e's 5th bit */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t v = q8_ld2(b + 6 + 4 * i);
        w.q[i] = (int)((v & 0x0F0F0F0Fu) | q8_spread4(qh >> (4 * i)));
        w.q[4 + i] = (int)((v >> 4 & 0x0F0F0F0Fu) | q8_spread4(qh >> (16 + 4 * i)));
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q5_1>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + c * 24;
    w.d = cq_f16(b), w.dmin = cq_f16(b + 2), w.sc0 = w.sc1 = 1, w.mn0 = w.mn1 = 0;
    const uint32_t qh = q8_ld4(b + 4);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t v = q8_ld4(b + 8 + 4 * i);
        w.q[i] = (int)((v & 0x0F0F0F0Fu) | q8_spread4(qh >> (4 * i)));
        w.q[4 + i] = (int)((v >> 4 & 0x0F0F0F0Fu) | q8_spread4(qh >> (16 + 4 * i)));
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q8_0>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + c * 34;
    w.d = cq_f16(b), w.dmin = 0.0f, w.sc0 = w.sc1 = 1, w.mn0 = w.mn1 = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) w.q[i] = (int)q8_ld2(b + 2 + 4 * i);
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q2_K>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + (c >> 3) * 84;
    const int j = (int)(c & 7);
    w.d = cq_f16(b + 80), w.dmin = cq_f16(b + 82);
    const uint8_t s0 = __ldg(b + 2 * j), s1 = __ldg(b + 2 * j + 1);
    w.sc0 = s0 & 0x0F, w.mn0 = s0 >> 4, w.sc1 = s1 & 0x0F, w.mn1 = s1 >> 4;
    const uint8_t *qs = b + 16 + 32 * (j / 4); /* 4-byte aligned: 84-byte blocks */
    const int sh = 2 * (j % 4);
#pragma unroll
    for (int i = 0; i < 8; i++) w.q[i] = (int)(q8_ld4(qs + 4 * i) >> sh & 0x03030303u);
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q3_K>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + (c >> 3) * 110;
    const int j = (int)(c & 7);
    w.d = cq_f16(b + 108), w.dmin = 0.0f, w.mn0 = w.mn1 = 0;
    const uint8_t *sc = b + 96;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int s = 2 * j + h;
        const int low = s < 8 ? __ldg(sc + s) & 0x0F : __ldg(sc + s - 8) >> 4;
        const int high = (__ldg(sc + 8 + s % 4) >> (2 * (s / 4))) & 3;
        (h ? w.sc1 : w.sc0) = (low | high << 4) - 32;
    }
    const uint8_t *hm = b, *qs = b + 32 + 32 * (j / 4);
    const int sh = 2 * (j % 4);
    /* q = low 2 bits + 4·(high bit) − 4 (BIAS): the CPU's q − (hbit ? 0 : 4) */
#pragma unroll
    for (int i = 0; i < 8; i++)
        w.q[i] = (int)((q8_ld2(qs + 4 * i) >> sh & 0x03030303u) | (q8_ld2(hm + 4 * i) >> j & 0x01010101u) << 2);
}

/* 6-bit scale and min j of a Q4_K / Q5_K scales[12], as integers. */
__device__ __forceinline__ void q8_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = __ldg(s + j) & 63, *m = __ldg(s + j + 4) & 63;
    } else {
        *sc = (__ldg(s + j + 4) & 0x0F) | (__ldg(s + j - 4) >> 6) << 4;
        *m = (__ldg(s + j + 4) >> 4) | (__ldg(s + j) >> 6) << 4;
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q4_K>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + (c >> 3) * 144;
    const int j = (int)(c & 7);
    w.d = cq_f16(b), w.dmin = cq_f16(b + 2);
    q8_q4k_scale_min(b + 4, j, &w.sc0, &w.mn0);
    w.sc1 = w.sc0, w.mn1 = w.mn0;
    const uint4 *qs = (const uint4 *)(b + 16 + 32 * (j / 2)); /* 16-byte aligned: 144-byte blocks */
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const uint4 v = __ldg(qs + k);
        w.q[4 * k + 0] = (int)(v.x >> sh & 0x0F0F0F0Fu), w.q[4 * k + 1] = (int)(v.y >> sh & 0x0F0F0F0Fu);
        w.q[4 * k + 2] = (int)(v.z >> sh & 0x0F0F0F0Fu), w.q[4 * k + 3] = (int)(v.w >> sh & 0x0F0F0F0Fu);
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q5_K>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + (c >> 3) * 176;
    const int j = (int)(c & 7);
    w.d = cq_f16(b), w.dmin = cq_f16(b + 2);
    q8_q4k_scale_min(b + 4, j, &w.sc0, &w.mn0);
    w.sc1 = w.sc0, w.mn1 = w.mn0;
    const uint4 *qh = (const uint4 *)(b + 16); /* 176 = 11 x 16 */
    const uint4 *qs = (const uint4 *)(b + 48 + 32 * (j / 2));
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const uint4 v = __ldg(qs + k), h = __ldg(qh + k);
        const uint32_t vw[4] = {v.x, v.y, v.z, v.w}, hw[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
        for (int u = 0; u < 4; u++) w.q[4 * k + u] = (int)((vw[u] >> sh & 0x0F0F0F0Fu) | (hw[u] >> j & 0x01010101u) << 4);
    }
}

template <> __device__ __forceinline__ void chunk_q8<TYPE_Q6_K>(const uint8_t *row, int64_t c, q8_chunk &w) {
    const uint8_t *b = row + (c >> 3) * 210;
    const int j = (int)(c & 7);
    const int h = j / 4, g = j % 4;
    w.d = cq_f16(b + 208), w.dmin = 0.0f, w.mn0 = w.mn1 = 0;
    w.sc0 = (int8_t)__ldg(b + 192 + 2 * j), w.sc1 = (int8_t)__ldg(b + 192 + 2 * j + 1);
    const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h;
    const int lsh = g < 2 ? 0 : 4, hsh = 2 * g;
#pragma unroll
    for (int i = 0; i < 8; i++)
        w.q[i] = (int)((q8_ld2(ql + 4 * i) >> lsh & 0x0F0F0F0Fu) | (q8_ld2(qh + 4 * i) >> hsh & 0x03030303u) << 4);
}

/* Σ_e W[e]·x̃[e] over the chunk, for one token: xq its 32 quants (8 words),
 * m its block's act_q8_meta (the formula: top of this file). */
template <int T>
__device__ __forceinline__ float chunk_q8_dot(const q8_chunk &w, const int xq[8], const act_q8_meta &m) {
    int dot0 = 0, dot1 = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) dot0 = __dp4a(w.q[i], xq[i], dot0);
#pragma unroll
    for (int i = 4; i < 8; i++) dot1 = __dp4a(w.q[i], xq[i], dot1);
    const int s0 = (int)(int16_t)(m.sum16 & 0xffff), s1 = m.sum16 >> 16;
    const int bias = q8_traits<T>::bias;
    const int isum = w.sc0 * (dot0 + bias * s0) + w.sc1 * (dot1 + bias * s1);
    float y = m.d * w.d * (float)isum;
    if (q8_traits<T>::mins) y -= m.d * w.dmin * (float)(w.mn0 * s0 + w.mn1 * s1);
    if (q8_traits<T>::offset_s) y += w.dmin * m.s;
    return y;
}

#endif
