/*
 * cpu_backend.c — the CPU implementation of backend.h: creation and the ops
 * table, memory (weights are the mmapped bytes themselves, buffers are host
 * memory), the step's batch, and the cheap ops (norms, rope, elementwise,
 * embedding rows). Matmuls go to cpu_matmul.h's driver (quantized dot
 * kernels on the thread pool; fused q/k/v and gate/up in one dispatch); KV
 * memory is cpu_kv_memory.c, KV store and attention cpu_attention.c.
 * Ops run synchronously on the calling thread and the pool, so sync has
 * nothing to wait for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend_internal.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

/* ---- memory */

static int cpu_upload_weight(backend *b, const void *data, size_t bytes, const void **dev, larder_error *err) {
    (void)b, (void)bytes, (void)err;
    *dev = data; /* the mapping is host memory: no copy */
    return 0;
}

static void *cpu_buffer_alloc(backend *b, size_t bytes, larder_error *err) {
    (void)b;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) error_set(err, ERR_NOMEM, "out of memory for a buffer of %zu bytes", bytes);
    return p;
}

static void cpu_buffer_free(backend *b, void *buf) {
    (void)b;
    free(buf);
}

static int cpu_buffer_read(backend *b, void *host_dst, const void *buf, size_t bytes, larder_error *err) {
    (void)b, (void)err;
    if (host_dst != buf) memmove(host_dst, buf, bytes);
    return 0;
}

static int cpu_buffer_write(backend *b, void *buf, const void *host_src, size_t bytes, larder_error *err) {
    (void)b, (void)err;
    if (buf != host_src) memmove(buf, host_src, bytes);
    return 0;
}

/* ---- the step's batch */

/* Grows *p to hold n elements of elem bytes (cap in elements; contents not
 * kept). */
static int grow_array(void **p, int64_t *cap, int64_t n, size_t elem, larder_error *err) {
    if (n <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    free(*p);
    *p = malloc((size_t)c * elem);
    if (!*p) {
        *cap = 0;
        return error_set(err, ERR_NOMEM, "out of memory for the batch descriptor");
    }
    *cap = c;
    return 0;
}

static int cpu_batch_set(backend *b, const backend_batch *in, larder_error *err) {
    cpu_batch *bt = &((cpu_backend *)b)->batch;
    if (in->n_tokens < 0 || in->n_seqs < 0 || in->max_pages < 0 || in->n_out < 0 || in->n_out > in->n_tokens)
        return error_set(err, ERR_INVALID, "batch: negative or inconsistent sizes");
    for (int32_t t = 0; t < in->n_tokens; t++)
        if (in->seq[t] < 0 || in->seq[t] >= in->n_seqs || in->pos[t] < 0)
            return error_set(err, ERR_INVALID, "batch: token %d has sequence %d of %d, position %d", t, in->seq[t],
                             in->n_seqs, in->pos[t]);
    for (int32_t i = 0; i < in->n_out; i++)
        if (in->out_rows[i] < 0 || in->out_rows[i] >= in->n_tokens || (i > 0 && in->out_rows[i] <= in->out_rows[i - 1]))
            return error_set(err, ERR_INVALID, "batch: output rows must ascend within the batch");
    int64_t cells = (int64_t)in->n_seqs * in->max_pages;
    /* tokens, pos, seq share one block of 3 x cap; keep, window one of 2 x cap */
    if (grow_array((void **)&bt->tokens, &bt->cap_tokens, 3 * (int64_t)in->n_tokens, sizeof *bt->tokens, err) ||
        grow_array((void **)&bt->keep_tokens, &bt->cap_seqs, 2 * (int64_t)in->n_seqs, sizeof *bt->keep_tokens, err) ||
        grow_array((void **)&bt->page_table, &bt->cap_pages, cells, sizeof *bt->page_table, err) ||
        grow_array((void **)&bt->out_rows, &bt->cap_out, in->n_out, sizeof *bt->out_rows, err))
        return -1;
    bt->pos = bt->tokens + in->n_tokens;
    bt->seq = bt->pos + in->n_tokens;
    bt->window_tokens = bt->keep_tokens + in->n_seqs;
    bt->n_tokens = in->n_tokens, bt->n_seqs = in->n_seqs, bt->max_pages = in->max_pages, bt->n_out = in->n_out;
    if (in->n_tokens) {
        memcpy(bt->tokens, in->tokens, (size_t)in->n_tokens * sizeof *bt->tokens);
        memcpy(bt->pos, in->pos, (size_t)in->n_tokens * sizeof *bt->pos);
        memcpy(bt->seq, in->seq, (size_t)in->n_tokens * sizeof *bt->seq);
    }
    if (cells) memcpy(bt->page_table, in->page_table, (size_t)cells * sizeof *bt->page_table);
    if (in->n_seqs) {
        memcpy(bt->keep_tokens, in->keep_tokens, (size_t)in->n_seqs * sizeof *bt->keep_tokens);
        memcpy(bt->window_tokens, in->window_tokens, (size_t)in->n_seqs * sizeof *bt->window_tokens);
    }
    if (in->n_out) memcpy(bt->out_rows, in->out_rows, (size_t)in->n_out * sizeof *bt->out_rows);
    return 0;
}

static void cpu_batch_free(cpu_batch *bt) {
    free(bt->tokens), free(bt->page_table), free(bt->keep_tokens), free(bt->out_rows);
}

/* ---- ops */

static int cpu_get_rows(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err) {
    const cpu_batch *bt = &((cpu_backend *)b)->batch;
    if (!quant_can_dequantize(wtype)) return error_set(err, ERR_UNSUPPORTED, "get_rows: type %u", wtype);
    size_t row_bytes = tensor_row_bytes(wtype, cols);
    for (int32_t t = 0; t < bt->n_tokens; t++)
        dequantize_row(wtype, (const uint8_t *)w + (size_t)bt->tokens[t] * row_bytes, x + (int64_t)t * cols, cols);
    return 0;
}

static int cpu_matmul_multi_op(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                               int64_t n_tokens, larder_error *err) {
    cpu_backend *c = (cpu_backend *)b;
    return cpu_matmul_multi(c->mm, c->pool, mats, n_mats, cols, x, n_tokens, err);
}

static int cpu_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps,
                       larder_error *err) {
    (void)b, (void)err;
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *yr = y + t * dim;
        /* ggml's rounding steps (ggml_compute_forward_rms_norm_f32), so the
         * two engines agree to the bit: each square rounded to f32, summed
         * in double, the mean rounded to f32, the scale computed in f32. */
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)(xr[i] * xr[i]);
        const float mean = (float)(ss / (double)dim);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
    return 0;
}

static int cpu_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width, larder_error *err) {
    (void)b, (void)err;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < width; i++) x[t * width + i] += bias[i];
    return 0;
}

static int cpu_add(backend *b, float *x, const float *y, int64_t n, larder_error *err) {
    (void)b, (void)err;
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
    return 0;
}

static int cpu_silu_mul(backend *b, float *g, const float *u, int64_t n, larder_error *err) {
    (void)b, (void)err;
    cpu_silu_mul_f32(g, u, n);
    return 0;
}

static int cpu_rope(backend *b, float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                    const backend_rope_freqs *freqs, bool neox, larder_error *err) {
    (void)err;
    const cpu_batch *bt = &((cpu_backend *)b)->batch;
    int32_t half = n_rot / 2;
    /* cos/sin of each pair's angle, computed once per token for all heads:
     * small fixed stack arrays in chunks of 64 pairs; the running angle
     * carries over from chunk to chunk (backend_rope_freqs). */
    enum { CHUNK = 64 };
    float c[CHUNK], s[CHUNK];
    for (int64_t t = 0; t < bt->n_tokens; t++) {
        float theta = (float)bt->pos[t];
        for (int32_t i0 = 0; i0 < half; i0 += CHUNK) {
            int32_t m = half - i0 < CHUNK ? half - i0 : CHUNK;
            for (int32_t i = 0; i < m; i++) {
                float angle = freqs->freq_scale * (freqs->factors ? theta / freqs->factors[i0 + i] : theta);
                c[i] = cosf(angle);
                s[i] = sinf(angle);
                theta *= freqs->theta_scale;
            }
            for (int32_t h = 0; h < n_heads; h++) {
                float *v = x + (t * n_heads + h) * (int64_t)head_dim;
                for (int32_t i = 0; i < m; i++) {
                    int32_t ia = neox ? i0 + i : 2 * (i0 + i), ib = neox ? i0 + i + half : 2 * (i0 + i) + 1;
                    float a = v[ia], bb = v[ib];
                    v[ia] = fmaf(a, c[i], -(bb * s[i]));
                    v[ib] = fmaf(a, s[i], bb * c[i]);
                }
            }
        }
    }
    return 0;
}

static int cpu_get_out_rows(backend *b, const float *x, float *dst, int64_t width, larder_error *err) {
    (void)err;
    const cpu_batch *bt = &((cpu_backend *)b)->batch;
    /* rows ascend, so copying forward in place never overwrites a row still to be read */
    for (int32_t i = 0; i < bt->n_out; i++)
        if (dst + i * width != x + (int64_t)bt->out_rows[i] * width)
            memmove(dst + i * width, x + (int64_t)bt->out_rows[i] * width, (size_t)width * sizeof(float));
    return 0;
}

static int cpu_sync(backend *b, larder_error *err) {
    (void)b, (void)err;
    return 0;
}

/* ---- creation */

static void cpu_free(backend *b) {
    cpu_backend *c = (cpu_backend *)b;
    thread_pool_destroy(c->pool);
    cpu_attention_free(c);
    cpu_moe_free(c);
    cpu_matmul_ctx_free(c->mm);
    cpu_batch_free(&c->batch);
    free(c);
}

static const backend_ops CPU_OPS = {
    .name = "cpu",
    .free = cpu_free,
    .upload_weight = cpu_upload_weight,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_read = cpu_buffer_read,
    .buffer_write = cpu_buffer_write,
    .kv_page_stride = cpu_kv_page_stride,
    .kv_create = cpu_kv_create,
    .kv_free = cpu_kv_free,
    .kv_page_release = cpu_kv_page_release,
    .kv_page_copy = cpu_kv_page_copy,
    .kv_page_read = cpu_kv_page_read,
    .kv_page_write = cpu_kv_page_write,
    .batch_set = cpu_batch_set,
    .get_rows = cpu_get_rows,
    .matmul_multi = cpu_matmul_multi_op,
    .rmsnorm = cpu_rmsnorm,
    .add_bias = cpu_add_bias,
    .add = cpu_add,
    .silu_mul = cpu_silu_mul,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .get_out_rows = cpu_get_out_rows,
    .sync = cpu_sync,
    .moe_route = cpu_moe_route,
    .moe_ffn = cpu_moe_ffn,
};

backend *backend_cpu_create(const backend_options *opt, larder_error *err) {
    int n_threads = opt && opt->n_threads > 0 ? opt->n_threads : 1;
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base.ops = &CPU_OPS;
    c->n_threads = n_threads;
    c->vk = cpu_vec_best();
    c->pool = thread_pool_create(n_threads, err);
    c->attn = calloc((size_t)n_threads, sizeof *c->attn);
    c->mm = c->pool ? cpu_matmul_ctx_create(err) : NULL;
    if (!c->pool || !c->attn || !c->mm) {
        if (c->pool && c->mm) error_set(err, ERR_NOMEM, "out of memory");
        cpu_free(&c->base);
        return NULL;
    }
    return &c->base;
}
