/*
 * backend.h — the ops the model's forward pass calls, and the memory they
 * run on; nothing else the model knows about where they run. One interface,
 * several implementations (CPU now, CUDA next) held as an ops table, so
 * several backends can live in one binary; callers hold a `backend *` and
 * never name an implementation (see backend_create).
 *
 * Memory model (as ggml's buffer types, without a graph):
 *   - weights: backend_upload_weight gives the backend's pointer to a weight
 *     tensor once after load (CPU: the mmapped bytes themselves, no copy);
 *   - activations: buffers from backend_buffer_alloc, f32 row-major matrices
 *     "(n_tokens, width)"; backend_buffer_read/write move bytes to and from
 *     the host (CPU: memcpy);
 *   - KV pages: one region per pool (backend_kv_create), laid out as
 *     described at backend_kv_layout; the pool's bookkeeping (refcounts,
 *     budget, eviction) lives in src/kv, the bytes live here;
 *   - the step: backend_batch_set hands over the step's batch descriptor
 *     (token ids, positions, which sequence each token belongs to, the page
 *     table matrix) once per forward call; the ops that need positions or
 *     page tables read it from there, never from per-token host pointers.
 * Every op returns 0 or -1 with err set; a backend may run ops
 * asynchronously and report a failure at the next op or at backend_sync,
 * which ends every forward pass (after it, results are in host-visible
 * memory and may be read).
 *
 * A backend owns its compute threads or streams and its scratch, grown when
 * needed and reused, so a decode step allocates nothing.
 * Not thread-safe: one caller (the engine thread) at a time.
 */
#ifndef LARDER_BACKEND_BACKEND_H
#define LARDER_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct backend backend;

/* ---- creation */

typedef struct backend_options {
    int n_threads;          /* CPU compute threads, caller included (>= 1) */
    int device;             /* accelerator index (--gpu), 0 by default */
} backend_options;

/* The backend named `name` ("cpu"; NULL: "cpu"). ERR_UNSUPPORTED names the
 * backends this binary has when `name` is not one of them. */
backend *backend_create(const char *name, const backend_options *opt, larder_error *err);
void backend_free(backend *b);
/* "cpu", ... */
const char *backend_name(const backend *b);

/* ---- memory */

/* The backend's pointer to a weight tensor of `bytes` bytes at host `data`
 * (which stays valid for the backend's life: the model's mapping). */
int backend_upload_weight(backend *b, const void *data, size_t bytes, const void **dev, larder_error *err);

/* An activation buffer of `bytes` bytes (contents unspecified); free it
 * with backend_buffer_free. */
void *backend_buffer_alloc(backend *b, size_t bytes, larder_error *err);
void backend_buffer_free(backend *b, void *buf);
/* Host <-> buffer copies of `bytes` bytes; wait for pending ops first. */
int backend_buffer_read(backend *b, void *host_dst, const void *buf, size_t bytes, larder_error *err);
int backend_buffer_write(backend *b, void *buf, const void *host_src, size_t bytes, larder_error *err);

/*
 * KV page memory. A page holds K and V of page_tokens consecutive tokens of
 * one sequence for every layer:
 *
 *     [layer][K|V][kv_head][token_in_page][row of head_dim elements]
 *
 * so K (or V) of one (layer, kv_head) over the page's tokens is one
 * contiguous (page_tokens, row_bytes) matrix. A row is head_dim elements in
 * kv_type (f16, f32, bf16: 2/4/2 bytes each; q8_0, q4_0: head_dim/32 blocks
 * of 34/18 bytes, see src/tensor/dtype.h); quantized rows are stored
 * Walsh-Hadamard rotated (see backend_kv_store).
 */
typedef struct backend_kv_layout {
    int32_t n_layers, n_kv_heads, head_dim, page_tokens;
    uint32_t kv_type;
    size_t row_bytes;       /* tensor_row_bytes(kv_type, head_dim) */
    size_t page_bytes;      /* 2 · n_layers · n_kv_heads · page_tokens · row_bytes */
} backend_kv_layout;

typedef struct backend_kv backend_kv;

/* Bytes a page takes in the backend's memory (page_bytes rounded to what
 * it can free page by page: the OS page on CPU). */
size_t backend_kv_page_stride(const backend *b, size_t page_bytes);
/* A region of n_pages pages; memory may be committed only when a page is
 * first written. NULL with err when it cannot be reserved. */
backend_kv *backend_kv_create(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err);
void backend_kv_free(backend *b, backend_kv *kv);
/* A page's memory is no longer needed (its contents are lost; the backend
 * may return the memory to the OS). */
void backend_kv_page_release(backend *b, backend_kv *kv, uint32_t page);
/* Copies the whole page src into dst. */
int backend_kv_page_copy(backend *b, backend_kv *kv, uint32_t dst, uint32_t src, larder_error *err);
/* A whole page (page_bytes) to or from the host: tests and tools. */
int backend_kv_page_read(backend *b, const backend_kv *kv, uint32_t page, void *host_dst, larder_error *err);
int backend_kv_page_write(backend *b, backend_kv *kv, uint32_t page, const void *host_src, larder_error *err);

/* ---- the step's batch descriptor */

/* A page table entry whose page was dropped (behind a rotating window):
 * never read. */
#define BACKEND_NO_PAGE UINT32_MAX

typedef struct backend_batch {
    int32_t n_tokens;
    const int32_t *tokens;        /* (n_tokens) ids, for backend_get_rows */
    const int32_t *pos;           /* (n_tokens) position in its sequence */
    const int32_t *seq;           /* (n_tokens) its sequence: row of page_table */
    int32_t n_seqs;
    int32_t max_pages;            /* columns of page_table */
    const uint32_t *page_table;   /* (n_seqs, max_pages): page i of a sequence holds
                                   * positions [i·P, (i+1)·P); covers every pos */
    const int32_t *keep_tokens;   /* (n_seqs) rotating window (both 0: none): a token */
    const int32_t *window_tokens; /* at pos sees j < keep and pos - window < j <= pos */
    int32_t n_out;
    const int32_t *out_rows;      /* (n_out) tokens whose logits are wanted, ascending */
} backend_batch;

/* Hands the step's batch to the backend (copied or uploaded: the caller's
 * arrays may change after the call). The ops below that use tokens,
 * positions or pages read the last batch set. */
int backend_batch_set(backend *b, const backend_batch *batch, larder_error *err);

/* ---- ops (x, y, ...: buffers; n = the batch's n_tokens unless said) */

/* x (n_tokens, cols) = rows tokens[t] of w (rows, cols) of wtype, as f32. */
int backend_get_rows(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err);

/* y (n_tokens, rows) = x (n_tokens, cols) · Wᵀ, W = rows x cols of wtype
 * (row-major, tensor_row_bytes(wtype, cols) bytes per row). Activations are
 * quantized to the weight type's dot type internally (tensor/quant.h).
 * n_tokens here is the caller's (not the batch's). */
int backend_matmul(backend *b, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const float *x,
                   int64_t n_tokens, float *y, larder_error *err);

/* Most matrices one backend_matmul_multi call takes. */
#define BACKEND_MATMUL_MAX_MATS 8

/* One matrix of a fused call: y (n_tokens, rows) = x · Wᵀ. */
typedef struct backend_matmul_weight {
    const void *w;          /* (rows, cols) of wtype, row-major */
    uint32_t wtype;
    int64_t rows;
    float *y;               /* (n_tokens, rows) f32 */
} backend_matmul_weight;

/* Several matrices that share the input x (q, k, v; gate, up), computed in
 * one pass: the same results as n_mats backend_matmul calls. */
int backend_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                         int64_t n_tokens, larder_error *err);

/* y (n, dim) = x / sqrt(mean(x²) + eps) * w, row by row; y may be x.
 * n rows of dim (not necessarily the batch's tokens: per-head norms pass
 * n_tokens · heads rows of head_dim). */
int backend_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps,
                    larder_error *err);

/* x (n, width) += bias (width), row by row. */
int backend_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width, larder_error *err);

/* x[i] += y[i], i < n. */
int backend_add(backend *b, float *x, const float *y, int64_t n, larder_error *err);

/* g[i] = silu(g[i]) * u[i], i < n; silu(x) = x * sigmoid(x). */
int backend_silu_mul(backend *b, float *g, const float *u, int64_t n, larder_error *err);

/* Rope angles, computed as llama.cpp computes them (ggml_rope_cache_init)
 * so that both engines rotate q and k alike to the last bit (a quantized KV
 * cache turns a one-ulp difference in q or k into a different rounding of a
 * block scale): per token, the running angle starts at θ_0 = position and
 * steps θ_{i+1} = θ_i · theta_scale in f32, theta_scale = powf(freq_base,
 * -2.0f / n_rot); pair i turns by freq_scale · (θ_i / factors[i]). */
typedef struct backend_rope_freqs {
    float theta_scale;
    float freq_scale;       /* linear scaling: 1 / factor (1 without scaling) */
    const float *factors;   /* (n_rot / 2) divisors (a rope_freqs tensor), or NULL */
} backend_rope_freqs;

/* Rotary embedding, in place, on x (n_tokens, n_heads, head_dim): for token t
 * at the batch's pos[t], the first n_rot dims of every head are rotated by
 * the angles of `freqs`, pairing (2i, 2i+1) (neox = false) or (i, i + n_rot/2)
 * (neox = true), each with one rounding per multiply-add as ggml's compiled
 * code does it:
 *     (a, b) -> (fma(a, cos θ, -(b sin θ)), fma(a, sin θ, b cos θ)). */
int backend_rope(backend *b, float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                 const backend_rope_freqs *freqs, bool neox, larder_error *err);

/* Stores K and V of the batch's tokens, (n_tokens, n_kv_heads · head_dim)
 * each, of `layer` into their pages (page pos / P of their sequence, row
 * pos % P), converted to the KV type; quantized types (q8_0, q4_0) are
 * rotated first, as llama.cpp stores them: each chunk of n elements of a
 * head (K: the largest power of two >= 64 dividing head_dim; V: 64; head
 * sizes not a multiple of 64 unrotated) is multiplied by the orthonormal
 * Walsh-Hadamard matrix H_n, which spreads outliers over the chunk and
 * changes no dot product (q is rotated alike, the output rotated back). */
int backend_kv_store(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err);

/* Causal attention over pages. For token t and head h (kv head
 * h / (n_heads / n_kv_heads)):
 *     s_j = scale · q[t,h] · K_j   for j in [0, pos_t] of t's sequence
 *                                  (within its window, if it has one)
 *     out[t,h] = Σ_j softmax(s)_j · V_j       (softmax in f32)
 * On CPU q is first rounded to the precision K is stored in (f16, bf16, q8_0
 * for q8_0 and q4_0 K) and the softmax weights to V's (f16, bf16), as
 * llama.cpp's CPU attention does, so results match it, not merely come
 * close (another backend documents its own tolerance). Every K/V row a token
 * attends to must have been stored. Pages wholly outside a token's window
 * are never read. q, out: (n_tokens, n_heads · head_dim). */
int backend_attention(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                      float *out, larder_error *err);

/* dst (n_out, width) = rows out_rows[i] of x (n_tokens, width): the rows
 * whose logits are wanted. dst may be x. */
int backend_get_out_rows(backend *b, const float *x, float *dst, int64_t width, larder_error *err);

/* ---- mixture of experts (a backend may lack these: ERR_UNSUPPORTED) */

/* How router logits become expert scores. */
typedef enum backend_moe_gating { BACKEND_MOE_SOFTMAX, BACKEND_MOE_SIGMOID } backend_moe_gating;

/* Most experts one token may be routed to. */
#define BACKEND_MOE_MAX_USED 64

/*
 * Routing, as llama.cpp's build_moe_ffn does it, token by token:
 *     s = softmax(logits[t]) or sigmoid(logits[t])     (n_expert scores, f32)
 *     ids[t, 0..k) = the k experts with the largest s + sel_bias (sel_bias
 *                    NULL: s), largest first (ties: the lower id first)
 *     weights[t, j] = s[ids[t, j]] / max(Σ_j s[ids[t, j]], 2^-14)
 * The bias only chooses; the weights use the unbiased scores, renormalised
 * to sum 1 over the chosen experts. logits (n_tokens, n_expert); ids
 * (n_tokens, k) int32 and weights (n_tokens, k) f32 are buffers (the ids
 * stay on the backend for backend_moe_ffn). 1 <= k <= min(n_expert,
 * BACKEND_MOE_MAX_USED); n_tokens is the caller's.
 */
int backend_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                      int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err);

/* A layer's experts: three stacked matrices, expert e's rows at
 * [e·rows, (e+1)·rows) (the GGUF 3-D layout {cols, rows, n_expert}). */
typedef struct backend_moe_experts {
    const void *gate, *up;  /* n_expert x (ff, dim), of gate_type / up_type */
    const void *down;       /* n_expert x (dim, ff), of down_type */
    uint32_t gate_type, up_type, down_type;
    int32_t n_expert;
    int64_t dim, ff;
} backend_moe_experts;

/*
 * The expert feed-forward of routed tokens:
 *     out[t] = Σ_{j<k} weights[t,j] · W_down[e] · (silu(W_gate[e]·x[t]) * (W_up[e]·x[t])),  e = ids[t,j]
 * summed in j order (the order llama.cpp adds the experts' outputs in).
 * Only the chosen experts' rows are read. A backend runs each expert once
 * over all the tokens routed to it (a batched matmul over their gathered
 * rows), not one token at a time. x, out: (n_tokens, dim); ids, weights:
 * from backend_moe_route (an id outside [0, n_expert) is an error).
 */
int backend_moe_ffn(backend *b, const backend_moe_experts *experts, const float *x, const int32_t *ids,
                    const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err);

/* Waits until every op issued has finished; reports any failure. */
int backend_sync(backend *b, larder_error *err);

#endif
