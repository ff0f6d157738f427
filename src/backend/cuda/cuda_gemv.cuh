/*
 * cuda_gemv.cuh — the quantized matrix-vector product's inner loop, shared
 * by the dense GEMV (cuda_matmul.cu) and the MoE expert GEMV (cuda_moe.cu).
 *
 * y[t][r] = Σ_k W[r][k] · x̃[t][k] for a warp's R rows and up to NT tokens,
 * where x̃ is x rounded as the CPU rounds activations and stored
 * interleaved (cuda_act_round.cu, ACT_LAYOUT_IL).
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_GEMV_CUH
#define LARDER_BACKEND_CUDA_CUDA_GEMV_CUH

#include "backend/cuda/cuda_quant.cuh"

#define GEMV_MAX_TOKENS 8 /* tokens one GEMV pass carries (more: passes of 8) */
#define GEMV_WARPS 4      /* warps per block */

/*
 * y[t][r] = Σ_k W[r][k] · x̃[t][k], x̃ = x rounded as the CPU rounds
 * activations (cuda_act_round.cu), read from its interleaved copy.
 *
 * A warp owns R consecutive rows; lane l takes the row chunks c = l, l+32,
 * ... (32 elements each). Per chunk it unpacks the R rows' weights into
 * registers (chunk_load) and, for each token and each of the 32 elements,
 * loads one x̃ value (the warp's 32 lanes read 32 consecutive floats: one
 * 128-byte line) and adds it into the R accumulators. So a loaded x̃ value
 * serves R rows, and every weight byte is read once per call for up to
 * GEMV_MAX_TOKENS tokens. The warp then sums its lanes with shuffles. */
template <int T, int NT, int R>
__device__ __forceinline__ void gemv_warp(const uint8_t *__restrict__ w, size_t row_bytes, int64_t r0, int64_t rows,
                                          int64_t n_chunks, const float *__restrict__ x_il, int64_t il_stride,
                                          int ntok, float *__restrict__ y, int64_t ldy) {
    const int lane = threadIdx.x & 31;
    const uint8_t *row[R];
#pragma unroll
    for (int r = 0; r < R; r++) row[r] = w + (size_t)(r0 + r < rows ? r0 + r : rows - 1) * row_bytes;
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    for (int64_t c = lane; c < n_chunks; c += 32) {
        float wv[R][32];
#pragma unroll
        for (int r = 0; r < R; r++) chunk_load<T>(row[r], c, wv[r]);
        const float *xp = x_il + (c >> 5) * 1024 + lane;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < ntok) {
#pragma unroll
                for (int i = 0; i < 32; i++) {
                    const float xv = __ldg(xp + (int64_t)t * il_stride + i * 32);
#pragma unroll
                    for (int r = 0; r < R; r++) acc[r][t] = fmaf(wv[r][i], xv, acc[r][t]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = acc[r][t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane == 0 && t < ntok && r0 + r < rows) y[(int64_t)t * ldy + r0 + r] = s;
        }
}

#endif
