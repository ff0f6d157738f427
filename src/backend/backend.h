/*
 * backend.h — the ops the model's forward pass calls, and nothing else the
 * model knows about where they run (CPU now; CUDA later behind the same
 * calls).
 *
 * Activations are f32 row-major matrices "(n_tokens, width)". Weights are
 * rows of any tensor_type (src/tensor/dtype.h) as they lie in the GGUF
 * mapping. K/V live in the paged pool (src/kv/kv_pool.h); attention reads
 * them through each token's page table and never assumes contiguous KV.
 *
 * A backend owns its compute threads (--threads) and its scratch, which is
 * grown when needed and reused, so a decode step allocates nothing.
 * Not thread-safe: one caller (the engine thread) at a time.
 */
#ifndef LARDER_BACKEND_BACKEND_H
#define LARDER_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "kv/kv_pool.h"

typedef struct backend backend;

/* A CPU backend with n_threads compute threads (caller included). */
backend *backend_cpu_create(int n_threads, larder_error *err);
void backend_free(backend *b);
int backend_n_threads(const backend *b);

/* y (n_tokens, rows) = x (n_tokens, cols) · Wᵀ, W = rows x cols of wtype
 * (row-major, tensor_row_bytes(wtype, cols) bytes per row). Activations are
 * quantized to the weight type's dot type internally (tensor/quant.h). */
int backend_matmul(backend *b, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const float *x,
                   int64_t n_tokens, float *y, larder_error *err);

/* Most matrices one backend_matmul_multi call takes. */
#define BACKEND_MATMUL_MAX_MATS 8

/* One matrix of a fused call: y (n_tokens, rows) = x · Wᵀ. */
typedef struct backend_matmul_weight {
    const void *w;      /* (rows, cols) of wtype, row-major */
    uint32_t wtype;
    int64_t rows;
    float *y;           /* (n_tokens, rows) f32 */
} backend_matmul_weight;

/* Several matrices that share the input x (q, k, v; gate, up), computed in
 * one pass: the same results as n_mats backend_matmul calls. */
int backend_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                         int64_t n_tokens, larder_error *err);

/* y (n, dim) = x / sqrt(mean(x²) + eps) * w, row by row; y may be x. */
void backend_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps);

/* x (n, width) += bias (width), row by row. */
void backend_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width);

/* x[i] += y[i], i < n. */
void backend_add(backend *b, float *x, const float *y, int64_t n);

/* g[i] = silu(g[i]) * u[i], i < n; silu(x) = x * sigmoid(x). */
void backend_silu_mul(backend *b, float *g, const float *u, int64_t n);

/* Rotary embedding, in place, on x (n_tokens, n_heads, head_dim): for token t
 * at positions[t], the first n_rot dims of every head are rotated by angles
 * theta_i = positions[t] * inv_freq[i], i < n_rot/2, pairing (2i, 2i+1)
 * (neox = false) or (i, i + n_rot/2) (neox = true):
 *     (a, b) -> (a cos θ - b sin θ, a sin θ + b cos θ). */
void backend_rope(backend *b, float *x, const int32_t *positions, int64_t n_tokens, int32_t n_heads,
                  int32_t head_dim, int32_t n_rot, const float *inv_freq, bool neox);

/* One token's view of its sequence for the KV ops. */
typedef struct backend_kv_ref {
    int32_t pos;            /* the token's position; its K/V go to pages[pos / P] row pos % P */
    const uint32_t *pages;  /* its sequence's page table (covers pos) */
    int32_t keep_tokens;    /* rotating window (both 0: none): the token attends */
    int32_t window_tokens;  /* to j < keep_tokens and to pos-window_tokens < j <= pos */
} backend_kv_ref;

/* Stores K and V of n tokens, (n, n_kv_heads * head_dim) each, of `layer`
 * into their pages (converted or quantized to the pool's type; quantized
 * types rotated first, see cpu_ops_backend.c). Returns -1 only when scratch
 * cannot be allocated. */
int backend_kv_store(backend *b, kv_pool *pool, int32_t layer, const float *k, const float *v,
                     const backend_kv_ref *refs, int64_t n, larder_error *err);

/* Causal attention over pages. For token t and head h (kv head
 * h / (n_heads / n_kv_heads)):
 *     s_j = scale · q[t,h] · K_j   for j in [0, pos_t] of t's sequence
 *                                  (within its window, if it has one)
 *     out[t,h] = Σ_j softmax(s)_j · V_j       (softmax in f32)
 * q is first rounded to the precision K is stored in (f16, bf16, q8_0 for
 * q8_0 and q4_0 K) and the softmax weights to V's (f16, bf16), as
 * llama.cpp's CPU attention does, so results match it, not merely come
 * close. Every K/V row a token attends to must have been stored. Pages wholly
 * outside a token's window are never read (the caller may have freed them).
 * q, out: (n, n_heads * head_dim); head_dim from the pool. Returns -1 only
 * when scratch cannot be allocated. */
int backend_attention(backend *b, const kv_pool *pool, int32_t layer, const float *q, const backend_kv_ref *refs,
                      int64_t n, int32_t n_heads, float scale, float *out, larder_error *err);

/* Row `row` of a (rows, cols) matrix of wtype, dequantized to f32 dst (cols). */
void backend_get_row(const void *w, uint32_t wtype, int64_t cols, int64_t row, float *dst);

#endif
