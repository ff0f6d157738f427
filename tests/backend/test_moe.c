/*
 * test_moe.c — the mixture-of-experts ops of the backend LARDER_BACKEND
 * names (test_backend.h), through backend memory only (weights uploaded,
 * buffers written and read), so the same test runs on every backend:
 *   backend_moe_route equals its definition: softmax and sigmoid scores,
 *   top k by score + selection bias (ties to the lower id), weights the
 *   unbiased scores renormalised, the 2^-14 floor of their sum;
 *   backend_moe_ffn equals the expert FFN computed expert by expert with the
 *   backend's own matmul over each expert's tokens (gathered in order), bit
 *   for bit, for quantized types with and without a prefill GEMM and for
 *   F32, for one token (decode) and a batch, whatever the thread count;
 *   an expert id out of range is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "test_backend.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24) - 0.5f) * 2.0f;
}

/* A backend buffer holding n floats (or ints) copied from host. */
static void *buf_from(backend *b, const void *host, size_t bytes) {
    void *p = backend_buffer_alloc(b, bytes, NULL);
    assert_non_null(p);
    if (host) assert_int_equal(backend_buffer_write(b, p, host, bytes, NULL), 0);
    return p;
}

static void buf_to(backend *b, void *host, const void *buf, size_t bytes) {
    assert_int_equal(backend_buffer_read(b, host, buf, bytes, NULL), 0);
}

/* ---- routing */

/* The definition, in float as the op computes it. */
static void route_reference(const float *logits, const float *bias, int E, int K, backend_moe_gating g, int32_t *ids,
                            float *w) {
    float s[64];
    if (g == BACKEND_MOE_SIGMOID) {
        for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-logits[e]));
    } else {
        float mx = -INFINITY;
        double sum = 0;
        for (int e = 0; e < E; e++) mx = fmaxf(mx, logits[e]);
        for (int e = 0; e < E; e++) sum += (double)(s[e] = expf(logits[e] - mx));
        for (int e = 0; e < E; e++) s[e] *= (float)(1.0 / sum);
    }
    bool taken[64] = {false};
    double sum = 0;
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            if (taken[e]) continue;
            float v = s[e] + (bias ? bias[e] : 0), bv = best < 0 ? 0 : s[best] + (bias ? bias[best] : 0);
            if (best < 0 || v > bv) best = e; /* strictly greater: ties keep the lower id */
        }
        taken[best] = true;
        ids[j] = best;
        sum += (double)s[best];
    }
    float total = fmaxf((float)sum, 6.103515625e-5f);
    for (int j = 0; j < K; j++) w[j] = s[ids[j]] / total;
}

static void test_route_equals_definition(void **state) {
    (void)state;
    backend *b = test_backend_create(2);
    enum { NT = 7, E = 40, K = 6 };
    float logits[NT * E], bias[E];
    unsigned s = 3;
    for (int i = 0; i < NT * E; i++) logits[i] = 3.0f * frand(&s);
    for (int e = 0; e < E; e++) bias[e] = 0.1f * frand(&s);
    /* token 1: exact ties (ids 3, 9 and 30 equal and largest): the lower ids win, in order */
    logits[1 * E + 3] = logits[1 * E + 9] = logits[1 * E + 30] = 9.0f;
    /* token 2 under sigmoid: every score ~1e-9, so the weight sum hits the floor */
    for (int e = 0; e < E; e++) logits[2 * E + e] = -20.0f - (float)e * 0.01f;
    for (int g = 0; g < 2; g++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            backend_moe_gating gating = g ? BACKEND_MOE_SIGMOID : BACKEND_MOE_SOFTMAX;
            float *dl = buf_from(b, logits, sizeof logits), *db = buf_from(b, bias, sizeof bias);
            int32_t *dids = buf_from(b, NULL, NT * K * sizeof(int32_t));
            float *dw = buf_from(b, NULL, NT * K * sizeof(float));
            assert_int_equal(backend_moe_route(b, dl, with_bias ? db : NULL, NT, E, K, gating, dids, dw, NULL), 0);
            int32_t ids[NT * K], want_ids[K];
            float w[NT * K], want_w[K];
            buf_to(b, ids, dids, sizeof ids);
            buf_to(b, w, dw, sizeof w);
            for (int t = 0; t < NT; t++) {
                route_reference(logits + t * E, with_bias ? bias : NULL, E, K, gating, want_ids, want_w);
                for (int j = 0; j < K; j++) {
                    assert_int_equal(ids[t * K + j], want_ids[j]);
                    assert_true(fabsf(w[t * K + j] - want_w[j]) <= 1e-6f * fmaxf(1.0f, want_w[j]));
                }
                if (t == 1 && !with_bias) /* the ties, lower id first */
                    assert_true(ids[K] == 3 && ids[K + 1] == 9 && ids[K + 2] == 30);
            }
            if (g == 1) { /* the floor: weights far below 1/K */
                float sum = 0;
                for (int j = 0; j < K; j++) sum += w[2 * K + j];
                assert_true(sum < 1e-3f);
            } else { /* renormalised: the weights of every token sum to 1 */
                for (int t = 0; t < NT; t++) {
                    float sum = 0;
                    for (int j = 0; j < K; j++) sum += w[t * K + j];
                    assert_true(fabsf(sum - 1.0f) < 1e-5f);
                }
            }
            backend_buffer_free(b, dl), backend_buffer_free(b, db), backend_buffer_free(b, dids), backend_buffer_free(b, dw);
        }
    /* k out of range is refused */
    larder_error err = {0};
    assert_int_equal(backend_moe_route(b, logits, NULL, 1, E, E + 1, BACKEND_MOE_SOFTMAX, NULL, NULL, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    backend_free(b);
}

/* ---- the expert feed-forward */

enum { DIM = 256, FF = 256, E = 8, K = 3, MAXT = 29 }; /* Q4_K rows: multiples of 256 */

typedef struct experts {
    uint32_t type;
    uint8_t *gate, *up, *down;         /* host, stacked */
    const void *dgate, *dup, *ddown;   /* the backend's */
    size_t gate_row, down_row;         /* bytes per row */
} experts;

static void experts_make(backend *b, experts *x, uint32_t type, unsigned seed) {
    x->type = type;
    x->gate_row = tensor_row_bytes(type, DIM);
    x->down_row = tensor_row_bytes(type, FF);
    float row[FF > DIM ? FF : DIM];
    uint8_t **mats[3] = {&x->gate, &x->up, &x->down};
    const void **devs[3] = {&x->dgate, &x->dup, &x->ddown};
    for (int m = 0; m < 3; m++) {
        int64_t rows = m < 2 ? (int64_t)E * FF : (int64_t)E * DIM, cols = m < 2 ? DIM : FF;
        size_t rb = m < 2 ? x->gate_row : x->down_row;
        *mats[m] = malloc((size_t)rows * rb);
        assert_non_null(*mats[m]);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++) row[c] = frand(&seed) / sqrtf((float)cols) * 2.0f;
            assert_int_equal(quantize_row(type, row, *mats[m] + (size_t)r * rb, cols), 0);
        }
        assert_int_equal(backend_upload_weight(b, *mats[m], (size_t)rows * rb, devs[m], NULL), 0);
    }
}

static void experts_free(experts *x) { free(x->gate), free(x->up), free(x->down); }

/* The expert FFN computed expert by expert with backend_matmul over each
 * expert's tokens gathered in (token, slot) order, then combined in slot
 * order: what backend_moe_ffn must equal bit for bit. */
static void ffn_reference(backend *b, const experts *x, const float *in, const int32_t *ids, const float *w, int nt,
                          float *out) {
    float *xg = buf_from(b, NULL, (size_t)nt * K * DIM * sizeof(float));
    float *g = buf_from(b, NULL, (size_t)nt * K * FF * sizeof(float)), *u = buf_from(b, NULL, (size_t)nt * K * FF * sizeof(float));
    float *d = buf_from(b, NULL, (size_t)nt * K * DIM * sizeof(float));
    float host_x[MAXT * K * DIM], host_g[MAXT * K * FF], host_u[MAXT * K * FF], host_d[MAXT * K * DIM];
    float y[MAXT * K][DIM]; /* down output of each assignment */
    for (int e = 0; e < E; e++) {
        int n = 0, who[MAXT * K];
        for (int a = 0; a < nt * K; a++)
            if (ids[a] == e) {
                memcpy(host_x + n * DIM, in + (a / K) * DIM, DIM * sizeof(float));
                who[n++] = a;
            }
        if (!n) continue;
        assert_int_equal(backend_buffer_write(b, xg, host_x, (size_t)n * DIM * sizeof(float), NULL), 0);
        assert_int_equal(backend_matmul(b, x->dgate + (size_t)e * FF * x->gate_row, x->type, FF, DIM, xg, n, g, NULL), 0);
        assert_int_equal(backend_matmul(b, x->dup + (size_t)e * FF * x->gate_row, x->type, FF, DIM, xg, n, u, NULL), 0);
        buf_to(b, host_g, g, (size_t)n * FF * sizeof(float));
        buf_to(b, host_u, u, (size_t)n * FF * sizeof(float));
        for (int i = 0; i < n * FF; i++) host_g[i] = host_g[i] / (1.0f + expf(-host_g[i])) * host_u[i];
        assert_int_equal(backend_buffer_write(b, g, host_g, (size_t)n * FF * sizeof(float), NULL), 0);
        assert_int_equal(backend_matmul(b, x->ddown + (size_t)e * DIM * x->down_row, x->type, DIM, FF, g, n, d, NULL), 0);
        buf_to(b, host_d, d, (size_t)n * DIM * sizeof(float));
        for (int i = 0; i < n; i++) memcpy(y[who[i]], host_d + i * DIM, DIM * sizeof(float));
    }
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < DIM; i++) {
            float acc = w[t * K] * y[t * K][i];
            for (int j = 1; j < K; j++) acc += w[t * K + j] * y[t * K + j][i];
            out[t * DIM + i] = acc;
        }
    backend_buffer_free(b, xg), backend_buffer_free(b, g), backend_buffer_free(b, u), backend_buffer_free(b, d);
}

static void test_ffn_equals_expert_by_expert(void **state) {
    (void)state;
    /* Q8_0 and Q4_0 have a prefill GEMM on x86, Q4_K and F32 do not */
    const uint32_t types[] = {TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_F32};
    for (int threads = 1; threads <= 2; threads++) {
        backend *b = test_backend_create(threads);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            experts x;
            experts_make(b, &x, types[ti], 11 + (unsigned)ti);
            const backend_moe_experts ex = {x.dgate, x.dup, x.ddown, x.type, x.type, x.type, E, DIM, FF};
            const int sizes[] = {1, MAXT};
            for (int si = 0; si < 2; si++) {
                int nt = sizes[si];
                float in[MAXT * DIM], w[MAXT * K], out[MAXT * DIM], want[MAXT * DIM];
                int32_t ids[MAXT * K];
                unsigned s = 99 + (unsigned)si;
                for (int i = 0; i < nt * DIM; i++) in[i] = frand(&s);
                /* distinct experts per token; expert 5 never chosen, expert 0 by most tokens */
                const int32_t others[5] = {1, 2, 3, 4, 6};
                for (int t = 0; t < nt; t++) {
                    int32_t *id = ids + t * K;
                    id[0] = t % 9 == 4 ? 7 : 0;
                    id[1] = others[t % 5];
                    id[2] = others[(t * 3 + 1) % 5] != id[1] ? others[(t * 3 + 1) % 5] : others[(t * 3 + 2) % 5];
                    for (int j = 0; j < K; j++) w[t * K + j] = 0.2f + 0.3f * (float)j + 0.01f * (float)t;
                }
                float *din = buf_from(b, in, (size_t)nt * DIM * sizeof(float));
                float *dw = buf_from(b, w, (size_t)nt * K * sizeof(float));
                int32_t *dids = buf_from(b, ids, (size_t)nt * K * sizeof(int32_t));
                float *dout = buf_from(b, NULL, (size_t)nt * DIM * sizeof(float));
                assert_int_equal(backend_moe_ffn(b, &ex, din, dids, dw, nt, K, dout, NULL), 0);
                assert_int_equal(backend_sync(b, NULL), 0);
                buf_to(b, out, dout, (size_t)nt * DIM * sizeof(float));
                ffn_reference(b, &x, in, ids, w, nt, want);
                for (int i = 0; i < nt * DIM; i++) {
                    if (out[i] != want[i])
                        fail_msg("%s, %d tokens, %d threads: out[%d] = %.9g, expert by expert %.9g",
                                 tensor_type_get(types[ti])->name, nt, threads, i, out[i], want[i]);
                }
                /* an expert id out of range is refused */
                int32_t bad = E;
                assert_int_equal(backend_buffer_write(b, dids, &bad, sizeof bad, NULL), 0);
                larder_error err = {0};
                assert_int_equal(backend_moe_ffn(b, &ex, din, dids, dw, nt, K, dout, &err), -1);
                assert_int_equal(err.code, ERR_INVALID);
                backend_buffer_free(b, din), backend_buffer_free(b, dw), backend_buffer_free(b, dids);
                backend_buffer_free(b, dout);
            }
            experts_free(&x);
        }
        backend_free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_equals_definition),
        cmocka_unit_test(test_ffn_equals_expert_by_expert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
