/*
 * test_matmul.c — cpu_matmul and cpu_matmul_multi compute
 * y[t][r] = vec_dot_ref(W_r, quantized x_t) for every token and row: decode
 * (1 token) and prefill (token counts that are and are not multiples of the
 * 4- and 8-token tiles), row counts that do not divide by the thread count or
 * the GEMM kernels' 4-row groups, row blocks larger than the L2 block, 1-3
 * threads and no pool, on the active kernel level (LARDER_CPU); a fused call
 * with mixed weight types (and mixed q8 tile layouts) equals separate calls;
 * bad shapes and types fail with a message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_matmul.h"
#include "tensor/quant.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dULL;
static float rnd_f(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 20) & 0xffffff) / 8388608.0f - 1.0f;
}

/* A random (rows, cols) matrix of wtype. */
static void *make_matrix(uint32_t wtype, int64_t rows, int64_t cols) {
    size_t rb = tensor_row_bytes(wtype, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *f = malloc((size_t)cols * sizeof *f);
    assert_non_null(w);
    assert_non_null(f);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) f[k] = rnd_f();
        assert_int_equal(quantize_row(wtype, f, w + (size_t)r * rb, cols), 0);
    }
    free(f);
    return w;
}

static float *make_x(int64_t n_tokens, int64_t cols) {
    float *x = malloc((size_t)(n_tokens * cols) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n_tokens * cols; i++) x[i] = rnd_f() * 2.0f;
    return x;
}

/* Checks y against the reference, relative to the size of the terms. */
static void check_against_reference(uint32_t wtype, const void *w, int64_t rows, int64_t cols,
                                    const float *x, int64_t n_tokens, const float *y) {
    uint32_t at = quant_vec_dot_type(wtype);
    size_t arb = tensor_row_bytes(at, cols), wrb = tensor_row_bytes(wtype, cols);
    void *a = malloc(arb);
    assert_non_null(a);
    for (int64_t t = 0; t < n_tokens; t++) {
        quantize_row_activation(at, x + t * cols, a, cols);
        for (int64_t r = 0; r < rows; r++) {
            float ref = vec_dot_ref(wtype, (const uint8_t *)w + (size_t)r * wrb, a, cols);
            float got = y[t * rows + r];
            /* terms are O(1) each: a loose absolute scale from cols */
            double tol = 1e-5 * (double)cols + 1e-6 * fabs(ref);
            if (!(fabs((double)got - ref) <= tol))
                fail_msg("%s rows=%lld cols=%lld tokens=%lld: y[%lld][%lld] = %.8g, reference %.8g",
                         tensor_type_get(wtype)->name, (long long)rows, (long long)cols,
                         (long long)n_tokens, (long long)t, (long long)r, got, ref);
        }
    }
    free(a);
}

static void run_case(cpu_matmul_ctx *ctx, thread_pool *pool, uint32_t wtype, int64_t rows, int64_t cols,
                     int64_t n_tokens) {
    void *w = make_matrix(wtype, rows, cols);
    float *x = make_x(n_tokens, cols);
    float *y = malloc((size_t)(rows * n_tokens) * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < rows * n_tokens; i++) y[i] = NAN;
    larder_error err = {0};
    if (cpu_matmul(ctx, pool, w, wtype, rows, cols, x, n_tokens, y, &err) != 0) fail_msg("%s", err.message);
    check_against_reference(wtype, w, rows, cols, x, n_tokens, y);
    free(w);
    free(x);
    free(y);
}

/* The fixture every test shares: one ctx (its scratch grows and is reused
 * across calls, as in the engine) and a pool of 2 threads. */
static cpu_matmul_ctx *g_ctx;
static thread_pool *g_pool2;

static int fixture_setup(void **state) {
    (void)state;
    larder_error err = {0};
    g_ctx = cpu_matmul_ctx_create(&err);
    g_pool2 = thread_pool_create(2, &err);
    return g_ctx && g_pool2 ? 0 : -1;
}

static int fixture_teardown(void **state) {
    (void)state;
    thread_pool_destroy(g_pool2);
    cpu_matmul_ctx_free(g_ctx);
    return 0;
}

static void test_matmul_matches_reference(void **state) {
    (void)state;
    static const uint32_t types[] = {TYPE_Q4_K, TYPE_Q6_K, TYPE_Q5_K, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_1,
                                     TYPE_Q5_0, TYPE_Q5_1, TYPE_F16, TYPE_BF16, TYPE_F32};
    static const int64_t tokens[] = {1, 2, 4, 7, 9, 17};
    larder_error err = {0};
    cpu_matmul_ctx *ctx = g_ctx;
    for (int threads = 0; threads <= 3; threads++) { /* 0: no pool */
        thread_pool *pool = threads ? thread_pool_create(threads, &err) : NULL;
        if (threads) assert_non_null(pool);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            int64_t cols = tensor_type_get(types[i])->block_elems == QK_K ? 512 : 96;
            for (size_t j = 0; j < sizeof tokens / sizeof tokens[0]; j++) {
                run_case(ctx, pool, types[i], 37, cols, tokens[j]);  /* small: on the caller */
                if (j % 2 == 0) run_case(ctx, pool, types[i], 301, cols, tokens[j]); /* split */
            }
        }
        thread_pool_destroy(pool);
    }
}

static void test_prefill_row_blocks_beyond_l2(void **state) {
    (void)state;
    /* 2600 rows of 1024 f32 = 4 KiB each: 10 MiB, several row blocks per thread */
    run_case(g_ctx, g_pool2, TYPE_F32, 2600, 1024, 6);
    run_case(g_ctx, g_pool2, TYPE_Q8_0, 2600, 1024, 5);
}

/* A fused call of the given types equals one call per matrix, bit for bit,
 * and the reference. */
static void check_fused_equals_separate(const uint32_t types[3], const int64_t rows[3]) {
    larder_error err = {0};
    cpu_matmul_ctx *ctx = g_ctx;
    thread_pool *pool = g_pool2;
    const int64_t cols = 1024, n_tokens = 11;
    void *w[3];
    float *y_fused[3], *y_sep[3];
    backend_matmul_weight mats[3];
    float *x = make_x(n_tokens, cols);
    for (int i = 0; i < 3; i++) {
        w[i] = make_matrix(types[i], rows[i], cols);
        y_fused[i] = malloc((size_t)(rows[i] * n_tokens) * sizeof(float));
        y_sep[i] = malloc((size_t)(rows[i] * n_tokens) * sizeof(float));
        assert_non_null(y_fused[i]);
        assert_non_null(y_sep[i]);
        mats[i] = (backend_matmul_weight){w[i], types[i], rows[i], y_fused[i]};
    }
    for (int64_t nt = 1; nt <= n_tokens; nt += n_tokens - 1) {
        assert_int_equal(cpu_matmul_multi(ctx, pool, mats, 3, cols, x, nt, &err), 0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(cpu_matmul(ctx, pool, w[i], types[i], rows[i], cols, x, nt, y_sep[i], &err), 0);
            assert_memory_equal(y_fused[i], y_sep[i], (size_t)(rows[i] * nt) * sizeof(float));
            check_against_reference(types[i], w[i], rows[i], cols, x, nt, y_fused[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        free(w[i]);
        free(y_fused[i]);
        free(y_sep[i]);
    }
    free(x);
}

static void test_fused_equals_separate(void **state) {
    (void)state;
    /* Q8_K and Q8_0 activations; ~250 KiB in all: split over the threads */
    const uint32_t kq[3] = {TYPE_Q4_K, TYPE_Q8_0, TYPE_Q6_K};
    const int64_t kq_rows[3] = {134, 48, 122};
    check_fused_equals_separate(kq, kq_rows);
    /* three GEMM types whose q8 tiles differ (AVX-512: broadcast for Q8_0,
     * sided for Q4_0 / Q5_0), odd row counts */
    const uint32_t legacy[3] = {TYPE_Q4_0, TYPE_Q8_0, TYPE_Q5_0};
    const int64_t legacy_rows[3] = {101, 66, 37};
    check_fused_equals_separate(legacy, legacy_rows);
}

static void test_thread_count_does_not_change_results(void **state) {
    (void)state;
    larder_error err = {0};
    cpu_matmul_ctx *ctx = g_ctx;
    const int64_t rows = 250, cols = 512, n_tokens = 19;
    const uint32_t types[3] = {TYPE_Q8_0, TYPE_Q4_K, TYPE_Q4_0};
    float *x = make_x(n_tokens, cols);
    for (int i = 0; i < 3; i++) {
        void *w = make_matrix(types[i], rows, cols);
        float *y1 = malloc((size_t)(rows * n_tokens) * sizeof(float)), *yn = malloc((size_t)(rows * n_tokens) * sizeof(float));
        assert_non_null(y1);
        assert_non_null(yn);
        assert_int_equal(cpu_matmul(ctx, NULL, w, types[i], rows, cols, x, n_tokens, y1, &err), 0);
        for (int threads = 2; threads <= 3; threads++) {
            thread_pool *pool = thread_pool_create(threads, &err);
            assert_non_null(pool);
            assert_int_equal(cpu_matmul(ctx, pool, w, types[i], rows, cols, x, n_tokens, yn, &err), 0);
            assert_memory_equal(y1, yn, (size_t)(rows * n_tokens) * sizeof(float));
            thread_pool_destroy(pool);
        }
        free(w);
        free(y1);
        free(yn);
    }
    free(x);
}

static void test_bad_inputs_rejected(void **state) {
    (void)state;
    larder_error err = {0};
    cpu_matmul_ctx *ctx = g_ctx;
    float x[512] = {0}, y[64];
    uint8_t w[4096] = {0};
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q4_K, 1, 100, x, 1, y, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.message, "multiple"));
    assert_int_equal(cpu_matmul(ctx, NULL, w, 999, 1, 256, x, 1, y, &err), -1);
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_K, 1, 256, x, 1, y, &err), -1);
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, -1, 32, x, 1, y, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, 1, 32, x, -2, y, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(cpu_matmul_multi(ctx, NULL, NULL, 0, 32, x, 1, &err), -1);
    backend_matmul_weight many[CPU_MATMUL_MAX_MATS + 1];
    assert_int_equal(cpu_matmul_multi(ctx, NULL, many, CPU_MATMUL_MAX_MATS + 1, 32, x, 1, &err), -1);
    /* the scratch limit: a token count whose activations exceed it (never allocated) */
    int64_t huge = (int64_t)(CPU_MATMUL_MAX_SCRATCH_BYTES / tensor_row_bytes(TYPE_Q8_0, 32)) + 1;
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, 1, 32, x, huge, y, &err), -1);
    assert_int_equal(err.code, ERR_LIMIT);
    /* empty shapes are fine and write nothing / zeros */
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, 0, 32, x, 3, y, &err), 0);
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, 4, 32, x, 0, y, &err), 0);
    y[0] = 5;
    assert_int_equal(cpu_matmul(ctx, NULL, w, TYPE_Q8_0, 2, 0, x, 1, y, &err), 0);
    assert_true(y[0] == 0.0f && y[1] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_matches_reference),
        cmocka_unit_test(test_prefill_row_blocks_beyond_l2),
        cmocka_unit_test(test_fused_equals_separate),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_bad_inputs_rejected),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
