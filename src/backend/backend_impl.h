/*
 * backend_impl.h — what a backend implements: the ops table behind the
 * dispatchers of backend.h. Only backend implementations (src/backend/cpu,
 * later src/backend/cuda) and backend.c include this.
 *
 * An implementation's object starts with `struct backend` (its ops table),
 * so a `backend *` is a pointer to it:
 *     typedef struct cpu_backend { backend base; ... } cpu_backend;
 * Every entry is required unless marked optional; each has the contract of
 * the backend.h function of the same name.
 */
#ifndef LARDER_BACKEND_BACKEND_IMPL_H
#define LARDER_BACKEND_BACKEND_IMPL_H

#include "backend/backend.h"

typedef struct backend_ops {
    const char *name;
    void (*free)(backend *b);
    /* memory */
    int (*upload_weight)(backend *b, const void *data, size_t bytes, const void **dev, larder_error *err);
    void *(*buffer_alloc)(backend *b, size_t bytes, larder_error *err);
    void (*buffer_free)(backend *b, void *buf);
    int (*buffer_read)(backend *b, void *host_dst, const void *buf, size_t bytes, larder_error *err);
    int (*buffer_write)(backend *b, void *buf, const void *host_src, size_t bytes, larder_error *err);
    size_t (*kv_page_stride)(const backend *b, size_t page_bytes);
    backend_kv *(*kv_create)(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err);
    void (*kv_free)(backend *b, backend_kv *kv);
    void (*kv_page_release)(backend *b, backend_kv *kv, uint32_t page);
    int (*kv_page_copy)(backend *b, backend_kv *kv, uint32_t dst, uint32_t src, larder_error *err);
    int (*kv_page_read)(backend *b, const backend_kv *kv, uint32_t page, void *host_dst, larder_error *err);
    int (*kv_page_write)(backend *b, backend_kv *kv, uint32_t page, const void *host_src, larder_error *err);
    /* the step */
    int (*batch_set)(backend *b, const backend_batch *batch, larder_error *err);
    /* ops */
    int (*get_rows)(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err);
    int (*matmul_multi)(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                        int64_t n_tokens, larder_error *err);
    int (*rmsnorm)(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps,
                   larder_error *err);
    int (*add_bias)(backend *b, float *x, const float *bias, int64_t n, int64_t width, larder_error *err);
    int (*add)(backend *b, float *x, const float *y, int64_t n, larder_error *err);
    int (*silu_mul)(backend *b, float *g, const float *u, int64_t n, larder_error *err);
    int (*rope)(backend *b, float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot, const backend_rope_freqs *freqs,
                bool neox, larder_error *err);
    int (*kv_store)(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err);
    int (*attention)(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                     float *out, larder_error *err);
    int (*get_out_rows)(backend *b, const float *x, float *dst, int64_t width, larder_error *err);
    int (*sync)(backend *b, larder_error *err);
    /* mixture of experts: may be NULL (the dispatchers answer ERR_UNSUPPORTED) */
    int (*moe_route)(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                     int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err);
    int (*moe_ffn)(backend *b, const backend_moe_experts *experts, const float *x, const int32_t *ids,
                   const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err);
} backend_ops;

struct backend {
    const backend_ops *ops;
};

/* Constructors of the implementations this binary has (backend.c's
 * registry calls them by name). */
backend *backend_cpu_create(const backend_options *opt, larder_error *err);

#endif
