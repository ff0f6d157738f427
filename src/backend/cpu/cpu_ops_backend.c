/*
 * cpu_ops_backend.c — the CPU implementation of backend.h.
 *
 * Matmuls go to cpu_matmul.h's driver (quantized dot kernels on the thread
 * pool; fused q/k/v and gate/up in one dispatch).
 * Attention is split over (tile of a sequence's tokens, KV head) tasks,
 * dealt round-robin to the threads so causal prefill (later tokens attend to
 * more) stays balanced; each thread has its own scratch, grown to the
 * widest tile seen (see the comment above attn_run).
 * Norms, rope and elementwise ops are cheap next to the matmuls and run on
 * the calling thread.
 */
#include "backend/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_matmul.h"
#include "backend/cpu/cpu_ops.h"
#include "base/thread_pool.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"


/* One compute thread's attention scratch (rows = a tile's query rows). */
typedef struct attn_scratch {
    float *scores;           /* (scores_rows, scores_cap) scores, then softmax weights */
    float *q;                /* (scores_rows, D) the tile's rounded queries */
    float *o;                /* (scores_rows, D) outputs being summed */
    float *kt;               /* (D, CPU_ATTN_KEY_BLOCK) a key block, f32, transposed */
    float *vf;               /* (CPU_ATTN_KEY_BLOCK, D) a value block, f32 */
    void *qtmp;              /* a query row as q8_0 (rounding for q8_0/q4_0 K) */
} attn_scratch;

struct backend {
    thread_pool *pool;
    int n_threads;
    const cpu_vec_kernels *vk;
    attn_scratch *attn;      /* (n_threads) */
    int64_t scores_rows, scores_cap;
    int32_t scratch_dim;     /* head_dim the scratch was sized for */
    struct attn_tile *tiles; /* (tiles_cap) a batch cut into tiles */
    int64_t tiles_cap;
    float *rot_row;          /* (rot_row_elems) kv_store: K and V rows being rotated */
    size_t rot_row_elems;
    cpu_matmul_ctx *mm;      /* matmul scratch (quantized activations) */
};

backend *backend_cpu_create(int n_threads, larder_error *err) {
    backend *b = calloc(1, sizeof *b);
    if (!b) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    b->pool = thread_pool_create(n_threads, err);
    b->attn = calloc((size_t)(n_threads > 0 ? n_threads : 1), sizeof *b->attn);
    b->mm = b->pool ? cpu_matmul_ctx_create(err) : NULL;
    if (!b->pool || !b->attn || !b->mm) {
        if (b->pool && b->mm) error_set(err, ERR_NOMEM, "out of memory");
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
    if (b->attn)
        for (int i = 0; i < b->n_threads; i++) {
            attn_scratch *w = &b->attn[i];
            free(w->scores), free(w->q), free(w->o), free(w->kt), free(w->vf), free(w->qtmp);
        }
    free(b->attn);
    free(b->tiles);
    free(b->rot_row);
    cpu_matmul_ctx_free(b->mm);
    free(b);
}

int backend_n_threads(const backend *b) { return b->n_threads; }

/* ---- matmul: cpu_matmul.h is the one driver (fused matrices share one
 * quantization of x and one dispatch of the pool) */

int backend_matmul(backend *b, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const float *x,
                   int64_t n_tokens, float *y, larder_error *err) {
    return cpu_matmul(b->mm, b->pool, w, wtype, rows, cols, x, n_tokens, y, err);
}

int backend_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                         int64_t n_tokens, larder_error *err) {
    if (n_mats < 1 || n_mats > BACKEND_MATMUL_MAX_MATS)
        return error_set(err, ERR_INVALID, "matmul: %d matrices (1..%d allowed)", n_mats, BACKEND_MATMUL_MAX_MATS);
    cpu_matmul_weight m[BACKEND_MATMUL_MAX_MATS];
    for (int i = 0; i < n_mats; i++) m[i] = (cpu_matmul_weight){mats[i].w, mats[i].wtype, mats[i].rows, mats[i].y};
    return cpu_matmul_multi(b->mm, b->pool, m, n_mats, cols, x, n_tokens, err);
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

/*
 * Quantized KV (q8_0, q4_0) is stored rotated, as llama.cpp stores it: each
 * chunk of n elements of a head (n a power of two >= 64) is multiplied by
 * the orthonormal Walsh-Hadamard matrix H_n (Sylvester order, H_n = H_nᵀ =
 * H_n⁻¹). The rotation spreads a vector's outliers over its chunk, so the
 * 4- or 8-bit blocks lose less; it changes nothing else, because q is
 * rotated with K's chunk size (Hq·Hk = q·k) and the attention output is
 * rotated back with V's (Σ p_j H v_j = H Σ p_j v_j). K's chunk is the largest
 * power of two >= 64 dividing head_dim, V's is 64; head sizes that are not a
 * multiple of 64 are stored unrotated.
 */
static int32_t kv_rotation_k(uint32_t type, int32_t D) {
    if ((type != TYPE_Q8_0 && type != TYPE_Q4_0) || D % 64) return 0;
    int32_t n = 64;
    while (D % (2 * n) == 0) n *= 2;
    return n;
}

static int32_t kv_rotation_v(uint32_t type, int32_t D) {
    return (type != TYPE_Q8_0 && type != TYPE_Q4_0) || D % 64 ? 0 : 64;
}

/* x (D) = H_n x chunk by chunk (n = 0: unchanged), by the fast transform:
 * log2(n) butterfly passes (a, b) -> (a + b, a - b), then a 1/sqrt(n) scale. */
static void hadamard_rotate(float *x, int32_t D, int32_t n) {
    if (n == 0) return;
    const float scale = 1.0f / sqrtf((float)n);
    for (int32_t c0 = 0; c0 < D; c0 += n) {
        float *v = x + c0;
        for (int32_t h = 1; h < n; h *= 2)
            for (int32_t i = 0; i < n; i += 2 * h)
                for (int32_t j = i; j < i + h; j++) {
                    float a = v[j], bb = v[j + h];
                    v[j] = a + bb, v[j + h] = a - bb;
                }
        for (int32_t i = 0; i < n; i++) v[i] *= scale;
    }
}

int backend_kv_store(backend *b, kv_pool *pool, int32_t layer, const float *k, const float *v,
                     const backend_kv_ref *refs, int64_t n, larder_error *err) {
    const kv_pool_config *c = kv_pool_get_config(pool);
    int32_t P = c->page_tokens, D = c->head_dim, H = c->n_kv_heads;
    size_t row = kv_pool_get_row_bytes(pool);
    if ((size_t)2 * (size_t)D > b->rot_row_elems) {
        float *r = realloc(b->rot_row, (size_t)2 * (size_t)D * sizeof *r);
        if (!r) return error_set(err, ERR_NOMEM, "out of memory (KV rows)");
        b->rot_row = r, b->rot_row_elems = (size_t)2 * (size_t)D;
    }
    for (int64_t t = 0; t < n; t++) {
        uint32_t page = refs[t].pages[refs[t].pos / P];
        size_t off = (size_t)(refs[t].pos % P) * row;
        for (int32_t h = 0; h < H; h++) {
            const float *ks = k + (t * H + h) * (int64_t)D, *vs = v + (t * H + h) * (int64_t)D;
            uint8_t *kd = (uint8_t *)kv_pool_k(pool, page, layer, h) + off;
            uint8_t *vd = (uint8_t *)kv_pool_v(pool, page, layer, h) + off;
            if (c->kv_type == TYPE_F16) {
                b->vk->f32_to_f16((uint16_t *)kd, ks, D);
                b->vk->f32_to_f16((uint16_t *)vd, vs, D);
            } else if (c->kv_type == TYPE_F32) {
                memcpy(kd, ks, (size_t)D * 4);
                memcpy(vd, vs, (size_t)D * 4);
            } else if (c->kv_type == TYPE_BF16) {
                quantize_row_fast(c->kv_type, ks, kd, D);
                quantize_row_fast(c->kv_type, vs, vd, D);
            } else { /* q8_0, q4_0 (the pool checked the head size): rotated first */
                float *rk = b->rot_row, *rv = b->rot_row + D;
                memcpy(rk, ks, (size_t)D * sizeof(float));
                memcpy(rv, vs, (size_t)D * sizeof(float));
                hadamard_rotate(rk, D, kv_rotation_k(c->kv_type, D));
                hadamard_rotate(rv, D, kv_rotation_v(c->kv_type, D));
                quantize_row_fast(c->kv_type, rk, kd, D);
                quantize_row_fast(c->kv_type, rv, vd, D);
            }
        }
    }
    return 0;
}

/*
 * Attention is computed per task = (tile, KV head). A tile is a run of up to
 * tile_tokens consecutive tokens of one sequence (same page table,
 * consecutive positions); its rows are (token i, query head g of the KV
 * head's group), r = i·group + g, so every K and V row read from the pool
 * serves all rows of the tile: prefill reads each page once per tile instead
 * of once per token, and decode (one-token tiles) once per group.
 *
 * The keys a tile attends to are one or two ranges of positions (two when a
 * rotating window has opened a gap after the kept prefix); score column c of
 * a row maps to the keys of those ranges in order. Per task:
 *   1. q rows rounded to K's precision -> qbuf (rows, D)
 *   2. per key block (<= CPU_ATTN_KEY_BLOCK keys inside one page): K rows to
 *      f32, transposed into kt (D, KB) (8x8 register transposes); S[r][c..] = q_r · K_j
 *   3. per row: s = scale·S over its own keys (causal, window), softmax in
 *      f32, weights rounded to V's precision; keys it may not see get 0
 *   4. per key block: V rows to f32 -> vf (KB, D); O[r] += Σ_j S[r][j] V_j
 *   5. O rows scattered to out
 */
#define ATTN_TILE_ROWS 64     /* target rows (tokens x group) of one tile */

typedef struct attn_tile {
    int64_t t0;               /* first token of the batch in the tile */
    int32_t n_tokens;
    int32_t r0_end, r1_start; /* key ranges [0, r0_end) and [r1_start, last pos] */
} attn_tile;

typedef struct attn_task {
    backend *b;
    const kv_pool *pool;
    int32_t layer, n_heads;
    float scale;
    const float *q;
    const backend_kv_ref *refs;
    const attn_tile *tiles;
    int64_t n_tiles;
    float *out;
} attn_task;

/* Row `src` of the pool's type (D elements) as f32 in dst. */
static void kv_row_to_f32(const cpu_vec_kernels *vk, uint32_t type, const void *src, float *dst, int64_t D) {
    if (type == TYPE_F16) vk->f16_to_f32(dst, src, D);
    else if (type == TYPE_F32) memcpy(dst, src, (size_t)D * sizeof(float));
    else dequantize_row(type, src, dst, D);
}

/* x rounded in place to what a dot product with K of this type sees. */
static void round_query_for_k(const cpu_vec_kernels *vk, uint32_t k_type, float *x, int64_t D, void *tmp) {
    if (k_type == TYPE_F16)
        vk->scale_round(x, D, 1.0f, 1);
    else if (k_type == TYPE_BF16)
        for (int64_t d = 0; d < D; d++) x[d] = bf16_to_f32(f32_to_bf16(x[d]));
    else if (k_type == TYPE_Q8_0 || k_type == TYPE_Q4_0) { /* both dot with q8_0 activations */
        quantize_row_activation(TYPE_Q8_0, x, tmp, D);
        dequantize_row(TYPE_Q8_0, tmp, x, D);
    }
}

/* Keys in the block starting at key j: up to CPU_ATTN_KEY_BLOCK, not past
 * `end` nor past the end of j's page. */
static inline int32_t key_block_len(int32_t j, int32_t end, int32_t P) {
    int32_t nk = end - j, in_page = P - j % P;
    if (nk > CPU_ATTN_KEY_BLOCK) nk = CPU_ATTN_KEY_BLOCK;
    return nk < in_page ? nk : in_page;
}

static void attn_run(void *ctx, int ti, int nt) {
    enum { KB = CPU_ATTN_KEY_BLOCK };
    const attn_task *a = ctx;
    const kv_pool_config *c = kv_pool_get_config(a->pool);
    const cpu_vec_kernels *vk = a->b->vk;
    const int32_t P = c->page_tokens, D = c->head_dim, n_kv = c->n_kv_heads, group = a->n_heads / n_kv;
    const uint32_t type = c->kv_type;
    const size_t row_bytes = kv_pool_get_row_bytes(a->pool);
    const int64_t cap = a->b->scores_cap;
    attn_scratch *w = &a->b->attn[ti];
    for (int64_t task = ti; task < a->n_tiles * n_kv; task += nt) {
        const attn_tile *tile = &a->tiles[task / n_kv];
        const int32_t kvh = (int32_t)(task % n_kv);
        const backend_kv_ref *ref = &a->refs[tile->t0];
        const int32_t rows = tile->n_tokens * group, last = ref[tile->n_tokens - 1].pos;
        const int32_t r_beg[2] = {0, tile->r1_start}, r_end[2] = {tile->r0_end, last + 1};
        /* 1. queries */
        for (int32_t i = 0; i < tile->n_tokens; i++)
            for (int32_t g = 0; g < group; g++) {
                float *qr = w->q + (int64_t)(i * group + g) * D;
                memcpy(qr, a->q + ((tile->t0 + i) * a->n_heads + kvh * group + g) * (int64_t)D, (size_t)D * sizeof(float));
                hadamard_rotate(qr, D, kv_rotation_k(type, D));
                round_query_for_k(vk, type, qr, D, w->qtmp);
            }
        /* 2. S = Q·Kᵀ by key blocks */
        int64_t col = 0;
        for (int rg = 0; rg < 2; rg++)
            for (int32_t j = r_beg[rg]; j < r_end[rg];) {
                int32_t nk = key_block_len(j, r_end[rg], P);
                const uint8_t *K = (const uint8_t *)kv_pool_k(a->pool, ref->pages[j / P], a->layer, kvh) +
                                   (size_t)(j % P) * row_bytes;
                if (type == TYPE_F16) {
                    vk->kt_from_f16(w->kt, (const uint16_t *)K, D, nk, D);
                } else if (type == TYPE_F32) {
                    vk->kt_from_f32(w->kt, (const float *)K, D, nk, D);
                } else { /* rows to f32 first */
                    for (int32_t jj = 0; jj < nk; jj++) kv_row_to_f32(vk, type, K + (size_t)jj * row_bytes, w->vf + jj * D, D);
                    vk->kt_from_f32(w->kt, w->vf, D, nk, D);
                }
                vk->attn_scores(w->scores + col, cap, w->q, D, rows, w->kt, nk, D);
                col += nk, j += nk;
            }
        /* 3. softmax of each row over the keys it sees: one or two spans
         * of columns, [0, keep) and [window start, pos] mapped to columns;
         * the other columns get weight 0 */
        for (int32_t r = 0; r < rows; r++) {
            const backend_kv_ref *tr = &ref[r / group];
            float *s = w->scores + (int64_t)r * cap;
            int32_t lo = tr->window_tokens > 0 ? tr->pos - tr->window_tokens + 1 : 0;
            int64_t span[2][2]; /* column [begin, end) */
            int n_span;
            if (lo <= tr->keep_tokens) { /* no gap for this token: keys [0, pos] */
                span[0][0] = 0, span[0][1] = tr->pos + 1, n_span = 1;
            } else {                     /* keys [0, keep) and [lo, pos] */
                span[0][0] = 0, span[0][1] = tr->keep_tokens;
                int64_t base = tile->r0_end > 0 ? tile->r0_end - tile->r1_start : 0; /* column of key j: j + base */
                span[1][0] = lo + base, span[1][1] = tr->pos + 1 + base, n_span = 2;
            }
            float mx = -INFINITY, sum = 0;
            for (int k = 0; k < n_span; k++) {
                float m = vk->scale_max(s + span[k][0], span[k][1] - span[k][0], a->scale);
                if (m > mx) mx = m;
            }
            for (int k = 0; k < n_span; k++) sum += vk->exp_sum(s + span[k][0], span[k][1] - span[k][0], mx);
            int64_t prev = 0;
            for (int k = 0; k < n_span; k++) {
                memset(s + prev, 0, (size_t)(span[k][0] - prev) * sizeof(float));
                vk->scale_round(s + span[k][0], span[k][1] - span[k][0], 1.0f / sum, type == TYPE_F16);
                if (type == TYPE_BF16)
                    for (int64_t c2 = span[k][0]; c2 < span[k][1]; c2++) s[c2] = bf16_to_f32(f32_to_bf16(s[c2]));
                prev = span[k][1];
            }
            memset(s + prev, 0, (size_t)(col - prev) * sizeof(float));
        }
        /* 4. O = P·V by key blocks */
        memset(w->o, 0, (size_t)rows * (size_t)D * sizeof(float));
        col = 0;
        for (int rg = 0; rg < 2; rg++)
            for (int32_t j = r_beg[rg]; j < r_end[rg];) {
                int32_t nk = key_block_len(j, r_end[rg], P);
                const uint8_t *V = (const uint8_t *)kv_pool_v(a->pool, ref->pages[j / P], a->layer, kvh) +
                                   (size_t)(j % P) * row_bytes;
                for (int32_t jj = 0; jj < nk; jj++) kv_row_to_f32(vk, type, V + (size_t)jj * row_bytes, w->vf + jj * D, D);
                vk->attn_pv(w->o, D, w->scores + col, cap, rows, w->vf, nk, D);
                col += nk, j += nk;
            }
        /* 5. rotate back (quantized V) and scatter */
        for (int32_t r = 0; r < rows; r++) hadamard_rotate(w->o + (int64_t)r * D, D, kv_rotation_v(type, D));
        for (int32_t i = 0; i < tile->n_tokens; i++)
            memcpy(a->out + ((tile->t0 + i) * a->n_heads + kvh * group) * (int64_t)D, w->o + (int64_t)i * group * D,
                   (size_t)group * (size_t)D * sizeof(float));
    }
}

/* Grows every thread's attention scratch to rows x cols scores and rows
 * query/output rows of head_dim. */
static int attn_scratch_reserve(backend *b, int64_t rows, int64_t cols, int32_t head_dim, larder_error *err) {
    if (rows <= b->scores_rows && cols <= b->scores_cap && head_dim <= b->scratch_dim) return 0;
    int64_t cap = b->scores_cap > 256 ? b->scores_cap : 256;
    while (cap < cols) cap *= 2;
    if (rows < b->scores_rows) rows = b->scores_rows;
    if (head_dim < b->scratch_dim) head_dim = b->scratch_dim;
    size_t D = (size_t)head_dim;
    for (int i = 0; i < b->n_threads; i++) {
        attn_scratch *w = &b->attn[i];
        free(w->scores), free(w->q), free(w->o), free(w->kt), free(w->vf), free(w->qtmp);
        w->scores = malloc((size_t)rows * (size_t)cap * sizeof(float));
        w->q = malloc((size_t)rows * D * sizeof(float));
        w->o = malloc((size_t)rows * D * sizeof(float));
        w->kt = malloc(D * CPU_ATTN_KEY_BLOCK * sizeof(float));
        w->vf = malloc(D * CPU_ATTN_KEY_BLOCK * sizeof(float));
        w->qtmp = malloc(tensor_row_bytes(TYPE_Q8_0, (head_dim + 31) / 32 * 32));
        if (!w->scores || !w->q || !w->o || !w->kt || !w->vf || !w->qtmp) {
            b->scores_rows = b->scores_cap = b->scratch_dim = 0; /* forces a full retry next time */
            return error_set(err, ERR_NOMEM, "out of memory (attention scratch)");
        }
    }
    b->scores_rows = rows, b->scores_cap = cap, b->scratch_dim = head_dim;
    return 0;
}

int backend_attention(backend *b, const kv_pool *pool, int32_t layer, const float *q, const backend_kv_ref *refs,
                      int64_t n, int32_t n_heads, float scale, float *out, larder_error *err) {
    const kv_pool_config *c = kv_pool_get_config(pool);
    if (n_heads < c->n_kv_heads || n_heads % c->n_kv_heads)
        return error_set(err, ERR_INVALID, "attention: %d query heads do not group over %d KV heads", n_heads, c->n_kv_heads);
    if (n <= 0) return 0;
    const int32_t group = n_heads / c->n_kv_heads;
    const int32_t tile_tokens = group >= ATTN_TILE_ROWS ? 1 : ATTN_TILE_ROWS / group;
    if (n > b->tiles_cap) {
        attn_tile *t = realloc(b->tiles, (size_t)n * sizeof *t);
        if (!t) return error_set(err, ERR_NOMEM, "out of memory (attention tiles)");
        b->tiles = t, b->tiles_cap = n;
    }
    /* Cut the batch into tiles; the widest tile's key count sizes the scores. */
    int64_t n_tiles = 0, cols = 0;
    for (int64_t t = 0; t < n;) {
        const backend_kv_ref *r = &refs[t];
        int32_t k = 1;
        while (t + k < n && k < tile_tokens && refs[t + k].pages == r->pages && refs[t + k].pos == r->pos + k &&
               refs[t + k].keep_tokens == r->keep_tokens && refs[t + k].window_tokens == r->window_tokens)
            k++;
        attn_tile *tile = &b->tiles[n_tiles++];
        int32_t last = refs[t + k - 1].pos;
        int32_t lo = r->window_tokens > 0 ? r->pos - r->window_tokens + 1 : 0; /* first token's window start */
        tile->t0 = t, tile->n_tokens = k;
        if (lo > r->keep_tokens) tile->r0_end = r->keep_tokens, tile->r1_start = lo; /* a gap */
        else tile->r0_end = 0, tile->r1_start = 0;
        int64_t keys = (int64_t)tile->r0_end + (last + 1 - tile->r1_start);
        if (keys > cols) cols = keys;
        t += k;
    }
    if (attn_scratch_reserve(b, (int64_t)tile_tokens * group, cols, c->head_dim, err)) return -1;
    attn_task a = {b, pool, layer, n_heads, scale, q, refs, b->tiles, n_tiles, out};
    thread_pool_run(b->pool, attn_run, &a);
    return 0;
}
