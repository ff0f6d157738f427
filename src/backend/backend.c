/*
 * backend.c — the backend registry (backend_create by name) and the thin
 * dispatchers of backend.h: each calls its entry of the backend's ops table
 * (backend_impl.h). No computation here.
 */
#include "backend/backend_impl.h"

#include <string.h>

/* The backends this binary has, by name. */
typedef struct backend_entry {
    const char *name;
    backend *(*create)(const backend_options *opt, larder_error *err);
} backend_entry;

static const backend_entry BACKENDS[] = {
    {"cpu", backend_cpu_create},
};

backend *backend_create(const char *name, const backend_options *opt, larder_error *err) {
    if (!name) name = "cpu";
    for (size_t i = 0; i < sizeof BACKENDS / sizeof BACKENDS[0]; i++)
        if (!strcmp(BACKENDS[i].name, name)) return BACKENDS[i].create(opt, err);
    error_set(err, ERR_UNSUPPORTED, "backend '%.32s' is not in this build (it has: cpu)", name);
    return NULL;
}

void backend_free(backend *b) {
    if (b) b->ops->free(b);
}

const char *backend_name(const backend *b) { return b->ops->name; }

int backend_upload_weight(backend *b, const void *data, size_t bytes, const void **dev, larder_error *err) {
    return b->ops->upload_weight(b, data, bytes, dev, err);
}

void *backend_buffer_alloc(backend *b, size_t bytes, larder_error *err) { return b->ops->buffer_alloc(b, bytes, err); }
void backend_buffer_free(backend *b, void *buf) {
    if (buf) b->ops->buffer_free(b, buf);
}
int backend_buffer_read(backend *b, void *host_dst, const void *buf, size_t bytes, larder_error *err) {
    return b->ops->buffer_read(b, host_dst, buf, bytes, err);
}
int backend_buffer_write(backend *b, void *buf, const void *host_src, size_t bytes, larder_error *err) {
    return b->ops->buffer_write(b, buf, host_src, bytes, err);
}

size_t backend_kv_page_stride(const backend *b, size_t page_bytes) { return b->ops->kv_page_stride(b, page_bytes); }
backend_kv *backend_kv_create(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err) {
    return b->ops->kv_create(b, layout, n_pages, err);
}
void backend_kv_free(backend *b, backend_kv *kv) {
    if (kv) b->ops->kv_free(b, kv);
}
void backend_kv_page_release(backend *b, backend_kv *kv, uint32_t page) { b->ops->kv_page_release(b, kv, page); }
int backend_kv_page_copy(backend *b, backend_kv *kv, uint32_t dst, uint32_t src, larder_error *err) {
    return b->ops->kv_page_copy(b, kv, dst, src, err);
}
int backend_kv_page_read(backend *b, const backend_kv *kv, uint32_t page, void *host_dst, larder_error *err) {
    return b->ops->kv_page_read(b, kv, page, host_dst, err);
}
int backend_kv_page_write(backend *b, backend_kv *kv, uint32_t page, const void *host_src, larder_error *err) {
    return b->ops->kv_page_write(b, kv, page, host_src, err);
}

int backend_batch_set(backend *b, const backend_batch *batch, larder_error *err) {
    return b->ops->batch_set(b, batch, err);
}

int backend_get_rows(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err) {
    return b->ops->get_rows(b, w, wtype, cols, x, err);
}

int backend_matmul(backend *b, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const float *x,
                   int64_t n_tokens, float *y, larder_error *err) {
    backend_matmul_weight m = {w, wtype, rows, y};
    return b->ops->matmul_multi(b, &m, 1, cols, x, n_tokens, err);
}

int backend_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                         int64_t n_tokens, larder_error *err) {
    if (n_mats < 1 || n_mats > BACKEND_MATMUL_MAX_MATS)
        return error_set(err, ERR_INVALID, "matmul: %d matrices (1..%d allowed)", n_mats, BACKEND_MATMUL_MAX_MATS);
    return b->ops->matmul_multi(b, mats, n_mats, cols, x, n_tokens, err);
}

int backend_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps,
                    larder_error *err) {
    return b->ops->rmsnorm(b, x, w, y, n, dim, eps, err);
}
int backend_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width, larder_error *err) {
    return b->ops->add_bias(b, x, bias, n, width, err);
}
int backend_add(backend *b, float *x, const float *y, int64_t n, larder_error *err) { return b->ops->add(b, x, y, n, err); }
int backend_silu_mul(backend *b, float *g, const float *u, int64_t n, larder_error *err) {
    return b->ops->silu_mul(b, g, u, n, err);
}
int backend_rope(backend *b, float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                 const backend_rope_freqs *freqs, bool neox, larder_error *err) {
    return b->ops->rope(b, x, n_heads, head_dim, n_rot, freqs, neox, err);
}
int backend_kv_store(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err) {
    return b->ops->kv_store(b, kv, layer, k, v, err);
}
int backend_attention(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                      float *out, larder_error *err) {
    return b->ops->attention(b, kv, layer, q, n_heads, scale, out, err);
}
int backend_get_out_rows(backend *b, const float *x, float *dst, int64_t width, larder_error *err) {
    return b->ops->get_out_rows(b, x, dst, width, err);
}
int backend_sync(backend *b, larder_error *err) { return b->ops->sync(b, err); }

int backend_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                      int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err) {
    if (!b->ops->moe_route)
        return error_set(err, ERR_UNSUPPORTED, "the %s backend has no mixture-of-experts routing", b->ops->name);
    if (n_tokens < 0 || n_expert < 1 || k < 1 || k > n_expert || k > BACKEND_MOE_MAX_USED)
        return error_set(err, ERR_INVALID, "moe routing: %lld tokens, top %d of %d experts (at most %d)",
                         (long long)n_tokens, k, n_expert, BACKEND_MOE_MAX_USED);
    return b->ops->moe_route(b, logits, sel_bias, n_tokens, n_expert, k, gating, ids, weights, err);
}

int backend_moe_ffn(backend *b, const backend_moe_experts *experts, const float *x, const int32_t *ids,
                    const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err) {
    if (!b->ops->moe_ffn)
        return error_set(err, ERR_UNSUPPORTED, "the %s backend has no mixture-of-experts feed-forward", b->ops->name);
    if (n_tokens < 0 || k < 1 || k > BACKEND_MOE_MAX_USED || experts->n_expert < 1 || experts->dim < 1 ||
        experts->ff < 1)
        return error_set(err, ERR_INVALID, "moe ffn: %lld tokens, %d experts each, %d experts of %lld x %lld",
                         (long long)n_tokens, k, experts->n_expert, (long long)experts->ff, (long long)experts->dim);
    return b->ops->moe_ffn(b, experts, x, ids, weights, n_tokens, k, out, err);
}
