/*
 * cuda_act_round.cuh — the device half of cuda_act_round.cu (activations
 * rounded as the CPU rounds them; the rules are documented there), shared
 * with the fused rmsnorm of cuda_backend.cu.
 *
 *   act_round_group<A, LAYOUT>(row, cols, g, out_off_bytes, out): one warp
 *   rounds elements [256g, 256g + 256) of one row for act type A and writes
 *   them in LAYOUT at out + out_off_bytes (the row's start in the output).
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

/* Quantizes one lane's 8 elements (v) as act type A: q[i] the 8-bit quant
 * (as a float), *d32 the f32 scale the quants were computed with, *dq the
 * scale the product multiplies them by (Q8_0/Q8_1: d rounded to f16, as
 * the CPU stores it; Q8_K: d itself). Lanes 4j..4j+3 hold one 32-element
 * block (Q8_0/Q8_1); the warp holds one Q8_K block. An all-zero or
 * non-finite Q8_K block gives zero quants and scales. */
template <int A> __device__ __forceinline__ void act_quant8(const float v[8], int lane, float q[8], float *d32, float *dq);

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_0>(const float v[8], int, float q[8], float *d32,
                                                                  float *dq) {
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    *d32 = d;
    *dq = __half2float(__float2half_rn(d));
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float qi = rintf(v[i] * id);
        q[i] = fminf(fmaxf(qi, -127.0f), 127.0f);
    }
}

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_1>(const float v[8], int lane, float q[8], float *d32,
                                                                  float *dq) {
    act_quant8<TYPE_Q8_0>(v, lane, q, d32, dq);
}

template <> __device__ __forceinline__ void act_quant8<TYPE_Q8_K>(const float v[8], int lane, float q[8], float *d32,
                                                                  float *dq) {
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
    if (amax == 0.0f || !isfinite(amax)) { /* NaNs never win the max, as on the CPU */
#pragma unroll
        for (int i = 0; i < 8; i++) q[i] = 0.0f;
        *d32 = *dq = 0.0f;
        return;
    }
    const float iscale = -127.0f / mx;
    const float d = 1.0f / iscale;
    *d32 = *dq = d;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float qi = rintf(iscale * v[i]);
        q[i] = fminf(fmaxf(qi, -128.0f), 127.0f);
    }
}

/* Rounds one lane's 8 elements (v) in place as act type A: quant times
 * its scale (act_quant8). */
template <int A> __device__ __forceinline__ void act_round8(float v[8], int lane) {
    if constexpr (A != TYPE_F32) {
        float q[8], d32, dq;
        act_quant8<A>(v, lane, q, &d32, &dq);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = q[i] * dq;
    }
}

template <int A, int LAYOUT>
__device__ __forceinline__ void act_round_group(const float *__restrict__ xr, int64_t cols, int64_t g,
                                                int64_t out_off_bytes, void *__restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t k0 = g * ACT_GROUP + lane * 8;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = k0 + i < cols ? xr[k0 + i] : 0.0f;
    act_round8<A>(v, lane);
    if (LAYOUT == ACT_LAYOUT_IL) {
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

#endif
