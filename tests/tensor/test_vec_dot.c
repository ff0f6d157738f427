/*
 * test_vec_dot.c — vec_dot_ref for every weight type equals the float dot
 * product of the dequantized weights and the dequantized activations (so the
 * integer-per-block arithmetic is right), and approximates the true product
 * with the float activations (so the activation quantizers are right).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "tensor/quant_test_util.h"

#define N (8 * QK_K)

typedef struct { float *x, *w, *wd, *ad; uint8_t *wq, *aq; } bufs;

static int setup(void **state) {
    static bufs b;
    b.x = malloc(N * sizeof(float)); b.w = malloc(N * sizeof(float));
    b.wd = malloc(N * sizeof(float)); b.ad = malloc(N * sizeof(float));
    b.wq = malloc(N * sizeof(float)); b.aq = malloc(N * sizeof(float));
    *state = &b;
    return b.x && b.w && b.wd && b.ad && b.wq && b.aq ? 0 : -1;
}
static int teardown(void **state) {
    bufs *b = *state;
    free(b->x); free(b->w); free(b->wd); free(b->ad); free(b->wq); free(b->aq);
    return 0;
}

/* Check vec_dot_ref(type, wq, aq) against sum wd*ad in double. */
static void check_dot(bufs *b, uint32_t wt, const char *what) {
    uint32_t at = quant_vec_dot_type(wt);
    dequantize_row(wt, b->wq, b->wd, N);
    dequantize_row(at, b->aq, b->ad, N);
    double ref = 0, mag = 0;
    for (int i = 0; i < N; i++) { ref += (double)b->wd[i] * b->ad[i]; mag += fabs((double)b->wd[i] * b->ad[i]); }
    float got = vec_dot_ref(wt, b->wq, b->aq, N);
    /* float accumulation across blocks, plus (Q8_1) the f16-rounded s = d*sum(q) */
    double tol = (at == TYPE_Q8_1 ? 2e-4 : 2e-5) * mag + 1e-12;
    if (fabs(got - ref) > tol)
        fail_msg("%s (%s): vec_dot_ref %.9g, float dot %.9g, tol %.3g", tensor_type_get(wt)->name, what, got, ref, tol);
}

static void test_dot_equals_dequantized_dot(void **state) {
    bufs *b = *state;
    test_rng r = { 2024 };
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        uint32_t wt = WEIGHT_TYPES[t], at = quant_vec_dot_type(wt);
        for (int rep = 0; rep < 5; rep++) {
            for (int i = 0; i < N; i++) { b->w[i] = 0.05f * rng_gauss(&r); b->x[i] = rng_gauss(&r) + (rep == 1 ? 0.5f : 0.0f); }
            assert_int_equal(quantize_row(wt, b->w, b->wq, N), 0);
            quantize_row_activation(at, b->x, b->aq, N);
            check_dot(b, wt, "quantized weights");
            /* arbitrary bit patterns too (every quant value and scale reachable) */
            if (tensor_type_get(wt)->block_elems > 1) {
                random_blocks(&r, wt, b->wq, N / tensor_type_get(wt)->block_elems);
                check_dot(b, wt, "random blocks");
            }
        }
    }
}

/* The quantized dot approximates the exact one: relative error bounded by the
 * weight type's precision (the activations add at most ~1%). */
static void test_dot_approximates_float_dot(void **state) {
    bufs *b = *state;
    test_rng r = { 5 };
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        uint32_t wt = WEIGHT_TYPES[t], at = quant_vec_dot_type(wt);
        double err2 = 0, sig2 = 0;
        for (int rep = 0; rep < 20; rep++) {
            for (int i = 0; i < N; i++) { b->w[i] = 0.05f * rng_gauss(&r); b->x[i] = rng_gauss(&r); }
            /* correlate w and x so the dot is far from zero */
            for (int i = 0; i < N; i++) b->x[i] += 10.0f * b->w[i];
            double exact = 0;
            for (int i = 0; i < N; i++) exact += (double)b->w[i] * b->x[i];
            quantize_row(wt, b->w, b->wq, N);
            quantize_row_activation(at, b->x, b->aq, N);
            double got = vec_dot_ref(wt, b->wq, b->aq, N);
            err2 += (got - exact) * (got - exact);
            sig2 += exact * exact;
        }
        double rel = sqrt(err2 / sig2);
        printf("%-5s dot rel err %.5f\n", tensor_type_get(wt)->name, rel);
        assert_true(rel < 0.05);
        if (at == TYPE_F32) assert_true(rel < 3e-3);
    }
}

/* Zero activations give exactly 0; an all-zero weight row gives exactly 0. */
static void test_zero_rows(void **state) {
    bufs *b = *state;
    test_rng r = { 11 };
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        uint32_t wt = WEIGHT_TYPES[t], at = quant_vec_dot_type(wt);
        for (int i = 0; i < N; i++) { b->w[i] = rng_gauss(&r); b->x[i] = 0.0f; }
        quantize_row(wt, b->w, b->wq, N);
        quantize_row_activation(at, b->x, b->aq, N);
        assert_true(vec_dot_ref(wt, b->wq, b->aq, N) == 0.0f);
        for (int i = 0; i < N; i++) { b->w[i] = 0.0f; b->x[i] = rng_gauss(&r); }
        quantize_row(wt, b->w, b->wq, N);
        quantize_row_activation(at, b->x, b->aq, N);
        assert_true(vec_dot_ref(wt, b->wq, b->aq, N) == 0.0f);
    }
}

/* The activation blocks carry what the kernels rely on: Q8_1's s = d*sum(q),
 * Q8_K's bsums = sums of 16 quants and the largest magnitude at -127. */
static void test_activation_block_fields(void **state) {
    bufs *b = *state;
    test_rng r = { 3 };
    for (int i = 0; i < N; i++) b->x[i] = rng_gauss(&r);
    quantize_row_activation(TYPE_Q8_1, b->x, b->aq, N);
    const block_q8_1 *a1 = (const block_q8_1 *)b->aq;
    for (int blk = 0; blk < N / QK32; blk++) {
        int sum = 0;
        for (int i = 0; i < QK32; i++) sum += a1[blk].qs[i];
        assert_true(fabsf(fp16_to_f32(a1[blk].s) - fp16_to_f32(a1[blk].d) * (float)sum) <=
                    1e-3f * fabsf(fp16_to_f32(a1[blk].d) * (float)sum) + 1e-6f);
    }
    quantize_row_activation(TYPE_Q8_K, b->x, b->aq, N);
    const block_q8_k *ak = (const block_q8_k *)b->aq;
    for (int blk = 0; blk < N / QK_K; blk++) {
        int minq = 0;
        for (int s = 0; s < QK_K / 16; s++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += ak[blk].qs[16 * s + i];
            assert_int_equal(ak[blk].bsums[s], sum);
        }
        for (int i = 0; i < QK_K; i++) if (ak[blk].qs[i] < minq) minq = ak[blk].qs[i];
        assert_int_equal(minq, -127);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_equals_dequantized_dot),
        cmocka_unit_test(test_dot_approximates_float_dot),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_activation_block_fields),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
