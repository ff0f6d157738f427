/*
 * cuda_moe_gemm.cu — the mixture-of-experts feed-forward of a prefill batch
 * (n_tokens > CUDA_MOE_GROUPED_MIN_TOKENS) as grouped tensor-core products:
 * each expert's weights are read once per token tile of the tokens that
 * chose it, not once per token.
 *
 *  1. k_moe_group (one block, on the device: the host never waits for the
 *     ids): counts the (token, slot) pairs p = t·k + j per expert, their
 *     offsets, the pair list sorted by expert, and the tile list — one
 *     (expert, start, count) triple per BM pairs of an expert; experts no
 *     token chose have no tile. An id outside [0, n_expert) raises the
 *     device flag (reported at sync) and its pair is left out.
 *  2. x rounded once (as the CPU rounds the activations of the gate's and
 *     the up's type, cuda_act_round.cu, then to f16; twice only when the
 *     two types round differently); gate and up: one grouped launch each
 *     over (tile, row tile) (cuda_gemm.cu), x rows gathered through the
 *     pair list (token = p / k), results scattered to pair rows.
 *  3. h = silu(gate)·up per pair (f32, as the per-pair path), rounded for
 *     the down's type and to f16; down: one grouped launch.
 *  4. out[t] = Σ_j weights[t, j]·down[t·k + j] in slot order (a pair with a
 *     bad id adds nothing, as in the per-pair path).
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_quant.cuh"

extern "C" {
#include "tensor/quant.h"
}

#define MOE_GROUP_THREADS 1024

__global__ void __launch_bounds__(MOE_GROUP_THREADS)
    k_moe_group(const int32_t *__restrict__ ids, int64_t n_pairs, int32_t n_expert, int32_t bm, int32_t *tiles,
                int32_t *n_tiles, int32_t *plist, int *bad_id) {
    extern __shared__ int32_t mg_sm[]; /* counts[n_expert], cursor[n_expert] */
    int32_t *counts = mg_sm, *cursor = mg_sm + n_expert;
    for (int e = threadIdx.x; e < n_expert; e += blockDim.x) counts[e] = 0;
    __syncthreads();
    for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
        int32_t e = ids[p];
        if (e >= 0 && e < n_expert) atomicAdd(&counts[e], 1);
        else *bad_id = 1;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t off = 0, nt = 0;
        for (int32_t e = 0; e < n_expert; e++) {
            const int32_t cnt = counts[e];
            cursor[e] = off;
            for (int32_t s = 0; s < cnt; s += bm) {
                tiles[3 * nt] = e;
                tiles[3 * nt + 1] = off + s;
                tiles[3 * nt + 2] = cnt - s < bm ? cnt - s : bm;
                nt++;
            }
            off += cnt;
        }
        *n_tiles = nt;
    }
    __syncthreads();
    for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
        int32_t e = ids[p];
        if (e >= 0 && e < n_expert) plist[atomicAdd(&cursor[e], 1)] = (int32_t)p;
    }
}

/* g = silu(g)·u (the f32 steps of cuda_moe.cu's k_moe_silu_mul). */
__global__ void k_moe_silu_mul_inplace(float *__restrict__ g, const float *__restrict__ u, int64_t total) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) {
        float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

__global__ void k_moe_combine_checked(const float *__restrict__ down, const int32_t *__restrict__ ids,
                                      const float *__restrict__ weights, int64_t n_tokens, int32_t k,
                                      int32_t n_expert, int64_t dim, float *__restrict__ out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_tokens * dim) return;
    int64_t t = i / dim, d = i % dim;
    float s = 0.0f;
    for (int j = 0; j < k; j++) {
        int32_t e = ids[t * k + j];
        float v = e >= 0 && e < n_expert ? down[(t * k + j) * dim + d] : 0.0f;
        s += weights[t * k + j] * v;
    }
    out[i] = s;
}

bool cuda_moe_grouped_ok(const backend_moe_experts *ex, int64_t n_tokens) {
    return n_tokens > CUDA_MOE_GROUPED_MIN_TOKENS && cuda_gemm_type_supported(ex->gate_type) &&
           cuda_gemm_type_supported(ex->up_type) && cuda_gemm_type_supported(ex->down_type) && ex->dim % 32 == 0 &&
           ex->ff % 32 == 0 && ex->n_expert > 0 && (size_t)ex->n_expert * 8 <= 48 * 1024;
}

static size_t mg_align(size_t b) { return (b + 255) / 256 * 256; }

int cuda_moe_ffn_grouped(cuda_backend *c, const backend_moe_experts *ex, const float *x, const int32_t *ids,
                         const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err) {
    const int64_t n_pairs = n_tokens * k, ff = ex->ff, dim = ex->dim;
    if (k <= 0 || n_pairs > 0x7fffffff) return error_set(err, ERR_INVALID, "moe ffn: %lld pairs", (long long)n_pairs);
    /* tiles of 128 pairs when experts get that many on average and every type fits */
    const int bm = n_pairs / ex->n_expert >= 128 && cuda_gemm_bm128_fits(ex->gate_type) &&
                           cuda_gemm_bm128_fits(ex->up_type) && cuda_gemm_bm128_fits(ex->down_type)
                       ? 128
                       : 64;
    const int64_t max_tiles = (n_pairs + bm - 1) / bm + ex->n_expert;
    const bool two_x = quant_vec_dot_type(ex->gate_type) != quant_vec_dot_type(ex->up_type);
    const size_t b_x16 = mg_align((size_t)n_tokens * (size_t)dim * 2), b_g = mg_align((size_t)n_pairs * (size_t)ff * 4),
                 b_h16 = mg_align((size_t)n_pairs * (size_t)ff * 2), b_dn = mg_align((size_t)n_pairs * (size_t)dim * 4),
                 b_tiles = mg_align((size_t)max_tiles * 3 * 4 + 4), b_plist = mg_align((size_t)n_pairs * 4);
    const size_t total = (two_x ? 2 : 1) * b_x16 + 2 * b_g + b_h16 + b_dn + b_tiles + b_plist;
    if (cuda_scratch_reserve(c, &c->moe_scratch, &c->moe_scratch_bytes, total, "moe scratch", err)) return -1;
    uint8_t *p = (uint8_t *)c->moe_scratch;
    __half *x16g = (__half *)p, *x16u = two_x ? (__half *)(p += b_x16) : x16g;
    float *g = (float *)(p += b_x16), *u = (float *)(p += b_g);
    __half *h16 = (__half *)(p += b_g);
    float *dn = (float *)(p += b_h16);
    int32_t *tiles = (int32_t *)(p += b_dn), *n_tiles = tiles + 3 * max_tiles;
    int32_t *plist = (int32_t *)(p += b_tiles);

    k_moe_group<<<1, MOE_GROUP_THREADS, (size_t)ex->n_expert * 8, c->stream>>>(ids, n_pairs, ex->n_expert, bm, tiles,
                                                                              n_tiles, plist, c->dev_flags);
    if (cuda_check_launch("moe ffn (grouping)", err) ||
        cuda_act_round(c, ex->gate_type, x, n_tokens, dim, ACT_LAYOUT_F16, dim, x16g, err) ||
        (two_x && cuda_act_round(c, ex->up_type, x, n_tokens, dim, ACT_LAYOUT_F16, dim, x16u, err)))
        return -1;
    if (cuda_gemm_q_grouped(c, ex->gate, ex->gate_type, ex->n_expert, ff, dim, x16g, dim, k, tiles, n_tiles, plist,
                            max_tiles, bm, g, ff, err) ||
        cuda_gemm_q_grouped(c, ex->up, ex->up_type, ex->n_expert, ff, dim, x16u, dim, k, tiles, n_tiles, plist,
                            max_tiles, bm, u, ff, err))
        return -1;
    /* pairs with a bad id hold garbage here; they are in no tile and the combine skips them */
    k_moe_silu_mul_inplace<<<(unsigned)((n_pairs * ff + 255) / 256), 256, 0, c->stream>>>(g, u, n_pairs * ff);
    if (cuda_check_launch("moe ffn (silu)", err) ||
        cuda_act_round(c, ex->down_type, g, n_pairs, ff, ACT_LAYOUT_F16, ff, h16, err))
        return -1;
    if (cuda_gemm_q_grouped(c, ex->down, ex->down_type, ex->n_expert, dim, ff, h16, ff, 1, tiles, n_tiles, plist,
                            max_tiles, bm, dn, dim, err))
        return -1;
    k_moe_combine_checked<<<(unsigned)((n_tokens * dim + 255) / 256), 256, 0, c->stream>>>(dn, ids, weights, n_tokens,
                                                                                          k, ex->n_expert, dim, out);
    return cuda_check_launch("moe ffn (combine)", err);
}
