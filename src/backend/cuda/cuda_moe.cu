/*
 * cuda_moe.cu — the CUDA backend's mixture-of-experts ops (backend.h):
 * routing and the expert feed-forward.
 *
 * Routing: one warp per token: scores (softmax with the max, f32 exps, the
 * sum in double and one f32 scale, as the CPU; or sigmoid), then k rounds
 * of a warp arg-max over s + bias (ties: the lower id), then the chosen
 * unbiased scores renormalised (sum in double, clamped to 2^-14).
 *
 * Feed-forward: every (token, slot) pair p = t·k + j is one GEMV row set:
 * gate and up rows of expert ids[p] times x̃[t] (cuda_gemv.cuh's warp
 * loop, x̃ rounded as the CPU rounds activations), h =
 * silu(gate)·up, then the down rows of the expert times h[p], and out[t] =
 * Σ_j weights[p]·down[p] in slot order. Only the chosen experts' rows are
 * read; a decode step reads each chosen expert once. A prefill batch reads
 * an expert once per token that chose it (from L2 when they come close
 * together): grouping tokens by expert for tensor-core products is the
 * next step (bench/CUDA_RESULTS.md). An expert id outside [0, n_expert)
 * sets a device flag that backend_sync reports.
 */
#include "backend/cuda/cuda_gemv.cuh"

#define MOE_MIN_WEIGHT_SUM 6.103515625e-5f

__global__ void k_moe_route(const float *logits, const float *bias, int32_t n_expert, int32_t k, int sigmoid,
                            int32_t *ids, float *weights) {
    extern __shared__ float sm[]; /* s (n_expert), chosen flags (n_expert) */
    float *s = sm;
    int *chosen = (int *)(sm + n_expert);
    const int64_t t = blockIdx.x;
    const int lane = threadIdx.x;
    const float *l = logits + t * n_expert;
    if (sigmoid) {
        for (int e = lane; e < n_expert; e += 32) s[e] = 1.0f / (1.0f + expf(-l[e]));
    } else {
        float mx = -INFINITY;
        for (int e = lane; e < n_expert; e += 32) mx = fmaxf(mx, l[e]);
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        double sum = 0;
        for (int e = lane; e < n_expert; e += 32) {
            s[e] = expf(l[e] - mx);
            sum += (double)s[e];
        }
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = (float)(1.0 / sum);
        __syncwarp();
        for (int e = lane; e < n_expert; e += 32) s[e] *= inv;
    }
    for (int e = lane; e < n_expert; e += 32) chosen[e] = 0;
    __syncwarp();
    double wsum = 0;
    for (int j = 0; j < k; j++) {
        float best = -INFINITY;
        int bid = INT32_MAX;
        for (int e = lane; e < n_expert; e += 32) {
            if (chosen[e]) continue;
            float v = bias ? s[e] + bias[e] : s[e];
            if (bid == INT32_MAX || v > best) best = v, bid = e; /* ascending e: ties keep the lower */
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bid, o);
            if (oi != INT32_MAX && (bid == INT32_MAX || ob > best || (ob == best && oi < bid))) best = ob, bid = oi;
        }
        if (lane == 0) {
            chosen[bid] = 1;
            ids[t * k + j] = bid;
            weights[t * k + j] = s[bid];
        }
        wsum += (double)s[bid];
        __syncwarp();
    }
    float total = (float)wsum;
    if (!(total >= MOE_MIN_WEIGHT_SUM)) total = MOE_MIN_WEIGHT_SUM;
    __syncwarp();
    for (int j = lane; j < k; j += 32) weights[t * k + j] /= total;
}

int cuda_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                   int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    if (n_tokens <= 0) return 0;
    size_t smem = (size_t)n_expert * (sizeof(float) + sizeof(int));
    if (smem > 48 * 1024) return error_set(err, ERR_UNSUPPORTED, "moe routing: %d experts", n_expert);
    k_moe_route<<<(unsigned)n_tokens, 32, smem, c->stream>>>(logits, sel_bias, n_expert, k,
                                                             gating == BACKEND_MOE_SIGMOID, ids, weights);
    return cuda_check_launch("moe routing", err);
}

/* The expert of pair p, or -1 (flagged) for an id outside [0, n_expert). */
__device__ __forceinline__ int32_t moe_expert(const int32_t *ids, int64_t p, int32_t n_expert, int *bad_id) {
    const int32_t e = ids[p];
    if (e >= 0 && e < n_expert) return e;
    if (threadIdx.x == 0) *bad_id = 1;
    return -1;
}

/* y[p] (rows) = W[e = ids[p]] (rows x cols) · x̃[p / x_div] for pairs p
 * (x̃ rounded and interleaved, cuda_act_round.cu), R rows a block. */
template <int T, int R, bool Q8>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_moe_gemv(const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t n_chunks, int32_t n_expert,
               const int32_t *__restrict__ ids, const char *__restrict__ x_r, int64_t xs, int x_div,
               float *__restrict__ y, int *bad_id) {
    __shared__ float sums[GEMV_SMEM_FLOATS(R, 1)];
    const int64_t r0 = (int64_t)blockIdx.x * R, p = blockIdx.y;
    const int32_t e = moe_expert(ids, p, n_expert, bad_id);
    if (e < 0) { /* the whole block returns: no barrier is left waiting */
        for (int r = threadIdx.x; r < R && r0 + r < rows; r += blockDim.x) y[p * rows + r0 + r] = 0.0f;
        return;
    }
    const uint8_t *base = w + (size_t)e * (size_t)rows * row_bytes;
    const uint8_t *rowp[R];
#pragma unroll
    for (int r = 0; r < R; r++) rowp[r] = base + (size_t)(r0 + r < rows ? r0 + r : rows - 1) * row_bytes;
    gemv_block_rows_any<T, 1, R, Q8>(rowp, n_chunks, x_r + (p / x_div) * xs, xs, 1, sums);
    for (int r = threadIdx.x; r < R; r += blockDim.x)
        if (r0 + r < rows) y[p * rows + r0 + r] = sums[r];
}

/* Gate and up of one expert in one pass (same weight type), h = silu(g)·u:
 * h[p] (ff) for pairs p, R rows of each matrix a block. */
template <int T, int R, bool Q8>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_moe_gate_up(const uint8_t *__restrict__ gate, const uint8_t *__restrict__ up, size_t row_bytes, int64_t ff,
                  int64_t n_chunks, int32_t n_expert, const int32_t *__restrict__ ids, const char *__restrict__ x_r,
                  int64_t xs, int k, float *__restrict__ h, int *bad_id) {
    __shared__ float sums[GEMV_SMEM_FLOATS(2 * R, 1)];
    const int64_t r0 = (int64_t)blockIdx.x * R, p = blockIdx.y;
    const int32_t e = moe_expert(ids, p, n_expert, bad_id);
    if (e < 0) {
        for (int r = threadIdx.x; r < R && r0 + r < ff; r += blockDim.x) h[p * ff + r0 + r] = 0.0f;
        return;
    }
    const size_t ex = (size_t)e * (size_t)ff * row_bytes;
    const uint8_t *rowp[2 * R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const size_t off = ex + (size_t)(r0 + r < ff ? r0 + r : ff - 1) * row_bytes;
        rowp[r] = gate + off, rowp[R + r] = up + off;
    }
    gemv_block_rows_any<T, 1, 2 * R, Q8>(rowp, n_chunks, x_r + (p / k) * xs, xs, 1, sums);
    for (int r = threadIdx.x; r < R; r += blockDim.x)
        if (r0 + r < ff) {
            const float g = sums[r], u = sums[R + r];
            h[p * ff + r0 + r] = g / (1.0f + expf(-g)) * u; /* as k_moe_silu_mul and the CPU */
        }
}

/* x_r: the rounded activations in the layout cuda_gemv_layout chose (q8:
 * ACT_LAYOUT_Q8), xs bytes a row */
struct moe_gemv_launch {
    cuda_backend *c; const void *w; size_t row_bytes; int64_t rows, n_chunks; int32_t n_expert;
    const int32_t *ids; const char *x_r; int64_t xs; int x_div; float *y; int64_t n_pairs; int rpb; bool q8;
    template <int T, int R, bool Q8> void go() {
        dim3 grid((unsigned)((rows + R - 1) / R), (unsigned)n_pairs);
        k_moe_gemv<T, R, Q8><<<grid, GEMV_WARPS * 32, 0, c->stream>>>((const uint8_t *)w, row_bytes, rows, n_chunks,
                                                                      n_expert, ids, x_r, xs, x_div, y, c->dev_flags);
    }
    template <int T, bool Q8> void rows_go() {
        if (rpb == 4) go<T, 4, Q8>();
        else if (rpb == 2) go<T, 2, Q8>();
        else go<T, 1, Q8>();
    }
    template <int T> void operator()() {
        if constexpr (q8_supported<T>::value) {
            if (q8) return rows_go<T, true>();
        }
        rows_go<T, false>();
    }
};

struct moe_gate_up_launch {
    cuda_backend *c; const void *gate, *up; size_t row_bytes; int64_t ff, n_chunks; int32_t n_expert;
    const int32_t *ids; const char *x_r; int64_t xs; int k; float *h; int64_t n_pairs; int rpb; bool q8;
    template <int T, int R, bool Q8> void go() {
        dim3 grid((unsigned)((ff + R - 1) / R), (unsigned)n_pairs);
        k_moe_gate_up<T, R, Q8><<<grid, GEMV_WARPS * 32, 0, c->stream>>>((const uint8_t *)gate, (const uint8_t *)up,
                                                                         row_bytes, ff, n_chunks, n_expert, ids, x_r,
                                                                         xs, k, h, c->dev_flags);
    }
    template <int T, bool Q8> void rows_go() {
        if (rpb >= 2) go<T, 2, Q8>(); /* 2 rows of each matrix: 4 rows a block */
        else go<T, 1, Q8>();
    }
    template <int T> void operator()() {
        if constexpr (q8_supported<T>::value) {
            if (q8) return rows_go<T, true>();
        }
        rows_go<T, false>();
    }
};

__global__ void k_moe_silu_mul(float *g, const float *u, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

__global__ void k_moe_combine(const float *down, const float *weights, int64_t n_tokens, int32_t k, int64_t dim,
                              float *out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_tokens * dim) return;
    int64_t t = i / dim, d = i % dim;
    float s = 0.0f;
    for (int j = 0; j < k; j++) s += weights[t * k + j] * down[(t * k + j) * dim + d];
    out[i] = s;
}

/* x (n_x, cols) rounded for `type` into *scratch, then the pairs' GEMVs. */
static int moe_gemv(cuda_backend *c, const void *w, uint32_t type, int64_t rows, int64_t cols, int32_t n_expert,
                    const int32_t *ids, const float *x, int64_t n_x, int x_div, void **scratch, size_t *scratch_bytes,
                    float *y, int64_t n_pairs, larder_error *err) {
    if (cols % 32) return error_set(err, ERR_INVALID, "moe ffn: %lld columns (a multiple of 32 needed)", (long long)cols);
    if (!cuda_type_supported(type)) return error_set(err, ERR_UNSUPPORTED, "moe ffn: weight type %u has no CUDA kernel", type);
    const int64_t il_stride = cuda_act_il_stride(cols);
    const int layout = cuda_gemv_layout(c, quant_vec_dot_type(type));
    if (cuda_scratch_reserve(c, scratch, scratch_bytes, (size_t)n_x * (size_t)il_stride * sizeof(float),
                             "moe activation scratch", err) ||
        cuda_act_round(c, type, x, n_x, cols, layout, il_stride, *scratch, err))
        return -1;
    moe_gemv_launch l{c, w, tensor_row_bytes(type, cols), rows, cols / 32, n_expert, ids, (const char *)*scratch,
                      il_stride * 4, x_div, y, n_pairs, cuda_gemv_rows_per_block(c, rows, n_pairs),
                      layout == ACT_LAYOUT_Q8};
    cq_dispatch(type, l);
    return cuda_check_launch("moe ffn", err);
}

int cuda_moe_ffn(backend *b, const backend_moe_experts *ex, const float *x, const int32_t *ids, const float *weights,
                 int64_t n_tokens, int32_t k, float *out, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    if (n_tokens <= 0) return 0;
    /* prefill: grouped tensor-core products (cuda_moe_gemm.cu); LARDER_CUDA_GEMM=1|2 keeps the per-pair path */
    if (c->gemm_variant != 1 && c->gemm_variant != 2 && cuda_moe_grouped_ok(ex, n_tokens))
        return cuda_moe_ffn_grouped(c, ex, x, ids, weights, n_tokens, k, out, err);
    const int64_t n_pairs = n_tokens * k, ff = ex->ff, dim = ex->dim;
    const size_t bytes = (size_t)n_pairs * (size_t)(2 * ff + dim) * sizeof(float);
    if (cuda_scratch_reserve(c, &c->moe_scratch, &c->moe_scratch_bytes, bytes, "moe scratch", err)) return -1;
    float *g = (float *)c->moe_scratch, *u = g + n_pairs * ff, *dn = u + n_pairs * ff;
    if (ex->gate_type == ex->up_type && dim % 32 == 0 && cuda_type_supported(ex->gate_type)) {
        /* gate and up in one pass over x̃ (rounded once), silu·up fused */
        const int64_t il_stride = cuda_act_il_stride(dim);
        const int layout = cuda_gemv_layout(c, quant_vec_dot_type(ex->gate_type));
        if (cuda_scratch_reserve(c, &c->mm_xil, &c->mm_xil_bytes, (size_t)n_tokens * (size_t)il_stride * sizeof(float),
                                 "moe activation scratch", err) ||
            cuda_act_round(c, ex->gate_type, x, n_tokens, dim, layout, il_stride, c->mm_xil, err))
            return -1;
        moe_gate_up_launch l{c, ex->gate, ex->up, tensor_row_bytes(ex->gate_type, dim), ff, dim / 32, ex->n_expert,
                             ids, (const char *)c->mm_xil, il_stride * 4, k, g, n_pairs,
                             cuda_gemv_rows_per_block(c, 2 * ff, n_pairs), layout == ACT_LAYOUT_Q8};
        cq_dispatch(ex->gate_type, l);
        if (cuda_check_launch("moe ffn (gate, up)", err)) return -1;
    } else {
        /* x is rounded for each product (their activation types may differ) */
        if (moe_gemv(c, ex->gate, ex->gate_type, ff, dim, ex->n_expert, ids, x, n_tokens, k, &c->mm_xil,
                     &c->mm_xil_bytes, g, n_pairs, err) ||
            moe_gemv(c, ex->up, ex->up_type, ff, dim, ex->n_expert, ids, x, n_tokens, k, &c->mm_xil, &c->mm_xil_bytes,
                     u, n_pairs, err))
            return -1;
        k_moe_silu_mul<<<(unsigned)((n_pairs * ff + 255) / 256), 256, 0, c->stream>>>(g, u, n_pairs * ff);
        if (cuda_check_launch("moe ffn", err)) return -1;
    }
    if (moe_gemv(c, ex->down, ex->down_type, dim, ff, ex->n_expert, ids, g, n_pairs, 1, &c->moe_xil, &c->moe_xil_bytes,
                 dn, n_pairs, err))
        return -1;
    k_moe_combine<<<(unsigned)((n_tokens * dim + 255) / 256), 256, 0, c->stream>>>(dn, weights, n_tokens, k, dim, out);
    return cuda_check_launch("moe ffn", err);
}
