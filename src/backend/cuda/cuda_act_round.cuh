/*
 * cuda_act_round.cuh — the device half of cuda_act_round.cu (activations
 * rounded as the CPU rounds them; the rules are documented there), shared
 * with the fused rmsnorm of cuda_backend.cu.
 *
 *   act_round_group<A, LAYOUT>(row, cols, g, out_off_bytes, out): one warp
 *   rounds elements [256g, 256g + 256) of one row for act type A and writes
 *   them in LAYOUT at out + out_off_bytes (the row's start in the output).
 *
 * ACT_LAYOUT_Q8 (the 8-bit GEMV's input, quantized act types only): a
 * token's region (il_stride·4 bytes, the same as ACT_LAYOUT_IL's, so one
 * scratch size serves both) holds int8 qs[ldq] (ldq = il_stride: cols
 * rounded up to 1024, zeros past cols are never read) then one
 * act_q8_meta per 32-element block at byte ldq + 16·block:
 *   d      the block's scale as the CPU multiplies it (Q8_0/Q8_1: the f16
 *          d; Q8_K: the f32 d of its 256-element block);
 *   s      Q8_1 only: f16(d_f32 · Σq), the offset term the CPU adds
 *          (quant_legacy.c), as f32; 0 for the others;
 *   sum16  Σq of the block's first 16 quants (low 16 bits, signed) and of
 *          its last 16 (high 16 bits): Q8_K's bsums, two per block.
 * The GEMV multiplies these integers with the weight's quants exactly
 * (dp4a) and applies the scales once per block, as the CPU's dot does.
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_ACT_ROUND_CUH
#define LARDER_BACKEND_CUDA_CUDA_ACT_ROUND_CUH

#include <cuda_fp16.h>

#include "backend/cuda/cuda_internal.h"

extern "C" {
#include "tensor/quant.h"
}

#define ACT_GROUP 256 /* elements per warp */
#define ACT_WARPS 4

struct act_q8_meta {
    float d, s;
    int32_t sum16; /* two int16: Σq of quants 0..15 (low), 16..31 (high) */
    int32_t unused;
};

/* Quantizes one lane's 8 elements (v) in place as act type A: v becomes
 * the integer quants (as floats) and *d_out the scale, so that the rounded
 * value is v·d; *d32_out is Q8_0/Q8_1's unrounded f32 d (for Q8_1's s).
 * Lanes 4j..4j+3 hold one 32-element block (Q8_0/Q8_1); the warp holds one
 * Q8_K block. */
template <int A> __device__ __forceinline__ void act_quant8(float v[8], int lane, float *d_out, float *d32_out);

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_0>(float v[8], int, float *d_out, float *d32_out) {
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float q = rintf(v[i] * id);
        v[i] = fminf(fmaxf(q, -127.0f), 127.0f);
    }
    *d_out = __half2float(__float2half_rn(d));
    *d32_out = d;
}

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_1>(float v[8], int lane, float *d_out, float *d32_out) {
    act_quant8<TYPE_Q8_0>(v, lane, d_out, d32_out);
}

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_K>(float v[8], int lane, float *d_out, float *d32_out) {
    /* the first element (lowest index) of largest magnitude, sign kept */
    float amax = 0.0f, mx = 0.0f;
    int idx = 0x7fffffff;
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (fabsf(v[i]) > amax) amax = fabsf(v[i]), mx = v[i], idx = lane * 8 + i;
    for (int o = 16; o > 0; o >>= 1) {
        float oa = __shfl_xor_sync(0xffffffffu, amax, o), om = __shfl_xor_sync(0xffffffffu, mx, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (oa > amax || (oa == amax && oi < idx)) amax = oa, mx = om, idx = oi;
    }
    *d32_out = 0.0f;
    if (amax == 0.0f || !isfinite(amax)) { /* NaNs never win the max, as on the CPU */
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = 0.0f;
        *d_out = 0.0f;
        return;
    }
    const float iscale = -127.0f / mx;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float q = rintf(iscale * v[i]);
        v[i] = fminf(fmaxf(q, -128.0f), 127.0f);
    }
    *d_out = 1.0f / iscale;
}

/* Rounds one lane's 8 elements (v) in place as act type A: q·d. */
template <int A> __device__ __forceinline__ void act_round8(float v[8], int lane) {
    if constexpr (A != TYPE_F32) {
        float d, d32;
        act_quant8<A>(v, lane, &d, &d32);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] *= d;
    }
}

/* The lane's 8 values v = elements [k0, k0 + 8) of a row of `cols`
 * (k0 = 256g + 8·lane; zeros past cols), rounded for act type A and
 * written in LAYOUT at out + out_off_bytes; every lane of the warp calls it. */
template <int A, int LAYOUT>
__device__ __forceinline__ void act_round_vals(float v[8], int64_t cols, int64_t k0, int64_t out_off_bytes,
                                               void *__restrict__ out) {
    const int lane = threadIdx.x & 31;
    if constexpr (LAYOUT == ACT_LAYOUT_Q8 && A != TYPE_F32) {
        /* cols is a multiple of 32 (256 for Q8_K): a lane's 8 are all in range or all out */
        float d, d32;
        act_quant8<A>(v, lane, &d, &d32);
        int qi[8], s8 = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) qi[i] = (int)v[i], s8 += qi[i];
        /* lanes 4j, 4j+1 hold the block's first 16 quants, 4j+2, 4j+3 the last 16 */
        const int s16 = s8 + __shfl_xor_sync(0xffffffffu, s8, 1);
        const int s16_hi = __shfl_xor_sync(0xffffffffu, s16, 2);
        if (k0 >= cols) return;
        int8_t *o = (int8_t *)((char *)out + out_off_bytes);
        uint2 packed;
        packed.x = (uint32_t)(qi[0] & 0xff) | (uint32_t)(qi[1] & 0xff) << 8 | (uint32_t)(qi[2] & 0xff) << 16 |
                   (uint32_t)(qi[3] & 0xff) << 24;
        packed.y = (uint32_t)(qi[4] & 0xff) | (uint32_t)(qi[5] & 0xff) << 8 | (uint32_t)(qi[6] & 0xff) << 16 |
                   (uint32_t)(qi[7] & 0xff) << 24;
        *(uint2 *)(o + k0) = packed;
        if ((lane & 3) == 0) {
            const int64_t ldq = (cols + 1023) / 1024 * 1024;
            act_q8_meta m;
            m.d = d;
            m.s = A == TYPE_Q8_1 ? __half2float(__float2half_rn(d32 * (float)(s16 + s16_hi))) : 0.0f;
            m.sum16 = (int32_t)((uint32_t)(s16 & 0xffff) | (uint32_t)s16_hi << 16);
            m.unused = 0;
            *(act_q8_meta *)(o + ldq + (k0 / 32) * 16) = m;
        }
        return;
    }
    act_round8<A>(v, lane);
    if constexpr (LAYOUT == ACT_LAYOUT_Q8) {
        return; /* never launched: float act types take ACT_LAYOUT_IL (cuda_gemv_layout) */
    } else if (LAYOUT == ACT_LAYOUT_IL) {
        float *o = (float *)((char *)out + out_off_bytes);
        const int64_t c = k0 / 32; /* this lane's 8 elements lie in chunk c, from e0 */
        const int e0 = (int)(k0 % 32);
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (k0 + i < cols) o[(c >> 5) * 1024 + (e0 + i) * 32 + (c & 31)] = v[i];
    } else {
        /* f16 rows: the caller's stride covers the zero padding up to a multiple of 32 */
        __half *o = (__half *)((char *)out + out_off_bytes);
        const int64_t ld = (cols + 31) / 32 * 32;
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (k0 + i < ld) o[k0 + i] = __float2half_rn(k0 + i < cols ? v[i] : 0.0f);
    }
}

template <int A, int LAYOUT>
__device__ __forceinline__ void act_round_group(const float *__restrict__ xr, int64_t cols, int64_t g,
                                                int64_t out_off_bytes, void *__restrict__ out) {
    const int64_t k0 = g * ACT_GROUP + (threadIdx.x & 31) * 8;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = k0 + i < cols ? xr[k0 + i] : 0.0f;
    act_round_vals<A, LAYOUT>(v, cols, k0, out_off_bytes, out);
}

#endif
