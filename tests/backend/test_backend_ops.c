/*
 * test_backend_ops.c — the backend's ops against their definitions, on the
 * backend LARDER_BACKEND names (test_backend.h):
 *   rope equals the direct rotation formula (both pairings, positions from
 *   the step's batch);
 *   rmsnorm equals its definition;
 *   the CPU's SIMD vector kernels equal the scalar ones;
 *   attention over scattered pages equals attention over contiguous K/V,
 *   for every KV type and with a rotating window;
 *   a fused matmul equals separate ones; embedding rows and output rows
 *   come from the batch; a bad batch descriptor is refused.
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
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "kv/kv_pool.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "test_backend.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24) - 0.5f) * 2.0f;
}

/* A batch of n tokens of one sequence at positions pos (no pages). */
static void set_positions(backend *b, const int32_t *pos, int32_t n) {
    static int32_t seq[64], zero;
    backend_batch bt = {.n_tokens = n, .tokens = pos, .pos = pos, .seq = seq, .n_seqs = 1, .max_pages = 0,
                        .keep_tokens = &zero, .window_tokens = &zero};
    assert_int_equal(backend_batch_set(b, &bt, NULL), 0);
}

static void test_rope_matches_formula(void **state) {
    (void)state;
    backend *b = test_backend_create(1);
    enum { H = 3, D = 16, NROT = 12, NT = 2 };
    float factors[NROT / 2] = {1, 1, 4, 1, 1, 1};
    const backend_rope_freqs freqs = {powf(10000.0f, -2.0f / NROT), 0.5f, factors};
    int32_t pos[NT] = {7, 1234};
    for (int neox = 0; neox < 2; neox++) {
        float x[NT * H * D], y[NT * H * D];
        unsigned s = 5;
        for (int i = 0; i < NT * H * D; i++) x[i] = y[i] = frand(&s);
        set_positions(b, pos, NT);
        assert_int_equal(backend_rope(b, y, H, D, NROT, &freqs, neox, NULL), 0);
        for (int t = 0; t < NT; t++)
            for (int h = 0; h < H; h++) {
                const float *v = x + (t * H + h) * D, *r = y + (t * H + h) * D;
                for (int i = 0; i < NROT / 2; i++) {
                    int ia = neox ? i : 2 * i, ib = neox ? i + NROT / 2 : 2 * i + 1;
                    double th = 0.5 * pos[t] * pow(10000.0, -2.0 * i / NROT) / factors[i];
                    assert_float_equal(r[ia], v[ia] * cos(th) - v[ib] * sin(th), 2e-3);
                    assert_float_equal(r[ib], v[ia] * sin(th) + v[ib] * cos(th), 2e-3);
                }
                for (int i = NROT; i < D; i++) assert_float_equal(r[i], v[i], 0); /* unrotated tail */
            }
    }
    backend_free(b);
}

static void test_rmsnorm_matches_definition(void **state) {
    (void)state;
    backend *b = test_backend_create(1);
    enum { N = 3, DIM = 37 };
    float x[N * DIM], w[DIM], y[N * DIM];
    unsigned s = 9;
    for (int i = 0; i < N * DIM; i++) x[i] = frand(&s) * (1 + i % 5);
    for (int i = 0; i < DIM; i++) w[i] = frand(&s);
    assert_int_equal(backend_rmsnorm(b, x, w, y, N, DIM, 1e-5f, NULL), 0);
    for (int t = 0; t < N; t++) {
        double ss = 0;
        for (int i = 0; i < DIM; i++) ss += (double)x[t * DIM + i] * x[t * DIM + i];
        double r = 1.0 / sqrt(ss / DIM + 1e-5);
        for (int i = 0; i < DIM; i++) assert_float_equal(y[t * DIM + i], x[t * DIM + i] * r * w[i], 1e-5);
    }
    backend_free(b);
}

/* One level's vector kernels (k) against the scalar ones (ref). */
static void check_vec_kernels(const cpu_vec_kernels *k, const cpu_vec_kernels *ref) {
    unsigned s = 3;
    enum { KB = CPU_ATTN_KEY_BLOCK, MAXD = 80, MAXQ = 7 };
    for (int n = 1; n < MAXD; n += 7) {
        float a[MAXD], f1[MAXD], f2[MAXD];
        uint16_t bh[MAXD], h1[MAXD], h2[MAXD];
        for (int i = 0; i < n; i++) a[i] = frand(&s), bh[i] = f32_to_fp16(frand(&s));
        k->f32_to_f16(h1, a, n), ref->f32_to_f16(h2, a, n);
        assert_memory_equal(h1, h2, (size_t)n * 2);
        k->f16_to_f32(f1, bh, n), ref->f16_to_f32(f2, bh, n);
        assert_memory_equal(f1, f2, (size_t)n * 4);
        /* softmax pieces: scale and max exact; exp within 1e-6 relative
         * (and exp(-inf) = 0, tiny arguments 0); rounding to half exact */
        for (int i = 0; i < n; i++) f1[i] = f2[i] = a[i] * 9.0f;
        assert_float_equal(k->scale_max(f1, n, 0.37f), ref->scale_max(f2, n, 0.37f), 0);
        assert_memory_equal(f1, f2, (size_t)n * 4);
        f1[0] = f2[0] = -INFINITY;
        if (n > 2) f1[2] = f2[2] = -200.0f;
        float m = 3.0f, e1 = k->exp_sum(f1, n, m), e2 = ref->exp_sum(f2, n, m);
        assert_true(fabsf(e1 - e2) <= 1e-6f * e2);
        for (int i = 0; i < n; i++) assert_true(fabsf(f1[i] - f2[i]) <= 1e-6f * f2[i]);
        assert_true(f1[0] == 0.0f && (n <= 2 || f1[2] == 0.0f));
        for (int i = 0; i < n; i++) f1[i] = f2[i] = a[i];
        for (int rf = 0; rf < 2; rf++) {
            k->scale_round(f1, n, 0.3f, rf), ref->scale_round(f2, n, 0.3f, rf);
            assert_memory_equal(f1, f2, (size_t)n * 4);
        }
        /* scores and weighted sums: every row count (register blocks of 4
         * and tails) and key count, head size n */
        static float q[MAXQ * MAXD], kt[MAXD * KB], v[KB * MAXD], s1[MAXQ * 20], s2[MAXQ * 20], o1[MAXQ * MAXD],
            o2[MAXQ * MAXD];
        for (int i = 0; i < MAXQ * MAXD; i++) q[i] = frand(&s), o1[i] = o2[i] = frand(&s);
        for (int i = 0; i < MAXD * KB; i++) kt[i] = frand(&s), v[i] = frand(&s);
        /* key blocks transposed: exact, every row count (zero columns after) */
        static uint16_t rh[KB * MAXD];
        static float rf[KB * MAXD], t1[MAXD * KB], t2[MAXD * KB];
        for (int i = 0; i < KB * MAXD; i++) rf[i] = frand(&s), rh[i] = f32_to_fp16(frand(&s));
        for (int nk = 1; nk <= KB; nk += 3) {
            k->kt_from_f16(t1, rh, MAXD, nk, n), ref->kt_from_f16(t2, rh, MAXD, nk, n);
            assert_memory_equal(t1, t2, (size_t)n * KB * 4);
            k->kt_from_f32(t1, rf, MAXD, nk, n), ref->kt_from_f32(t2, rf, MAXD, nk, n);
            assert_memory_equal(t1, t2, (size_t)n * KB * 4);
        }
        for (int nq = 1; nq <= MAXQ; nq += 2)
            for (int nk = 1; nk <= KB; nk += 5) {
                k->attn_scores(s1, 20, q, n, nq, kt, nk, n), ref->attn_scores(s2, 20, q, n, nq, kt, nk, n);
                for (int r = 0; r < nq; r++)
                    for (int j = 0; j < nk; j++) assert_float_equal(s1[r * 20 + j], s2[r * 20 + j], 1e-4);
                k->attn_pv(o1, n, s1, 20, nq, v, nk, n), ref->attn_pv(o2, n, s1, 20, nq, v, nk, n);
                for (int i = 0; i < nq * n; i++) assert_float_equal(o1[i], o2[i], 1e-3);
            }
    }
}

/* The vector kernels of every level this CPU (or qemu's -cpu) runs: AVX2
 * (the AVX-512 table's too) on x86-64, NEON on AArch64; the scalar set is
 * exercised against itself where the CPU has no SIMD level. */
static void test_simd_kernels_match_scalar(void **state) {
    (void)state;
    int checked = 0;
    for (int l = CPU_LEVEL_SCALAR + 1; l < CPU_LEVEL_COUNT; l++) {
        if (!cpu_level_includes(cpu_level_supported(), (cpu_level)l)) continue;
        const cpu_kernels *kt = cpu_kernels_for((cpu_level)l);
        assert_int_equal(kt->level, l);
        assert_non_null(kt->vec);
        printf("# %s level: %s vector kernels\n", cpu_level_name((cpu_level)l), kt->vec->name);
        check_vec_kernels(kt->vec, cpu_vec_scalar());
        checked++;
    }
    if (!checked) check_vec_kernels(cpu_vec_best(), cpu_vec_scalar());
    assert_true(cpu_vec_best() == cpu_kernels_active()->vec);
}

/* x (64) = H x, H the orthonormal 64x64 Walsh-Hadamard matrix written out
 * (Sylvester: H[i][j] = (-1)^popcount(i & j) / 8), not the fast transform. */
static void hadamard64(float *x) {
    float y[64];
    for (int i = 0; i < 64; i++) {
        double acc = 0;
        for (int j = 0; j < 64; j++) acc += (__builtin_popcount((unsigned)(i & j)) & 1 ? -x[j] : x[j]) / 8.0;
        y[i] = (float)acc;
    }
    memcpy(x, y, sizeof y);
}

/* x (n) as a KV pool of `type` gives it back: quantized types (head size 64
 * here) are rotated, stored, read and rotated back; `act` rounds as a query
 * (to q8_0 for q8_0/q4_0) instead of as a stored row. */
static void kv_round_trip(uint32_t type, float *x, int n, bool act) {
    uint8_t tmp[512];
    bool rot = type == TYPE_Q8_0 || type == TYPE_Q4_0;
    if (rot) hadamard64(x);
    if (act && rot) quantize_row_activation(TYPE_Q8_0, x, tmp, n), dequantize_row(TYPE_Q8_0, tmp, x, n);
    else if (act && type == TYPE_F16) for (int i = 0; i < n; i++) x[i] = fp16_to_f32(f32_to_fp16(x[i]));
    else if (act && type == TYPE_BF16) for (int i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    else if (!act) assert_int_equal(quantize_row_fast(type, x, tmp, n), 0), dequantize_row(type, tmp, x, n);
    if (rot) hadamard64(x);
}

/* Reference attention of one token over contiguous K/V in doubles, with the
 * roundings backend.h promises for a KV type; window as in backend_batch. */
static void attention_reference(uint32_t type, const float *Q, const float *K, const float *V, int t, int H,
                                int HKV, int D, float scale, int keep, int window, double *out) {
    enum { MAXLEN = 64 };
    for (int h = 0; h < H; h++) {
        int kh = h / (H / HKV);
        float q[64];
        memcpy(q, Q + (t * H + h) * D, (size_t)D * sizeof(float));
        kv_round_trip(type, q, D, true);
        double sc[MAXLEN], mx = -1e30, sum = 0;
        bool sees[MAXLEN];
        for (int j = 0; j <= t; j++) {
            sees[j] = window == 0 || j < keep || j > t - window;
            if (!sees[j]) continue;
            double d = 0;
            for (int i = 0; i < D; i++) d += (double)q[i] * K[(j * HKV + kh) * D + i];
            sc[j] = scale * d;
            if (sc[j] > mx) mx = sc[j];
        }
        for (int j = 0; j <= t; j++)
            if (sees[j]) sum += sc[j] = exp(sc[j] - mx);
        for (int i = 0; i < D; i++) {
            double o = 0;
            for (int j = 0; j <= t; j++) {
                if (!sees[j]) continue;
                float w = (float)(sc[j] / sum);
                if (type == TYPE_F16) w = fp16_to_f32(f32_to_fp16(w));
                else if (type == TYPE_BF16) w = bf16_to_f32(f32_to_bf16(w));
                o += w * V[(j * HKV + kh) * D + i];
            }
            out[h * D + i] = o;
        }
    }
}

/* Attention over pages scattered in the pool (page ids out of order, page
 * size 3, so key blocks end at page edges) against a direct computation over
 * contiguous K/V holding the values the pool's type stores (quantized types
 * through the Walsh-Hadamard rotation), for every KV type; 40 tokens of one sequence make two tiles. Then a rotating window
 * (keep 2, window 7): the last tokens, computed again after the pages wholly
 * inside their gap are filled with NaN, equal the reference that skips the
 * gap — so those pages are never read. */
static void test_paged_attention_equals_contiguous(void **state) {
    (void)state;
    enum { H = 4, HKV = 2, D = 64, LEN = 40, P = 3, NP = (LEN + P - 1) / P };
    const uint32_t types[] = {TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0};
    static float K[LEN * HKV * D], V[LEN * HKV * D], Q[LEN * H * D], out[LEN * H * D];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        kv_pool_config c = {.n_layers = 2, .n_kv_heads = HKV, .head_dim = D, .page_tokens = P,
                            .kv_type = type, .budget_bytes = 1 << 20, .low_water_pages = -1};
        backend *b = test_backend_create(2);
        kv_pool *pool = kv_pool_create(&c, b, NULL);
        assert_non_null(pool);
        backend_kv *kv = kv_pool_memory(pool);
        /* occupy a few pages first so the sequence's pages are not 0,1,2.. */
        uint32_t junk[3], pages[NP];
        for (int i = 0; i < 3; i++) kv_pool_alloc(pool, &junk[i], NULL);
        for (int i = 0; i < NP; i++) kv_pool_alloc(pool, &pages[NP - 1 - i], NULL);
        unsigned s = 11;
        for (int i = 0; i < LEN * HKV * D; i++) K[i] = frand(&s), V[i] = frand(&s);
        for (int i = 0; i < LEN * H * D; i++) Q[i] = frand(&s);
        /* K and V as the pool's type stores them */
        for (int r = 0; r < LEN * HKV; r++) kv_round_trip(type, K + r * D, D, false), kv_round_trip(type, V + r * D, D, false);
        int32_t pos[LEN], seq[LEN] = {0}, keep = 0, window = 0;
        for (int t = 0; t < LEN; t++) pos[t] = t;
        backend_batch bt = {.n_tokens = LEN, .tokens = pos, .pos = pos, .seq = seq, .n_seqs = 1, .max_pages = NP,
                            .page_table = pages, .keep_tokens = &keep, .window_tokens = &window};
        assert_int_equal(backend_batch_set(b, &bt, NULL), 0);
        assert_int_equal(backend_kv_store(b, kv, 1, K, V, NULL), 0);
        assert_int_equal(backend_attention(b, kv, 1, Q, H, 0.35f, out, NULL), 0);
        double want[H * D];
        for (int t = 0; t < LEN; t++) {
            attention_reference(type, Q, K, V, t, H, HKV, D, 0.35f, 0, 0, want);
            for (int i = 0; i < H * D; i++) assert_float_equal(out[t * H * D + i], want[i], 2e-4);
        }
        /* rotating window: tokens 35..39 see 0,1 and (t-7, t]; pages 1..8
         * (positions 3..26) are in every one's gap */
        enum { KEEP = 2, WIN = 7, T0 = 35 };
        uint8_t *nan_page = malloc(kv_pool_page_bytes(pool));
        assert_non_null(nan_page);
        memset(nan_page, 0xff, kv_pool_page_bytes(pool));
        for (int pi = 1; pi <= 8; pi++) assert_int_equal(backend_kv_page_write(b, kv, pages[pi], nan_page, NULL), 0);
        free(nan_page);
        keep = KEEP, window = WIN;
        bt.n_tokens = LEN - T0, bt.tokens = bt.pos = pos + T0;
        assert_int_equal(backend_batch_set(b, &bt, NULL), 0);
        assert_int_equal(backend_attention(b, kv, 1, Q + T0 * H * D, H, 0.35f, out, NULL), 0);
        for (int t = T0; t < LEN; t++) {
            attention_reference(type, Q, K, V, t, H, HKV, D, 0.35f, KEEP, WIN, want);
            for (int i = 0; i < H * D; i++) assert_float_equal(out[(t - T0) * H * D + i], want[i], 2e-4);
        }
        kv_pool_free(pool);
        backend_free(b);
    }
}

/* A fused q/k/v-style call equals one matmul per matrix, bit for bit
 * (even row counts), for float and quantized weights. */
static void test_matmul_multi_equals_separate(void **state) {
    (void)state;
    backend *b = test_backend_create(2);
    enum { COLS = 256, NT = 5 };
    const uint32_t types[] = {TYPE_F32, TYPE_Q8_0, TYPE_Q4_K};
    const int64_t rows[3] = {64, 32, 32};
    unsigned s = 21;
    static float x[NT * COLS], wf[64 * COLS], y1[3][NT * 64], y2[3][NT * 64];
    for (int i = 0; i < NT * COLS; i++) x[i] = frand(&s);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint8_t *w[3];
        size_t rb = tensor_row_bytes(types[ti], COLS);
        for (int m = 0; m < 3; m++) {
            w[m] = malloc((size_t)rows[m] * rb);
            assert_non_null(w[m]);
            for (int64_t r = 0; r < rows[m]; r++) {
                for (int i = 0; i < COLS; i++) wf[i] = frand(&s);
                assert_int_equal(quantize_row(types[ti], wf, w[m] + r * rb, COLS), 0);
            }
        }
        backend_matmul_weight mats[3];
        for (int m = 0; m < 3; m++) {
            mats[m] = (backend_matmul_weight){w[m], types[ti], rows[m], y1[m]};
            assert_int_equal(backend_matmul(b, w[m], types[ti], rows[m], COLS, x, NT, y2[m], NULL), 0);
        }
        assert_int_equal(backend_matmul_multi(b, mats, 3, COLS, x, NT, NULL), 0);
        for (int m = 0; m < 3; m++) assert_memory_equal(y1[m], y2[m], (size_t)NT * rows[m] * sizeof(float));
        for (int m = 0; m < 3; m++) free(w[m]);
    }
    larder_error err = {0};
    backend_matmul_weight none[BACKEND_MATMUL_MAX_MATS + 1];
    assert_int_equal(backend_matmul_multi(b, none, BACKEND_MATMUL_MAX_MATS + 1, COLS, x, NT, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    backend_free(b);
}

/* get_rows reads the batch's token ids; get_out_rows gathers the batch's
 * wanted rows in order (in place too). */
static void test_rows_follow_the_batch(void **state) {
    (void)state;
    backend *b = test_backend_create(1);
    enum { V = 7, C = 32, N = 4 };
    float w[V * C], x[N * C];
    uint16_t wh[V * C];
    for (int i = 0; i < V * C; i++) w[i] = (float)i, wh[i] = f32_to_fp16((float)i);
    int32_t toks[N] = {6, 0, 3, 3}, seq[N] = {0}, zero = 0, out[2] = {1, 3};
    backend_batch bt = {.n_tokens = N, .tokens = toks, .pos = seq, .seq = seq, .n_seqs = 1,
                        .keep_tokens = &zero, .window_tokens = &zero, .n_out = 2, .out_rows = out};
    assert_int_equal(backend_batch_set(b, &bt, NULL), 0);
    assert_int_equal(backend_get_rows(b, w, TYPE_F32, C, x, NULL), 0);
    for (int t = 0; t < N; t++) assert_memory_equal(x + t * C, w + toks[t] * C, C * sizeof(float));
    float x16[N * C];
    assert_int_equal(backend_get_rows(b, wh, TYPE_F16, C, x16, NULL), 0);
    assert_memory_equal(x16, x, sizeof x);
    assert_int_equal(backend_get_out_rows(b, x, x, C, NULL), 0);
    assert_memory_equal(x, w + 0 * C, C * sizeof(float));     /* row 1: token 0 */
    assert_memory_equal(x + C, w + 3 * C, C * sizeof(float)); /* row 3: token 3 */
    /* malformed descriptors */
    larder_error err = {0};
    int32_t bad_seq[N] = {0, 1, 0, 0};
    bt.seq = bad_seq;
    assert_int_equal(backend_batch_set(b, &bt, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    bt.seq = seq;
    int32_t desc[2] = {3, 1};
    bt.out_rows = desc;
    assert_int_equal(backend_batch_set(b, &bt, &err), -1);
    bt.out_rows = out, bt.n_out = N + 1;
    assert_int_equal(backend_batch_set(b, &bt, &err), -1);
    backend_free(b);
}

/* An unknown backend name is a clear error naming what the build has. */
static void test_unknown_backend_refused(void **state) {
    (void)state;
    larder_error err = {0};
    assert_null(backend_create("tpu", &(backend_options){.n_threads = 1}, &err));
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "cpu"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_matches_formula),
        cmocka_unit_test(test_rmsnorm_matches_definition),
        cmocka_unit_test(test_simd_kernels_match_scalar),
        cmocka_unit_test(test_paged_attention_equals_contiguous),
        cmocka_unit_test(test_matmul_multi_equals_separate),
        cmocka_unit_test(test_rows_follow_the_batch),
        cmocka_unit_test(test_unknown_backend_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
