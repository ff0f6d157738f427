/*
 * cpu_ops_backend.c — the CPU implementation of backend.h.
 *
 * Matmuls go to the quantized dot kernels (cpu_kernels.h) on the thread pool.
 * Attention is split over (token, head) pairs, dealt round-robin to the
 * threads so causal prefill (later tokens attend to more) stays balanced;
 * each thread has its own score buffer, grown to the longest sequence seen.
 * Norms, rope and elementwise ops are cheap next to the matmuls and run on
 * the calling thread.
 */
#include "backend/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "base/thread_pool.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"


struct backend {
    thread_pool *pool;
    int n_threads;
    const cpu_vec_kernels *vk;
    float **scores;          /* (n_threads) each (scores_group, scores_cap) */
    int64_t scores_cap;      /* positions per head */
    int64_t scores_group;    /* query heads per KV head */
    float **qbuf;            /* (n_threads) each (qbuf_elems): a group's rounded queries */
    int64_t qbuf_elems;
    void *act;               /* matmul: quantized activation rows */
    size_t act_bytes;
};

backend *backend_cpu_create(int n_threads, larder_error *err) {
    backend *b = calloc(1, sizeof *b);
    if (!b) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    b->pool = thread_pool_create(n_threads, err);
    b->scores = calloc((size_t)(n_threads > 0 ? n_threads : 1), sizeof *b->scores);
    b->qbuf = calloc((size_t)(n_threads > 0 ? n_threads : 1), sizeof *b->qbuf);
    if (!b->pool || !b->scores || !b->qbuf) {
        if (b->pool && (!b->scores || !b->qbuf)) error_set(err, ERR_NOMEM, "out of memory");
        backend_free(b);
        return NULL;
    }
    b->n_threads = n_threads;
    b->vk = cpu_vec_best();
    return b;
}

void backend_free(backend *b) {
    if (!b) return;
    thread_pool_destroy(b->pool);
    if (b->scores)
        for (int i = 0; i < b->n_threads; i++) free(b->scores[i]);
    free(b->scores);
    if (b->qbuf)
        for (int i = 0; i < b->n_threads; i++) free(b->qbuf[i]);
    free(b->qbuf);
    free(b->act);
    free(b);
}

int backend_n_threads(const backend *b) { return b->n_threads; }

/* ---- matmul */

/* Until cpu_matmul.h (the simd engineer's tiled matmul) lands: quantize
 * each activation row once with the active CPU level's quantizer, then per
 * weight row call its dot kernel on tiles of up to CPU_DOT_MAX_TOKENS
 * tokens (each weight block unpacked once per tile); rows split over the
 * threads. y[t][r] = W_r · x_t. */
typedef struct mm_task {
    const uint8_t *w;
    cpu_dot_fn dot;
    int64_t rows, cols, n_tokens;
    size_t w_row_bytes, a_row_bytes;
    const uint8_t *act;
    float *y;
} mm_task;

/* Weight rows in blocks of MM_ROW_BLOCK (a few KiB: they stay in L1/L2
 * while every token tile of the batch passes over them), so each weight
 * byte is read from memory once per matmul, not once per tile. */
#define MM_ROW_BLOCK 16

static void mm_run(void *ctx, int ti, int nt) {
    const mm_task *t = ctx;
    int64_t r0, r1;
    thread_pool_split(t->rows, ti, nt, &r0, &r1);
    float out[CPU_DOT_MAX_TOKENS];
    for (int64_t rb = r0; rb < r1; rb += MM_ROW_BLOCK) {
        int64_t re = rb + MM_ROW_BLOCK < r1 ? rb + MM_ROW_BLOCK : r1;
        for (int64_t k0 = 0; k0 < t->n_tokens; k0 += CPU_DOT_MAX_TOKENS) {
            int m = t->n_tokens - k0 < CPU_DOT_MAX_TOKENS ? (int)(t->n_tokens - k0) : CPU_DOT_MAX_TOKENS;
            for (int64_t r = rb; r < re; r++) {
                t->dot(t->cols, t->w + r * t->w_row_bytes, t->act + k0 * t->a_row_bytes, t->a_row_bytes, m, out);
                for (int j = 0; j < m; j++) t->y[(k0 + j) * t->rows + r] = out[j];
            }
        }
    }
}

int backend_matmul(backend *b, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const float *x,
                   int64_t n_tokens, float *y, larder_error *err) {
    const cpu_kernels *k = cpu_kernels_active();
    uint32_t at = quant_vec_dot_type(wtype);
    if (at == QUANT_NO_TYPE || wtype >= TYPE_COUNT_MAX || !k->dot[wtype] || !k->quantize[at])
        return error_set(err, ERR_UNSUPPORTED, "matmul: no kernel for type %u", wtype);
    size_t arb = tensor_row_bytes(at, cols);
    size_t need = arb * (size_t)n_tokens;
    if (need > b->act_bytes) {
        void *p = realloc(b->act, need);
        if (!p) return error_set(err, ERR_NOMEM, "out of memory (matmul activations)");
        b->act = p;
        b->act_bytes = need;
    }
    for (int64_t t = 0; t < n_tokens; t++) k->quantize[at](x + t * cols, (uint8_t *)b->act + t * arb, cols);
    mm_task t = {w, k->dot[wtype], rows, cols, n_tokens, tensor_row_bytes(wtype, cols), arb, b->act, y};
    thread_pool_run(b->pool, mm_run, &t);
    return 0;
}

/* ---- elementwise */

void backend_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps) {
    (void)b;
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *yr = y + t * dim;
        double ss = 0; /* mean of squares in double, as ggml sums in ggml_float */
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / (double)dim + eps));
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
}

void backend_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width) {
    (void)b;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < width; i++) x[t * width + i] += bias[i];
}

void backend_add(backend *b, float *x, const float *y, int64_t n) {
    (void)b;
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void backend_silu_mul(backend *b, float *g, const float *u, int64_t n) {
    (void)b;
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void backend_rope(backend *b, float *x, const int32_t *positions, int64_t n_tokens, int32_t n_heads,
                  int32_t head_dim, int32_t n_rot, const float *inv_freq, bool neox) {
    (void)b;
    int32_t half = n_rot / 2;
    /* cos/sin of each pair's angle, computed once per token for all heads:
     * small fixed stack arrays in chunks of 64 pairs. */
    enum { CHUNK = 64 };
    float c[CHUNK], s[CHUNK];
    for (int64_t t = 0; t < n_tokens; t++) {
        float pos = (float)positions[t];
        for (int32_t i0 = 0; i0 < half; i0 += CHUNK) {
            int32_t m = half - i0 < CHUNK ? half - i0 : CHUNK;
            for (int32_t i = 0; i < m; i++) {
                float theta = pos * inv_freq[i0 + i];
                c[i] = cosf(theta);
                s[i] = sinf(theta);
            }
            for (int32_t h = 0; h < n_heads; h++) {
                float *v = x + (t * n_heads + h) * (int64_t)head_dim;
                for (int32_t i = 0; i < m; i++) {
                    int32_t ia = neox ? i0 + i : 2 * (i0 + i), ib = neox ? i0 + i + half : 2 * (i0 + i) + 1;
                    float a = v[ia], bb = v[ib];
                    v[ia] = a * c[i] - bb * s[i];
                    v[ib] = a * s[i] + bb * c[i];
                }
            }
        }
    }
}

void backend_get_row(const void *w, uint32_t wtype, int64_t cols, int64_t row, float *dst) {
    dequantize_row(wtype, (const uint8_t *)w + (size_t)row * tensor_row_bytes(wtype, cols), dst, cols);
}

/* ---- KV */

void backend_kv_store(backend *b, kv_pool *pool, int32_t layer, const float *k, const float *v,
                      const backend_kv_ref *refs, int64_t n) {
    const kv_pool_config *c = kv_pool_get_config(pool);
    int32_t P = c->page_tokens, D = c->head_dim, H = c->n_kv_heads;
    for (int64_t t = 0; t < n; t++) {
        uint32_t page = refs[t].pages[refs[t].pos / P];
        int32_t slot = refs[t].pos % P;
        for (int32_t h = 0; h < H; h++) {
            const float *ks = k + (t * H + h) * (int64_t)D, *vs = v + (t * H + h) * (int64_t)D;
            if (c->kv_type == TYPE_F16) {
                b->vk->f32_to_f16((uint16_t *)kv_pool_k(pool, page, layer, h) + (size_t)slot * D, ks, D);
                b->vk->f32_to_f16((uint16_t *)kv_pool_v(pool, page, layer, h) + (size_t)slot * D, vs, D);
            } else {
                memcpy((float *)kv_pool_k(pool, page, layer, h) + (size_t)slot * D, ks, (size_t)D * 4);
                memcpy((float *)kv_pool_v(pool, page, layer, h) + (size_t)slot * D, vs, (size_t)D * 4);
            }
        }
    }
}

typedef struct attn_task {
    backend *b;
    const kv_pool *pool;
    int32_t layer, n_heads;
    float scale;
    const float *q;
    const backend_kv_ref *refs;
    int64_t n;
    float *out;
} attn_task;

/*
 * One task = one token and one KV head: the `group` query heads that share
 * that KV head are computed together, so each K and V row is read from the
 * pool once per group (while it is in L1) instead of once per query head.
 * For query head g of the group:
 *   s_gj = scale * q_g·K_j (j <= pos);  p_g = softmax(s_g);  o_g = Σ_j p_gj V_j
 * With an f16 cache, q and the softmax weights are rounded to f16 before
 * their products with K and V, as llama.cpp's CPU attention does (its matmuls
 * convert the f32 operand to the f16 one's type): the same numbers, not
 * merely close ones. Scores of the group live in this thread's scratch:
 * (group, scores_cap) floats.
 */
static void attn_run(void *ctx, int ti, int nt) {
    const attn_task *a = ctx;
    const kv_pool_config *c = kv_pool_get_config(a->pool);
    const cpu_vec_kernels *vk = a->b->vk;
    int32_t P = c->page_tokens, D = c->head_dim, n_kv = c->n_kv_heads, group = a->n_heads / n_kv;
    bool f16 = c->kv_type == TYPE_F16;
    size_t esz = f16 ? 2 : 4;
    int64_t cap = a->b->scores_cap;
    float *scores = a->b->scores[ti];           /* (group, cap) */
    float *qg = a->b->qbuf[ti];                 /* (group, D) rounded queries */
    for (int64_t task = ti; task < a->n * n_kv; task += nt) {
        int64_t t = task / n_kv;
        int32_t kvh = (int32_t)(task % n_kv);
        int32_t len = a->refs[t].pos + 1;
        const uint32_t *pages = a->refs[t].pages;
        for (int32_t g = 0; g < group; g++) {
            const float *q = a->q + (t * a->n_heads + kvh * group + g) * (int64_t)D;
            for (int32_t d = 0; d < D; d++) qg[g * D + d] = f16 ? fp16_to_f32(f32_to_fp16(q[d])) : q[d];
        }
        /* s_gj = scale * q_g·K_j, page by page */
        for (int32_t j0 = 0; j0 < len; j0 += P) {
            const uint8_t *K = kv_pool_k(a->pool, pages[j0 / P], a->layer, kvh);
            int32_t m = len - j0 < P ? len - j0 : P;
            for (int32_t j = 0; j < m; j++) {
                const void *krow = K + (size_t)j * D * esz;
                for (int32_t g = 0; g < group; g++) {
                    float d = f16 ? vk->dot_f32_f16(qg + g * D, krow, D) : vk->dot_f32_f32(qg + g * D, krow, D);
                    scores[g * cap + j0 + j] = d * a->scale;
                }
            }
        }
        /* softmax per head (f32), weights normalised in place */
        for (int32_t g = 0; g < group; g++) {
            float *s = scores + g * cap, mx = -INFINITY, sum = 0;
            for (int32_t j = 0; j < len; j++)
                if (s[j] > mx) mx = s[j];
            for (int32_t j = 0; j < len; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            float inv = 1.0f / sum;
            for (int32_t j = 0; j < len; j++) {
                float p = s[j] * inv;
                s[j] = f16 ? fp16_to_f32(f32_to_fp16(p)) : p;
            }
            memset(a->out + (t * a->n_heads + kvh * group + g) * (int64_t)D, 0, (size_t)D * sizeof(float));
        }
        /* o_g = Σ_j p_gj V_j */
        for (int32_t j0 = 0; j0 < len; j0 += P) {
            const uint8_t *V = kv_pool_v(a->pool, pages[j0 / P], a->layer, kvh);
            int32_t m = len - j0 < P ? len - j0 : P;
            for (int32_t j = 0; j < m; j++) {
                const void *vrow = V + (size_t)j * D * esz;
                for (int32_t g = 0; g < group; g++) {
                    float *o = a->out + (t * a->n_heads + kvh * group + g) * (int64_t)D;
                    float p = scores[g * cap + j0 + j];
                    if (f16) vk->axpy_f16(o, p, vrow, D);
                    else vk->axpy_f32(o, p, vrow, D);
                }
            }
        }
    }
}

int backend_attention(backend *b, const kv_pool *pool, int32_t layer, const float *q, const backend_kv_ref *refs,
                      int64_t n, int32_t n_heads, float scale, float *out, larder_error *err) {
    int64_t longest = 0;
    for (int64_t t = 0; t < n; t++)
        if (refs[t].pos + 1 > longest) longest = refs[t].pos + 1;
    const kv_pool_config *c = kv_pool_get_config(pool);
    if (n_heads < c->n_kv_heads || n_heads % c->n_kv_heads)
        return error_set(err, ERR_INVALID, "attention: %d query heads do not group over %d KV heads", n_heads, c->n_kv_heads);
    int64_t group = n_heads / c->n_kv_heads;
    if (longest > b->scores_cap || group > b->scores_group || (int64_t)c->head_dim * group > b->qbuf_elems) {
        int64_t cap = b->scores_cap ? b->scores_cap : 256;
        while (cap < longest) cap *= 2;
        int64_t grp = group > b->scores_group ? group : b->scores_group;
        int64_t qn = (int64_t)c->head_dim * grp > b->qbuf_elems ? (int64_t)c->head_dim * grp : b->qbuf_elems;
        for (int i = 0; i < b->n_threads; i++) {
            float *p = realloc(b->scores[i], (size_t)(cap * grp) * sizeof *p);
            if (!p) return error_set(err, ERR_NOMEM, "out of memory (attention scores)");
            b->scores[i] = p;
            float *qb = realloc(b->qbuf[i], (size_t)qn * sizeof *qb);
            if (!qb) return error_set(err, ERR_NOMEM, "out of memory (attention queries)");
            b->qbuf[i] = qb;
        }
        b->scores_cap = cap;
        b->scores_group = grp;
        b->qbuf_elems = qn;
    }
    attn_task a = {b, pool, layer, n_heads, scale, q, refs, n, out};
    thread_pool_run(b->pool, attn_run, &a);
    return 0;
}
