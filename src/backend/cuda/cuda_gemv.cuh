/*
 * cuda_gemv.cuh — the quantized matrix-vector product's inner loop, shared
 * by the dense GEMV (cuda_matmul.cu) and the MoE expert GEMV (cuda_moe.cu).
 *
 * y[t][r] = Σ_k W[r][k] · x̃[t][k] for a block's rows and up to NT tokens,
 * where x̃ is x rounded as the CPU rounds activations and stored
 * interleaved (cuda_act_round.cu, ACT_LAYOUT_IL).
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_GEMV_CUH
#define LARDER_BACKEND_CUDA_CUDA_GEMV_CUH

#include "backend/cuda/cuda_quant.cuh"
#include "backend/cuda/cuda_quant_q8.cuh"

#define GEMV_MAX_TOKENS 8 /* tokens one GEMV pass carries (more: passes of 8) */
#define GEMV_WARPS 4      /* warps per block: they split each row's chunks */

/* The block's per-thread sums acc[r][t] added up: lanes by shuffles, warps
 * through shared memory in warp order; out[r·NT + t] holds the total on
 * return (out: GEMV_SMEM_FLOATS(RR, NT) shared floats). Every thread of the
 * block calls it, with its lane and warp as the caller computed them (so
 * the compiled GEMVs stay the code measured on the H100: recomputing them
 * here rescheduled 32 of them). */
template <int NT, int RR>
__device__ __forceinline__ void gemv_block_sum(const float (&acc)[RR][NT], float *out, int lane, int warp) {
    float *part = out + RR * NT; /* (warp, r·NT + t) */
#pragma unroll
    for (int r = 0; r < RR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = acc[r][t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane == 0) part[warp * RR * NT + r * NT + t] = s;
        }
    __syncthreads();
    for (int i = threadIdx.x; i < RR * NT; i += blockDim.x) {
        float s = 0.0f;
        for (int w = 0; w < GEMV_WARPS; w++) s += part[w * RR * NT + i];
        out[i] = s;
    }
    __syncthreads();
}

/*
 * y[t][r] = Σ_k W[r][k] · x̃[t][k], x̃ = x rounded as the CPU rounds
 * activations (cuda_act_round.cu), read from its interleaved copy.
 *
 * A block of GEMV_WARPS warps owns RR rows (given as row pointers, so the
 * rows may come from different matrices). The row's 32-element chunks are
 * dealt to the block's lanes: warp w, lane l takes chunks
 * c = 32·w + l + 32·GEMV_WARPS·j, so the warp's lanes always take 32
 * consecutive chunks and read x̃ with one 128-byte line per load. Per chunk
 * a lane unpacks the RR rows' weights into registers (chunk_load) and, for
 * each token and each of the 32 elements, loads one x̃ value and adds it
 * into RR accumulators: a loaded x̃ value serves RR rows, and every weight
 * byte is read once per call for up to GEMV_MAX_TOKENS tokens. Splitting a
 * row over the whole block (not one warp) keeps enough loads in flight to
 * stream the weights at full bandwidth. Lanes are summed with shuffles,
 * warps through shared memory in warp order; every thread of the block
 * must call this, and finds the RR·NT sums in out[r·NT + t] on return. */
template <int T, int NT, int RR>
__device__ __forceinline__ void gemv_block_rows(const uint8_t *const rowp[RR], int64_t n_chunks,
                                                const float *__restrict__ x_il, int64_t il_stride, int ntok,
                                                float *out /* shared, GEMV_WARPS·RR·NT + RR·NT floats */) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float acc[RR][NT];
#pragma unroll
    for (int r = 0; r < RR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    for (int64_t c = 32 * warp + lane; c < n_chunks; c += 32 * GEMV_WARPS) {
        float wv[RR][32];
#pragma unroll
        for (int r = 0; r < RR; r++) chunk_load<T>(rowp[r], c, wv[r]);
        const float *xp = x_il + (c >> 5) * 1024 + lane;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < ntok) {
#pragma unroll
                for (int i = 0; i < 32; i++) {
                    const float xv = __ldg(xp + (int64_t)t * il_stride + i * 32);
#pragma unroll
                    for (int r = 0; r < RR; r++) acc[r][t] = fmaf(wv[r][i], xv, acc[r][t]);
                }
            }
        }
    }
    gemv_block_sum<NT, RR>(acc, out, lane, warp);
}

/*
 * The same product from the activations' 8-bit quants (ACT_LAYOUT_Q8,
 * cuda_act_round.cuh; every quantized weight type): per chunk a lane
 * unpacks the RR rows' quants to bytes (cuda_quant_q8.cuh) and, per token,
 * loads the chunk's 32 activation quants (two 16-byte loads: the warp's
 * lanes read 1 KiB in a row) and its block's scales, 8 dp4a a row. Four
 * times fewer x̃ bytes and about a fifth of the instructions of the f32
 * path per weight, and the integer sums are the CPU's. x_q: token 0's
 * region, x_stride_bytes between tokens, ldq the quants' length in it.
 */
template <int T, int NT, int RR>
__device__ __forceinline__ void gemvq_block_rows(const uint8_t *const rowp[RR], int64_t n_chunks,
                                                 const uint8_t *__restrict__ x_q, int64_t x_stride_bytes,
                                                 int64_t ldq, int ntok, float *out) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float acc[RR][NT];
#pragma unroll
    for (int r = 0; r < RR; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    for (int64_t c = 32 * warp + lane; c < n_chunks; c += 32 * GEMV_WARPS) {
        q8_chunk w[RR];
#pragma unroll
        for (int r = 0; r < RR; r++) chunk_q8<T>(rowp[r], c, w[r]);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < ntok) {
                const uint8_t *xt = x_q + (int64_t)t * x_stride_bytes;
                const int4 a = __ldg((const int4 *)(xt + c * 32)), b = __ldg((const int4 *)(xt + c * 32 + 16));
                const int xq[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                const int4 mi = __ldg((const int4 *)(xt + ldq + c * 16));
                act_q8_meta m;
                m.d = __int_as_float(mi.x), m.s = __int_as_float(mi.y), m.sum16 = mi.z, m.unused = 0;
#pragma unroll
                for (int r = 0; r < RR; r++) acc[r][t] += chunk_q8_dot<T>(w[r], xq, m);
            }
        }
    }
    gemv_block_sum<NT, RR>(acc, out, lane, warp);
}

/*
 * The 8-bit product with a warp (not a block) per RW rows: lane l takes
 * chunks l, l + 32, ... of the warp's rows, the loop unrolled 4 deep so a
 * lane has up to 4·RW chunks' loads in flight, and the lanes' sums meet by
 * shuffles only (no shared memory, no barrier: a warp whose rows are past
 * the end may return). Lane 0 finds the RW·NT sums in out[r][t].
 * (LARDER_CUDA_GEMV_V=2; A/B against gemvq_block_rows.)
 */
template <int T, int NT, int RW>
__device__ __forceinline__ void gemvq_warp_rows(const uint8_t *const rowp[RW], int64_t n_chunks,
                                                const uint8_t *__restrict__ x_q, int64_t x_stride_bytes,
                                                int64_t ldq, int ntok, float out[RW][NT]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) out[r][t] = 0.0f;
#pragma unroll 4
    for (int64_t c = lane; c < n_chunks; c += 32) {
        q8_chunk w[RW];
#pragma unroll
        for (int r = 0; r < RW; r++) chunk_q8<T>(rowp[r], c, w[r]);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < ntok) {
                const uint8_t *xt = x_q + (int64_t)t * x_stride_bytes;
                const int4 a = __ldg((const int4 *)(xt + c * 32)), b = __ldg((const int4 *)(xt + c * 32 + 16));
                const int xq[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                const int4 mi = __ldg((const int4 *)(xt + ldq + c * 16));
                act_q8_meta m;
                m.d = __int_as_float(mi.x), m.s = __int_as_float(mi.y), m.sum16 = mi.z, m.unused = 0;
#pragma unroll
                for (int r = 0; r < RW; r++) out[r][t] += chunk_q8_dot<T>(w[r], xq, m);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) out[r][t] += __shfl_xor_sync(0xffffffffu, out[r][t], o);
}

/* Either form, by the activation layout the launch chose (Q8: the 8-bit
 * one, for quantized T only): x is token 0's rounded activations,
 * x_stride_bytes apart (cuda_act_il_stride(cols)·4 in both layouts). */
template <int T, int NT, int RR, bool Q8>
__device__ __forceinline__ void gemv_block_rows_any(const uint8_t *const rowp[RR], int64_t n_chunks, const void *x,
                                                    int64_t x_stride_bytes, int ntok, float *out) {
    if constexpr (Q8 && q8_supported<T>::value)
        gemvq_block_rows<T, NT, RR>(rowp, n_chunks, (const uint8_t *)x, x_stride_bytes, x_stride_bytes / 4, ntok,
                                    out);
    else
        gemv_block_rows<T, NT, RR>(rowp, n_chunks, (const float *)x, x_stride_bytes / 4, ntok, out);
}

/* Shared floats gemv_block_rows needs for RR rows and NT tokens. */
#define GEMV_SMEM_FLOATS(RR, NT) ((GEMV_WARPS + 1) * (RR) * (NT))

#endif
