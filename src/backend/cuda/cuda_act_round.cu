/*
 * cuda_act_round.cu — the activations a matmul multiplies, rounded as the
 * CPU backend rounds them.
 *
 * The CPU backend (like ggml's) quantizes x to 8 bits before every product
 * with a quantized weight, in the weight's "vec dot type"
 * (src/tensor/quant.h): Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K
 * for the K-quants; float weights see x as is. The rounding moves each
 * product by ~4e-3 relative, and on a many-layer model those moves add up
 * to differences the issue's tolerances do not allow between the devices.
 * So the GPU rounds x the same way, element for element, and multiplies
 * the rounded values q·d in floating point: the products then differ from
 * the CPU's integer sums only by the order of float additions.
 *
 *   Q8_0 / Q8_1 (blocks of 32): amax = max |x|, id = 127/amax (0 when
 *     amax = 0), q = rint(x·id) clamped to ±127, value = q · f16(amax/127)
 *     (the CPU keeps d as f16; Q8_1's extra s term is the same sum).
 *   Q8_K (blocks of 256): max = the first element of largest magnitude
 *     (sign kept), iscale = -127/max, q = rint(iscale·x) clamped to
 *     [-128, 127], value = q · (1/iscale); an all-zero or non-finite block
 *     is zeros (the CPU's memset). A NaN element rounds to the lowest
 *     quant in both (fmaxf and the CPU's clamp both send NaN to the bound).
 *
 * Two output layouts:
 *   ACT_LAYOUT_IL  f32, "interleaved" for the GEMV: element e of 32-element
 *     chunk c of token t sits at out[t·il_stride + (c/32)·1024 + e·32 + c%32]
 *     so the 32 lanes of a warp, which take 32 consecutive chunks, read 32
 *     consecutive floats per load (il_stride = ceil(cols/1024)·1024).
 *   ACT_LAYOUT_F16 f16 rows (t·ldk + k), zero from cols to ldk, for the
 *     tensor-core GEMM.
 * One warp rounds 256 consecutive elements of one token (8 per lane).
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_internal.h"

extern "C" {
#include "tensor/quant.h"
}

#define ACT_GROUP 256 /* elements per warp */
#define ACT_WARPS 4

/* Rounds one lane's 8 elements (v) in place as act type A. Lanes 4j..4j+3
 * hold one 32-element block (Q8_0/Q8_1); the warp holds one Q8_K block. */
template <int A> __device__ __forceinline__ void act_round8(float v[8], int lane);

template <> __device__ __forceinline__ void act_round8<TYPE_F32>(float *, int) {}

template <> __device__ __forceinline__ void act_round8<TYPE_Q8_0>(float v[8], int) {
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const float dh = __half2float(__float2half_rn(d));
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float q = rintf(v[i] * id);
        q = fminf(fmaxf(q, -127.0f), 127.0f);
        v[i] = q * dh;
    }
}

template <> __device__ __forceinline__ void act_round8<TYPE_Q8_1>(float v[8], int lane) {
    act_round8<TYPE_Q8_0>(v, lane);
}

template <> __device__ __forceinline__ void act_round8<TYPE_Q8_K>(float v[8], int lane) {
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
        for (int i = 0; i < 8; i++) v[i] = 0.0f;
        return;
    }
    const float iscale = -127.0f / mx;
    const float d = 1.0f / iscale;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float q = rintf(iscale * v[i]);
        q = fminf(fmaxf(q, -128.0f), 127.0f);
        v[i] = q * d;
    }
}

template <int A, int LAYOUT>
__global__ void __launch_bounds__(ACT_WARPS * 32)
    k_act_round(const float *__restrict__ x, int64_t n, int64_t cols, int64_t out_stride, void *__restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t groups = (cols + ACT_GROUP - 1) / ACT_GROUP;
    const int64_t gw = (int64_t)blockIdx.x * ACT_WARPS + (threadIdx.x >> 5);
    if (gw >= n * groups) return;
    const int64_t t = gw / groups, g = gw % groups;
    const int64_t k0 = g * ACT_GROUP + lane * 8;
    const float *xr = x + t * cols;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = k0 + i < cols ? xr[k0 + i] : 0.0f;
    act_round8<A>(v, lane);
    if (LAYOUT == ACT_LAYOUT_IL) {
        float *o = (float *)out + t * out_stride;
        const int64_t c = k0 / 32; /* this lane's 8 elements lie in chunk c, from e0 */
        const int e0 = (int)(k0 % 32);
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (k0 + i < cols) o[(c >> 5) * 1024 + (e0 + i) * 32 + (c & 31)] = v[i];
    } else {
        __half *o = (__half *)out + t * out_stride;
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (k0 + i < out_stride) o[k0 + i] = __float2half_rn(k0 + i < cols ? v[i] : 0.0f);
    }
}

int64_t cuda_act_il_stride(int64_t cols) { return (cols + 1023) / 1024 * 1024; }

int cuda_act_round(cuda_backend *c, uint32_t wtype, const float *x, int64_t n, int64_t cols, int layout,
                   int64_t out_stride, void *out, larder_error *err) {
    if (n <= 0) return 0;
    const uint32_t act = quant_vec_dot_type(wtype);
    const int64_t groups = (cols + ACT_GROUP - 1) / ACT_GROUP;
    const unsigned blocks = (unsigned)((n * groups + ACT_WARPS - 1) / ACT_WARPS);
    const dim3 th(ACT_WARPS * 32);
    if (act != TYPE_F32 && cols % 32)
        return error_set(err, ERR_INVALID, "matmul: %lld columns of a quantized type", (long long)cols);
#define ACT_LAUNCH(A)                                                                                                  \
    do {                                                                                                               \
        if (layout == ACT_LAYOUT_IL)                                                                                   \
            k_act_round<A, ACT_LAYOUT_IL><<<blocks, th, 0, c->stream>>>(x, n, cols, out_stride, out);                  \
        else                                                                                                           \
            k_act_round<A, ACT_LAYOUT_F16><<<blocks, th, 0, c->stream>>>(x, n, cols, out_stride, out);                 \
    } while (0)
    switch (act) {
    case TYPE_F32: ACT_LAUNCH(TYPE_F32); break;
    case TYPE_Q8_0: ACT_LAUNCH(TYPE_Q8_0); break;
    case TYPE_Q8_1: ACT_LAUNCH(TYPE_Q8_1); break;
    case TYPE_Q8_K:
        if (cols % 256) return error_set(err, ERR_INVALID, "matmul: %lld columns of a K-quant", (long long)cols);
        ACT_LAUNCH(TYPE_Q8_K);
        break;
    default: return error_set(err, ERR_UNSUPPORTED, "matmul: weight type %u has no activation type", wtype);
    }
#undef ACT_LAUNCH
    return cuda_check_launch("activation rounding", err);
}
