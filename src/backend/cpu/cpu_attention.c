/*
 * cpu_attention.c — the CPU backend's KV ops: storing K/V rows into their
 * pages (converted to the KV type; quantized types Walsh-Hadamard rotated
 * first, as llama.cpp stores them) and causal attention over the pages.
 *
 * Attention is split over (tile of a sequence's tokens, KV head) tasks,
 * dealt round-robin to the threads so causal prefill (later tokens attend to
 * more) stays balanced; each thread has its own scratch, grown to the
 * widest tile seen (see the comment above attn_run). Pages are found through
 * the step's batch descriptor (cpu_batch: a token's sequence row of the page
 * table matrix), never through per-token pointers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend_internal.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

void cpu_attention_free(cpu_backend *b) {
    if (b->attn)
        for (int i = 0; i < b->n_threads; i++) {
            attn_scratch *w = &b->attn[i];
            free(w->scores), free(w->q), free(w->o), free(w->kt), free(w->vf), free(w->qtmp);
        }
    free(b->attn);
    free(b->tiles);
    free(b->rot_row);
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
 * a 1/sqrt(n) scale, then log2(n) butterfly passes (a, b) -> (a + b, a - b).
 * The scale comes first, as in ggml_compute_forward_fwht: for n = 128 it is
 * not a power of two, and scaling last rounds differently (one ulp here and
 * there, enough to move a q8_0 block scale across an f16 rounding boundary). */
static void hadamard_rotate(float *x, int32_t D, int32_t n) {
    if (n == 0) return;
    const float scale = 1.0f / sqrtf((float)n);
    for (int32_t c0 = 0; c0 < D; c0 += n) {
        float *v = x + c0;
        for (int32_t i = 0; i < n; i++) v[i] *= scale;
        for (int32_t h = 1; h < n; h *= 2)
            for (int32_t i = 0; i < n; i += 2 * h)
                for (int32_t j = i; j < i + h; j++) {
                    float a = v[j], bb = v[j + h];
                    v[j] = a + bb, v[j + h] = a - bb;
                }
    }
}

int cpu_kv_store(backend *be, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err) {
    cpu_backend *b = (cpu_backend *)be;
    const cpu_batch *bt = &b->batch;
    const backend_kv_layout *c = &kv->layout;
    const int32_t P = c->page_tokens, D = c->head_dim, H = c->n_kv_heads;
    const size_t row = c->row_bytes;
    const int64_t n = bt->n_tokens;
    if ((size_t)2 * (size_t)D > b->rot_row_elems) {
        float *r = realloc(b->rot_row, (size_t)2 * (size_t)D * sizeof *r);
        if (!r) return error_set(err, ERR_NOMEM, "out of memory (KV rows)");
        b->rot_row = r, b->rot_row_elems = (size_t)2 * (size_t)D;
    }
    for (int64_t t = 0; t < n; t++) {
        const int32_t pos = bt->pos[t];
        uint32_t page = bt->page_table[(int64_t)bt->seq[t] * bt->max_pages + pos / P];
        size_t off = (size_t)(pos % P) * row;
        for (int32_t h = 0; h < H; h++) {
            const float *ks = k + (t * H + h) * (int64_t)D, *vs = v + (t * H + h) * (int64_t)D;
            uint8_t *kd = cpu_kv_block(kv, page, layer, 0, h) + off;
            uint8_t *vd = cpu_kv_block(kv, page, layer, 1, h) + off;
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
    cpu_backend *b;
    const backend_kv *kv;
    int32_t layer, n_heads;
    float scale;
    const float *q;
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
    const backend_kv_layout *c = &a->kv->layout;
    const cpu_batch *bt = &a->b->batch;
    const cpu_vec_kernels *vk = a->b->vk;
    const int32_t P = c->page_tokens, D = c->head_dim, n_kv = c->n_kv_heads, group = a->n_heads / n_kv;
    const uint32_t type = c->kv_type;
    const size_t row_bytes = c->row_bytes;
    const int64_t cap = a->b->scores_cap;
    attn_scratch *w = &a->b->attn[ti];
    for (int64_t task = ti; task < a->n_tiles * n_kv; task += nt) {
        const attn_tile *tile = &a->tiles[task / n_kv];
        const int32_t kvh = (int32_t)(task % n_kv);
        const int32_t *pos = bt->pos + tile->t0, sq = bt->seq[tile->t0];
        const uint32_t *pages = bt->page_table + (int64_t)sq * bt->max_pages;
        const int32_t keep = bt->keep_tokens[sq], window = bt->window_tokens[sq];
        const int32_t rows = tile->n_tokens * group, last = pos[tile->n_tokens - 1];
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
                const uint8_t *K = cpu_kv_block(a->kv, pages[j / P], a->layer, 0, kvh) + (size_t)(j % P) * row_bytes;
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
            const int32_t tpos = pos[r / group];
            float *s = w->scores + (int64_t)r * cap;
            int32_t lo = window > 0 ? tpos - window + 1 : 0;
            int64_t span[2][2]; /* column [begin, end) */
            int n_span;
            if (lo <= keep) { /* no gap for this token: keys [0, pos] */
                span[0][0] = 0, span[0][1] = tpos + 1, n_span = 1;
            } else {          /* keys [0, keep) and [lo, pos] */
                span[0][0] = 0, span[0][1] = keep;
                int64_t base = tile->r0_end > 0 ? tile->r0_end - tile->r1_start : 0; /* column of key j: j + base */
                span[1][0] = lo + base, span[1][1] = tpos + 1 + base, n_span = 2;
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
                const uint8_t *V = cpu_kv_block(a->kv, pages[j / P], a->layer, 1, kvh) + (size_t)(j % P) * row_bytes;
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
static int attn_scratch_reserve(cpu_backend *b, int64_t rows, int64_t cols, int32_t head_dim, larder_error *err) {
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

int cpu_attention(backend *be, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                  float *out, larder_error *err) {
    cpu_backend *b = (cpu_backend *)be;
    const cpu_batch *bt = &b->batch;
    const backend_kv_layout *c = &kv->layout;
    const int64_t n = bt->n_tokens;
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
    /* Cut the batch into tiles (runs of consecutive positions of one
     * sequence); the widest tile's key count sizes the scores. */
    int64_t n_tiles = 0, cols = 0;
    for (int64_t t = 0; t < n;) {
        const int32_t sq = bt->seq[t], p0 = bt->pos[t];
        const int32_t keep = bt->keep_tokens[sq], window = bt->window_tokens[sq];
        int32_t k = 1;
        while (t + k < n && k < tile_tokens && bt->seq[t + k] == sq && bt->pos[t + k] == p0 + k) k++;
        attn_tile *tile = &b->tiles[n_tiles++];
        int32_t last = bt->pos[t + k - 1];
        int32_t lo = window > 0 ? p0 - window + 1 : 0; /* first token's window start */
        tile->t0 = t, tile->n_tokens = k;
        if (lo > keep) tile->r0_end = keep, tile->r1_start = lo; /* a gap */
        else tile->r0_end = 0, tile->r1_start = 0;
        int64_t keys = (int64_t)tile->r0_end + (last + 1 - tile->r1_start);
        if (keys > cols) cols = keys;
        t += k;
    }
    if (attn_scratch_reserve(b, (int64_t)tile_tokens * group, cols, c->head_dim, err)) return -1;
    attn_task a = {b, kv, layer, n_heads, scale, q, b->tiles, n_tiles, out};
    thread_pool_run(b->pool, attn_run, &a);
    return 0;
}
