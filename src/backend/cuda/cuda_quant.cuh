/*
 * cuda_quant.cuh — device-side unpacking of every weight type the CUDA
 * matmul takes, 32 elements at a time (a "chunk": a legacy block, or one
 * 32-element sub-block of a K-quant super-block). The bit layouts are
 * src/tensor/dtype.h's (ggml's); the float operations follow the CPU
 * reference (src/tensor/quant_legacy.c, quant_k.c) in order.
 *
 *   chunk_load<T>(row, c, out): out[0..32) = elements 32c..32c+31 of a row
 *   of type T starting at `row` (device memory).
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_QUANT_CUH
#define LARDER_BACKEND_CUDA_CUDA_QUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda_internal.h"

__device__ __forceinline__ float cq_f16(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | p[1] << 8)));
}
__host__ __device__ __forceinline__ float cq_h(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* 8 16-bit floats of one 16-byte word (element 2k in the low half of
 * w[k]) to out[0..8). */
__device__ __forceinline__ void cq_f16x8(uint4 v, float *out) {
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 f = __half22float2(*(const __half2 *)&w[k]);
        out[2 * k] = f.x, out[2 * k + 1] = f.y;
    }
}
__device__ __forceinline__ void cq_bf16x8(uint4 v, float *out) {
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        out[2 * k] = __uint_as_float(w[k] << 16);
        out[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
}

/* 6-bit scale and min j of a Q4_K / Q5_K scales[12] (q4k_scale_min). */
__host__ __device__ __forceinline__ void cq_q4k_scale_min(const uint8_t *s, int j, float *sc, float *m) {
    if (j < 4) {
        *sc = (float)(s[j] & 63);
        *m = (float)(s[j + 4] & 63);
    } else {
        *sc = (float)((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4);
        *m = (float)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

template <int T> struct chunk_traits;
/* bytes of the block holding chunk c, and chunks per block */
template <> struct chunk_traits<TYPE_F32> { static const int bytes = 128, per = 1; };
template <> struct chunk_traits<TYPE_F16> { static const int bytes = 64, per = 1; };
template <> struct chunk_traits<TYPE_BF16> { static const int bytes = 64, per = 1; };
template <> struct chunk_traits<TYPE_Q4_0> { static const int bytes = 18, per = 1; };
template <> struct chunk_traits<TYPE_Q4_1> { static const int bytes = 20, per = 1; };
template <> struct chunk_traits<TYPE_Q5_0> { static const int bytes = 22, per = 1; };
template <> struct chunk_traits<TYPE_Q5_1> { static const int bytes = 24, per = 1; };
template <> struct chunk_traits<TYPE_Q8_0> { static const int bytes = 34, per = 1; };
template <> struct chunk_traits<TYPE_Q2_K> { static const int bytes = 84, per = 8; };
template <> struct chunk_traits<TYPE_Q3_K> { static const int bytes = 110, per = 8; };
template <> struct chunk_traits<TYPE_Q4_K> { static const int bytes = 144, per = 8; };
template <> struct chunk_traits<TYPE_Q5_K> { static const int bytes = 176, per = 8; };
template <> struct chunk_traits<TYPE_Q6_K> { static const int bytes = 210, per = 8; };

template <int T> __device__ __forceinline__ void chunk_load(const uint8_t *row, int64_t c, float *out);

template <> __device__ __forceinline__ void chunk_load<TYPE_F32>(const uint8_t *row, int64_t c, float *out) {
    const float4 *p = (const float4 *)(row + c * 128);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float4 v = __ldg(p + i);
        out[4 * i] = v.x, out[4 * i + 1] = v.y, out[4 * i + 2] = v.z, out[4 * i + 3] = v.w;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_F16>(const uint8_t *row, int64_t c, float *out) {
    const uint4 *p = (const uint4 *)(row + c * 64);
#pragma unroll
    for (int i = 0; i < 4; i++) cq_f16x8(__ldg(p + i), out + 8 * i);
}

template <> __device__ __forceinline__ void chunk_load<TYPE_BF16>(const uint8_t *row, int64_t c, float *out) {
    const uint4 *p = (const uint4 *)(row + c * 64);
#pragma unroll
    for (int i = 0; i < 4; i++) cq_bf16x8(__ldg(p + i), out + 8 * i);
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q4_0>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + c * 18;
    float d = cq_f16(b);
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint8_t q = b[2 + i];
        out[i] = (float)((q & 0x0F) - 8) * d;
        out[i + 16] = (float)((q >> 4) - 8) * d;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q4_1>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + c * 20;
    float d = cq_f16(b), m = cq_f16(b + 2);
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint8_t q = b[4 + i];
        out[i] = (float)(q & 0x0F) * d + m;
        out[i + 16] = (float)(q >> 4) * d + m;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q5_0>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + c * 22;
    float d = cq_f16(b);
    uint32_t qh = b[2] | b[3] << 8 | b[4] << 16 | (uint32_t)b[5] << 24;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint8_t q = b[6 + i];
        out[i] = (float)((int)((q & 0x0F) | ((qh >> i) & 1) << 4) - 16) * d; /* int: qh is unsigned */
        out[i + 16] = (float)((int)((q >> 4) | ((qh >> (i + 16)) & 1) << 4) - 16) * d;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q5_1>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + c * 24;
    float d = cq_f16(b), m = cq_f16(b + 2);
    uint32_t qh = b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint8_t q = b[8 + i];
        out[i] = (float)((q & 0x0F) | ((qh >> i) & 1) << 4) * d + m;
        out[i + 16] = (float)((q >> 4) | ((qh >> (i + 16)) & 1) << 4) * d + m;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q8_0>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + c * 34;
    float d = cq_f16(b);
    const uint16_t *q2 = (const uint16_t *)(b + 2); /* blocks are 2-byte aligned */
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint16_t v = q2[i];
        out[2 * i] = (float)(int8_t)(v & 0xff) * d;
        out[2 * i + 1] = (float)(int8_t)(v >> 8) * d;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q2_K>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + (c >> 3) * 84;
    const int j = (int)(c & 7);
    const float d = cq_f16(b + 80), dmin = cq_f16(b + 82);
    const uint8_t *qs = b + 16 + 32 * (j / 4);
    const int sh = 2 * (j % 4);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        uint8_t sc = b[2 * j + h];
        float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
#pragma unroll
        for (int i = 0; i < 16; i++) out[16 * h + i] = dl * (float)((qs[16 * h + i] >> sh) & 3) - ml;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q3_K>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + (c >> 3) * 110;
    const int j = (int)(c & 7);
    const float d = cq_f16(b + 108);
    const uint8_t *hm = b, *qs = b + 32 + 32 * (j / 4), *sc = b + 96;
    const int sh = 2 * (j % 4);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int s = 2 * j + h;
        int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
        int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        float dl = d * (float)((low | high << 4) - 32);
#pragma unroll
        for (int i = 0; i < 16; i++) {
            int e = 16 * h + i;
            int q = ((qs[e] >> sh) & 3) - (((hm[e] >> j) & 1) ? 0 : 4);
            out[e] = dl * (float)q;
        }
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q4_K>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + (c >> 3) * 144;
    const int j = (int)(c & 7);
    const float d = cq_f16(b), dmin = cq_f16(b + 2);
    float sc, m;
    cq_q4k_scale_min(b + 4, j, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    const uint4 *qs = (const uint4 *)(b + 16 + 32 * (j / 2)); /* 16-byte aligned: 144-byte blocks */
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 v = __ldg(qs + k);
        uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int by = 0; by < 4; by++)
                out[16 * k + 4 * u + by] = dl * (float)((w[u] >> (8 * by + sh)) & 0x0F) - ml;
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q5_K>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + (c >> 3) * 176;
    const int j = (int)(c & 7);
    const float d = cq_f16(b), dmin = cq_f16(b + 2);
    float sc, m;
    cq_q4k_scale_min(b + 4, j, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    const uint4 *qh = (const uint4 *)(b + 16);                 /* 176 = 11 x 16 */
    const uint4 *qs = (const uint4 *)(b + 48 + 32 * (j / 2));
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 v = __ldg(qs + k), h = __ldg(qh + k);
        uint32_t w[4] = {v.x, v.y, v.z, v.w}, hw[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int by = 0; by < 4; by++) {
                int q = ((w[u] >> (8 * by + sh)) & 0x0F) | ((hw[u] >> (8 * by + j)) & 1) << 4;
                out[16 * k + 4 * u + by] = dl * (float)q - ml;
            }
    }
}

template <> __device__ __forceinline__ void chunk_load<TYPE_Q6_K>(const uint8_t *row, int64_t c, float *out) {
    const uint8_t *b = row + (c >> 3) * 210;
    const int j = (int)(c & 7);
    const int h = j / 4, g = j % 4;
    const float d = cq_f16(b + 208);
    const uint16_t *ql = (const uint16_t *)(b + 64 * h + 32 * (g & 1)); /* 2-byte aligned */
    const uint16_t *qh = (const uint16_t *)(b + 128 + 32 * h);
    const int8_t *scales = (const int8_t *)(b + 192);
    const int lsh = g < 2 ? 0 : 4, hsh = 2 * g;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const float dl = d * (float)scales[2 * j + half];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t l2 = ql[8 * half + i], h2 = qh[8 * half + i];
#pragma unroll
            for (int by = 0; by < 2; by++) {
                int q = (((l2 >> (8 * by + lsh)) & 0x0F) | ((h2 >> (8 * by + hsh)) & 3) << 4) - 32;
                out[16 * half + 2 * i + by] = dl * (float)q;
            }
        }
    }
}

/* Calls F.template operator()<T>() for the weight type (device code
 * instantiated per type); returns false for a type without kernels. */
template <typename F> static bool cq_dispatch(uint32_t type, F &&f) {
    switch (type) {
    case TYPE_F32: f.template operator()<TYPE_F32>(); return true;
    case TYPE_F16: f.template operator()<TYPE_F16>(); return true;
    case TYPE_BF16: f.template operator()<TYPE_BF16>(); return true;
    case TYPE_Q4_0: f.template operator()<TYPE_Q4_0>(); return true;
    case TYPE_Q4_1: f.template operator()<TYPE_Q4_1>(); return true;
    case TYPE_Q5_0: f.template operator()<TYPE_Q5_0>(); return true;
    case TYPE_Q5_1: f.template operator()<TYPE_Q5_1>(); return true;
    case TYPE_Q8_0: f.template operator()<TYPE_Q8_0>(); return true;
    case TYPE_Q2_K: f.template operator()<TYPE_Q2_K>(); return true;
    case TYPE_Q3_K: f.template operator()<TYPE_Q3_K>(); return true;
    case TYPE_Q4_K: f.template operator()<TYPE_Q4_K>(); return true;
    case TYPE_Q5_K: f.template operator()<TYPE_Q5_K>(); return true;
    case TYPE_Q6_K: f.template operator()<TYPE_Q6_K>(); return true;
    default: return false;
    }
}

#endif
