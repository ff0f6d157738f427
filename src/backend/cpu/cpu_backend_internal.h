/*
 * cpu_backend_internal.h — the CPU backend's object, shared by its files:
 * cpu_backend.c (creation, memory, the step's batch, elementwise ops, rope,
 * matmul dispatch), cpu_kv_memory.c (the KV page region) and
 * cpu_attention.c (KV store and paged attention), cpu_moe.c (mixture of
 * experts). Not for use outside
 * src/backend/cpu.
 */
#ifndef LARDER_BACKEND_CPU_CPU_BACKEND_INTERNAL_H
#define LARDER_BACKEND_CPU_CPU_BACKEND_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "backend/backend_impl.h"
#include "backend/cpu/cpu_matmul.h"
#include "backend/cpu/cpu_ops.h"
#include "base/thread_pool.h"

/* One compute thread's attention scratch (rows = a tile's query rows). */
typedef struct attn_scratch {
    float *scores;           /* (scores_rows, scores_cap) scores, then softmax weights */
    float *q;                /* (scores_rows, D) the tile's rounded queries */
    float *o;                /* (scores_rows, D) outputs being summed */
    float *kt;               /* (D, CPU_ATTN_KEY_BLOCK) a key block, f32, transposed */
    float *vf;               /* (CPU_ATTN_KEY_BLOCK, D) a value block, f32 */
    void *qtmp;              /* a query row as q8_0 (rounding for q8_0/q4_0 K) */
} attn_scratch;

/* The step's batch (backend_batch), copied into arrays the backend owns. */
typedef struct cpu_batch {
    int32_t n_tokens, n_seqs, max_pages, n_out;
    int32_t *tokens, *pos, *seq;       /* (n_tokens) each; one allocation at tokens */
    uint32_t *page_table;              /* (n_seqs, max_pages) */
    int32_t *keep_tokens, *window_tokens; /* (n_seqs) each; one allocation at keep_tokens */
    int32_t *out_rows;                 /* (n_out) */
    int64_t cap_tokens, cap_seqs, cap_pages, cap_out; /* elements allocated at each block */
} cpu_batch;

typedef struct cpu_backend {
    backend base;            /* ops table: first, so a backend * points here */
    thread_pool *pool;
    int n_threads;
    const cpu_vec_kernels *vk;
    cpu_matmul_ctx *mm;      /* matmul scratch (quantized activations) */
    cpu_batch batch;
    /* attention (cpu_attention.c) */
    attn_scratch *attn;      /* (n_threads) */
    int64_t scores_rows, scores_cap;
    int32_t scratch_dim;     /* head_dim the scratch was sized for */
    struct attn_tile *tiles; /* (tiles_cap) a batch cut into tiles */
    int64_t tiles_cap;
    float *rot_row;          /* (rot_row_elems) kv_store: K and V rows being rotated */
    size_t rot_row_elems;
    /* mixture of experts (cpu_moe.c): scratch grown to the largest step */
    float *moe_scores;       /* (moe_scores_cap) one token's expert scores */
    size_t moe_scores_cap;
    int64_t *moe_idx;        /* (moe_idx_cap) per-expert counts and runs, each assignment's row */
    size_t moe_idx_cap;
    float *moe_buf;          /* (moe_buf_cap) gathered inputs, gate, up, down outputs */
    size_t moe_buf_cap;
    cpu_matmul_part *moe_parts; /* (moe_parts_cap) the (expert, matrix) pairs of one call */
    size_t moe_parts_cap;
} cpu_backend;

/* g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + e^-x) (ggml's expression). */
static inline void cpu_silu_mul_f32(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* KV page memory on the host: a reserved mapping of n_pages pages of
 * stride_bytes (see backend_kv_layout for a page's layout). */
struct backend_kv {
    backend_kv_layout layout;
    uint8_t *base;           /* (n_pages, stride_bytes) */
    size_t stride_bytes;
    size_t head_bytes;       /* page_tokens · row_bytes: one (layer, K|V, head) block */
    uint32_t n_pages;
};

/* Start of K (kv = 0) or V (kv = 1) of (layer, kv_head) in a page:
 * page_tokens rows of row_bytes. No checks (hot path). */
static inline uint8_t *cpu_kv_block(const backend_kv *m, uint32_t page, int32_t layer, int kv, int32_t kv_head) {
    size_t block = ((size_t)layer * 2 + (size_t)kv) * (size_t)m->layout.n_kv_heads + (size_t)kv_head;
    return m->base + (size_t)page * m->stride_bytes + block * m->head_bytes;
}

/* cpu_kv_memory.c */
size_t cpu_kv_page_stride(const backend *b, size_t page_bytes);
backend_kv *cpu_kv_create(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err);
void cpu_kv_free(backend *b, backend_kv *kv);
void cpu_kv_page_release(backend *b, backend_kv *kv, uint32_t page);
int cpu_kv_page_copy(backend *b, backend_kv *kv, uint32_t dst, uint32_t src, larder_error *err);
int cpu_kv_page_read(backend *b, const backend_kv *kv, uint32_t page, void *host_dst, larder_error *err);
int cpu_kv_page_write(backend *b, backend_kv *kv, uint32_t page, const void *host_src, larder_error *err);

/* cpu_attention.c */
int cpu_kv_store(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err);
int cpu_attention(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                  float *out, larder_error *err);
void cpu_attention_free(cpu_backend *c);

/* cpu_moe.c */
int cpu_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                  int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err);
int cpu_moe_ffn(backend *b, const backend_moe_experts *experts, const float *x, const int32_t *ids,
                const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err);
void cpu_moe_free(cpu_backend *c);

#endif
