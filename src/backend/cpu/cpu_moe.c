/*
 * cpu_moe.c — the CPU backend's mixture-of-experts ops (backend.h):
 * routing (scores, top-k, renormalised weights) and the expert feed-forward.
 *
 * The expert feed-forward groups a batch by expert, so each chosen expert's
 * weights are read once per step however many tokens chose it:
 *
 *   1. count the (token, slot) assignments of every expert; give expert e a
 *      run of rows [start_e, start_e + count_e) in a gathered matrix, runs
 *      starting at multiples of CPU_MATMUL_PART_ALIGN (the rows between runs
 *      are zero, so the prefill GEMM's q8 tiles never mix two experts);
 *   2. xg = the assigned tokens' input rows, run by run;
 *   3. gate, up = xg · W{gate,up}[e]ᵀ over each run — ONE cpu_matmul_parts
 *      call for every (expert, matrix) pair, so the work of all experts is
 *      split over the threads in one dispatch (decode: 2k GEMVs of one row);
 *   4. h = silu(gate) * up;  down = h · Wdown[e]ᵀ, again one call;
 *   5. out[t] = Σ_j weights[t,j] · down[row of (t, j)], in slot order j.
 *
 * Scratch (the gathered matrices and the assignment tables) is owned by the
 * backend and grown to the largest step seen; a decode step allocates
 * nothing once the first has run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend_internal.h"
#include "tensor/dtype.h"

/* ggml clamps the sum of the chosen weights to the smallest normal f16. */
#define MOE_MIN_WEIGHT_SUM 6.103515625e-5f

/* ---- routing */

/* Scores of one token's n logits into s: softmax (ggml's steps: max, exp in
 * f32, sum in double, one f32 scale) or sigmoid. */
static void moe_scores(const float *logits, int32_t n, backend_moe_gating gating, float *s) {
    if (gating == BACKEND_MOE_SIGMOID) {
        for (int32_t e = 0; e < n; e++) s[e] = 1.0f / (1.0f + expf(-logits[e]));
        return;
    }
    float max = -INFINITY;
    for (int32_t e = 0; e < n; e++) max = logits[e] > max ? logits[e] : max;
    double sum = 0;
    for (int32_t e = 0; e < n; e++) {
        s[e] = expf(logits[e] - max);
        sum += (double)s[e];
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t e = 0; e < n; e++) s[e] *= inv;
}

int cpu_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                  int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err) {
    cpu_backend *c = (cpu_backend *)b;
    if ((size_t)n_expert > c->moe_scores_cap) {
        float *s = realloc(c->moe_scores, (size_t)n_expert * sizeof *s);
        if (!s) return error_set(err, ERR_NOMEM, "moe routing: out of memory for %d scores", n_expert);
        c->moe_scores = s;
        c->moe_scores_cap = (size_t)n_expert;
    }
    float *s = c->moe_scores;
    float best[BACKEND_MOE_MAX_USED];  /* selection values of the chosen, descending */
    for (int64_t t = 0; t < n_tokens; t++) {
        moe_scores(logits + t * n_expert, n_expert, gating, s);
        int32_t *id = ids + t * k;
        int32_t n_best = 0;
        /* top k by s + bias: insertion into a sorted list of k; an equal
         * value never passes an earlier expert (ties: the lower id first) */
        for (int32_t e = 0; e < n_expert; e++) {
            float v = sel_bias ? s[e] + sel_bias[e] : s[e];
            if (n_best == k && !(v > best[k - 1])) continue;
            int32_t i = n_best < k ? n_best++ : k - 1;
            while (i > 0 && v > best[i - 1]) {
                best[i] = best[i - 1];
                id[i] = id[i - 1];
                i--;
            }
            best[i] = v;
            id[i] = e;
        }
        /* weights: the unbiased scores of the chosen, renormalised (the sum
         * in double rounded once, as ggml's sum_rows) */
        float *w = weights + t * k;
        double sum = 0;
        for (int32_t j = 0; j < k; j++) {
            w[j] = s[id[j]];
            sum += (double)w[j];
        }
        float total = (float)sum;
        if (!(total >= MOE_MIN_WEIGHT_SUM)) total = MOE_MIN_WEIGHT_SUM;
        for (int32_t j = 0; j < k; j++) w[j] /= total;
    }
    return 0;
}

/* ---- the expert feed-forward */

/* Grows *buf to n elements of size bytes each (contents not kept). */
static int moe_reserve(void **buf, size_t *cap, size_t n, size_t size, larder_error *err) {
    if (n <= *cap) return 0;
    if (n > SIZE_MAX / size) return error_set(err, ERR_LIMIT, "moe: scratch of %zu elements overflows", n);
    void *p = malloc(n * size);
    if (!p) return error_set(err, ERR_NOMEM, "moe: out of memory for %zu bytes of scratch", n * size);
    free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

int cpu_moe_ffn(backend *b, const backend_moe_experts *ex, const float *x, const int32_t *ids, const float *weights,
                int64_t n_tokens, int32_t k, float *out, larder_error *err) {
    cpu_backend *c = (cpu_backend *)b;
    const int64_t dim = ex->dim, ff = ex->ff, n_assign = n_tokens * k;
    const int32_t E = ex->n_expert;
    const int64_t A = CPU_MATMUL_PART_ALIGN;
    if (n_tokens == 0) return 0;
    /* tables: count (E) | start (E) | fill (E) | row of each assignment (n_assign) */
    if (moe_reserve((void **)&c->moe_idx, &c->moe_idx_cap, (size_t)(3 * E + n_assign), sizeof(int64_t), err))
        return -1;
    int64_t *count = c->moe_idx, *start = count + E, *fill = start + E, *row_of = fill + E;
    memset(count, 0, (size_t)E * sizeof *count);
    for (int64_t a = 0; a < n_assign; a++) {
        if (ids[a] < 0 || ids[a] >= E)
            return error_set(err, ERR_INVALID, "moe ffn: expert id %d outside [0, %d)", ids[a], E);
        count[ids[a]]++;
    }
    int64_t rows = 0;
    int n_used = 0;
    for (int32_t e = 0; e < E; e++) {
        start[e] = rows;
        fill[e] = 0;
        if (count[e]) n_used++;
        rows += (count[e] + A - 1) / A * A;
    }
    /* scratch: xg (rows, dim) | gate (rows, ff) | up (rows, ff) | down (rows, dim) */
    size_t elems = (size_t)rows * (size_t)(2 * dim + 2 * ff);
    if (moe_reserve((void **)&c->moe_buf, &c->moe_buf_cap, elems, sizeof(float), err) ||
        moe_reserve((void **)&c->moe_parts, &c->moe_parts_cap, (size_t)(2 * n_used), sizeof(cpu_matmul_part), err))
        return -1;
    float *xg = c->moe_buf, *gate = xg + rows * dim, *up = gate + rows * ff, *down = up + rows * ff;

    /* 2. gather: assignment (t, j) to the next row of its expert's run */
    for (int64_t a = 0; a < n_assign; a++) {
        int32_t e = ids[a];
        int64_t r = start[e] + fill[e]++;
        row_of[a] = r;
        memcpy(xg + r * dim, x + (a / k) * dim, (size_t)dim * sizeof(float));
    }
    for (int32_t e = 0; e < E; e++) /* the padding rows of each run read as zero */
        if (count[e] % A)
            memset(xg + (start[e] + count[e]) * dim, 0, (size_t)((A - count[e] % A) * dim) * sizeof(float));

    /* 3. gate and up of every used expert over its run */
    const size_t gate_bytes = tensor_row_bytes(ex->gate_type, dim) * (size_t)ff;
    const size_t up_bytes = tensor_row_bytes(ex->up_type, dim) * (size_t)ff;
    const size_t down_bytes = tensor_row_bytes(ex->down_type, ff) * (size_t)dim;
    cpu_matmul_part *p = c->moe_parts;
    int n = 0;
    for (int32_t e = 0; e < E; e++) {
        if (!count[e]) continue;
        p[n++] = (cpu_matmul_part){(const uint8_t *)ex->gate + (size_t)e * gate_bytes, ex->gate_type, ff, start[e],
                                   count[e], gate + start[e] * ff};
        p[n++] = (cpu_matmul_part){(const uint8_t *)ex->up + (size_t)e * up_bytes, ex->up_type, ff, start[e],
                                   count[e], up + start[e] * ff};
    }
    if (cpu_matmul_parts(c->mm, c->pool, p, n, dim, xg, rows, err)) return -1;

    /* 4. h = silu(gate) * up in place of gate (padding rows zero), then down */
    n = 0;
    for (int32_t e = 0; e < E; e++) {
        if (!count[e]) continue;
        cpu_silu_mul_f32(gate + start[e] * ff, up + start[e] * ff, count[e] * ff);
        if (count[e] % A)
            memset(gate + (start[e] + count[e]) * ff, 0, (size_t)((A - count[e] % A) * ff) * sizeof(float));
        p[n++] = (cpu_matmul_part){(const uint8_t *)ex->down + (size_t)e * down_bytes, ex->down_type, dim, start[e],
                                   count[e], down + start[e] * dim};
    }
    if (cpu_matmul_parts(c->mm, c->pool, p, n, ff, gate, rows, err)) return -1;

    /* 5. out[t] = Σ_j w[t,j] · down[row_of(t, j)], each product rounded,
     * summed in slot order (ggml multiplies, then adds the slots in turn) */
    for (int64_t t = 0; t < n_tokens; t++) {
        float *o = out + t * dim;
        const float *d0 = down + row_of[t * k] * dim;
        const float w0 = weights[t * k];
        for (int64_t i = 0; i < dim; i++) o[i] = w0 * d0[i];
        for (int32_t j = 1; j < k; j++) {
            const float *d = down + row_of[t * k + j] * dim;
            const float w = weights[t * k + j];
            for (int64_t i = 0; i < dim; i++) o[i] += w * d[i];
        }
    }
    return 0;
}

void cpu_moe_free(cpu_backend *c) {
    free(c->moe_scores);
    free(c->moe_idx);
    free(c->moe_buf);
    free(c->moe_parts);
}
