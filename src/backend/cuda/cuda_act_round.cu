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
 *   ACT_LAYOUT_Q8  the int8 quants and per-block scales and sums, for the
 *     dp4a GEMV (cuda_act_round.cuh documents it).
 * One warp rounds 256 consecutive elements of one token (8 per lane).
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_act_round.cuh"


#define ACT_WARPS 4

template <int A, int LAYOUT>
__global__ void __launch_bounds__(ACT_WARPS * 32)
    k_act_round(const float *__restrict__ x, int64_t n, int64_t cols, int64_t out_stride, void *__restrict__ out) {
    const int64_t groups = (cols + ACT_GROUP - 1) / ACT_GROUP;
    const int64_t gw = (int64_t)blockIdx.x * ACT_WARPS + (threadIdx.x >> 5);
    if (gw >= n * groups) return;
    const int64_t t = gw / groups;
    act_round_group<A, LAYOUT>(x + t * cols, cols, gw % groups, (LAYOUT == ACT_LAYOUT_F16 ? 2 : 4) * t * out_stride, out);
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
        else if (layout == ACT_LAYOUT_Q8)                                                                              \
            k_act_round<A, ACT_LAYOUT_Q8><<<blocks, th, 0, c->stream>>>(x, n, cols, out_stride, out);                  \
        else                                                                                                           \
            k_act_round<A, ACT_LAYOUT_F16><<<blocks, th, 0, c->stream>>>(x, n, cols, out_stride, out);                 \
    } while (0)
    if (layout == ACT_LAYOUT_Q8 && act == TYPE_F32)
        return error_set(err, ERR_INVALID, "activation rounding: float weights take no 8-bit layout");
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
