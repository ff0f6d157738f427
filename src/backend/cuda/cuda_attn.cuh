/*
 * cuda_attn.cuh — what the two attention kernels share (cuda_attention.cu:
 * the KV store, the scalar attention kernel and the split-KV merge;
 * cuda_flash_attn.cu: the tensor-core attention kernel): the KV pool's
 * geometry, element access by KV type, the Hadamard rotation of rows in
 * shared memory, q's rounding to K's precision, and the attention launch's
 * arguments (attn_args). Compiled by nvcc only.
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_ATTN_CUH
#define LARDER_BACKEND_CUDA_CUDA_ATTN_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_quant.cuh"

/* Hadamard chunk sizes (cpu_attention.c's kv_rotation_k / _v). */
static inline int32_t rot_k(uint32_t type, int32_t D) {
    if ((type != TYPE_Q8_0 && type != TYPE_Q4_0) || D % 64) return 0;
    int32_t n = 64;
    while (D % (2 * n) == 0) n *= 2;
    return n;
}
static inline int32_t rot_v(uint32_t type, int32_t D) { return (type != TYPE_Q8_0 && type != TYPE_Q4_0) || D % 64 ? 0 : 64; }

/* rows x D floats at buf (row stride ld) = H_n applied chunk by chunk (the
 * scale first, then log2(n) butterfly passes); every thread of the block
 * calls it. */
__device__ inline void fwht_rows(float *buf, int ld, int rows, int D, int n) {
    if (n == 0) return;
    const float scale = 1.0f / sqrtf((float)n);
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) buf[(e / D) * ld + e % D] *= scale;
    __syncthreads();
    const int hd = D / 2;
    for (int h = 1; h < n; h *= 2) {
        for (int p = threadIdx.x; p < rows * hd; p += blockDim.x) {
            int r = p / hd, q = p % hd;
            int j = (q / h) * 2 * h + q % h;
            float *v = buf + r * ld;
            float a = v[j], b = v[j + h];
            v[j] = a + b, v[j + h] = a - b;
        }
        __syncthreads();
    }
}

/* quant_round_clamp of src/tensor/quant_fit.h: round to nearest even, clamped. */
__device__ __forceinline__ int round_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo - 0.5f)) return lo;
    if (v >= (float)hi + 0.5f) return hi;
    return __float2int_rn(v);
}

__device__ __forceinline__ uint16_t to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ uint16_t to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }

/* Element d of a KV row of `type`. */
__device__ __forceinline__ float kv_elem(uint32_t type, const uint8_t *row, int d) {
    switch (type) {
    case TYPE_F16: return cq_h(((const uint16_t *)row)[d]);
    case TYPE_F32: return ((const float *)row)[d];
    case TYPE_BF16: return __uint_as_float((uint32_t)((const uint16_t *)row)[d] << 16);
    case TYPE_Q8_0: {
        const uint8_t *b = row + 34 * (d / 32);
        return (float)(int8_t)b[2 + d % 32] * cq_f16(b);
    }
    default: { /* q4_0 */
        const uint8_t *b = row + 18 * (d / 32);
        int i = d % 32;
        int q = i < 16 ? b[2 + i] & 0x0F : b[2 + i - 16] >> 4;
        return (float)(q - 8) * cq_f16(b);
    }
    }
}

/* The KV pool as the kernels see it: page p's block (layer, K|V, head) at
 * base + p·stride_bytes + ((layer·2 + kv)·Hkv + head)·head_bytes, P rows of
 * row_bytes each. */
struct kv_geom {
    uint8_t *base;
    size_t stride_bytes, head_bytes, row_bytes;
    int32_t P, D, Hkv;
    uint32_t type;
};

__device__ __forceinline__ uint8_t *kv_block(const kv_geom &g, uint32_t page, int32_t layer, int kv, int32_t head) {
    size_t block = ((size_t)layer * 2 + (size_t)kv) * (size_t)g.Hkv + (size_t)head;
    return g.base + (size_t)page * g.stride_bytes + block * g.head_bytes;
}

/* One attention launch (both kernels): a block per (tile, KV head, split).
 * Tile i's rows r = (token r / group, query head r % group of the KV head's
 * group), at most R of them. */
struct attn_args {
    kv_geom g;
    int32_t layer, n_heads, group, R; /* R: rows per tile (capacity) */
    float scale;
    const float *q;
    float *out;
    const int32_t *pos, *seq, *keep, *window;
    const uint32_t *page_table;
    int32_t max_pages;
    const cuda_attn_tile *tiles;
    int32_t n_split, split_keys;
    float *part;   /* n_split > 1: (tile, kv head, split, row) x (2 + D): max, sum, output */
    int rk, rv;
};

/* Rounds rows x D of q (stride D) to what a dot product with K of `type` sees. */
__device__ inline void round_q(uint32_t type, float *q, int rows, int D) {
    if (type == TYPE_F16) {
        for (int e = threadIdx.x; e < rows * D; e += blockDim.x) q[e] = __half2float(__float2half_rn(q[e]));
    } else if (type == TYPE_BF16) {
        for (int e = threadIdx.x; e < rows * D; e += blockDim.x) q[e] = __uint_as_float((uint32_t)to_bf16(q[e]) << 16);
    } else if (type == TYPE_Q8_0 || type == TYPE_Q4_0) { /* q8_0 activation: id = 127 / amax */
        for (int p = threadIdx.x; p < rows * (D / 32); p += blockDim.x) {
            float *x = q + p * 32;
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
            float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            float d = __half2float(__float2half_rn(amax / 127.0f));
            for (int i = 0; i < 32; i++) x[i] = (float)round_clamp(__fmul_rn(x[i], id), -127, 127) * d;
        }
    }
    __syncthreads();
}

#endif
