/*
 * test_quant_vs_ggml.c — holds larder's reference kernels against ggml's own,
 * loaded at run time from the libggml that node-llama-cpp ships
 * (node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/; `make deps`).
 *
 *   - dequantize_row is bit-identical to ggml's dequantize_row_* on random blocks
 *   - vec_dot_ref matches ggml's generic (scalar) vec_dot_*_q8_* within float rounding
 *   - our quantizers' error is no worse than ggml's reference quantizers'
 *   - fp16/bf16 conversions match ggml's on many values
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor/quant_test_util.h"

#define GGML_LIB_DIR "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

static void *lib_base, *lib_cpu;

typedef void (*dequant_fn)(const void *x, float *y, int64_t k);
typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);

typedef struct {
    uint32_t type;
    const char *dequant, *quant, *dot;
} ggml_names;

static const ggml_names NAMES[] = {
    { TYPE_Q4_0, "dequantize_row_q4_0", "quantize_row_q4_0_ref", "ggml_vec_dot_q4_0_q8_0_generic" },
    { TYPE_Q4_1, "dequantize_row_q4_1", "quantize_row_q4_1_ref", "ggml_vec_dot_q4_1_q8_1_generic" },
    { TYPE_Q5_0, "dequantize_row_q5_0", "quantize_row_q5_0_ref", "ggml_vec_dot_q5_0_q8_0_generic" },
    { TYPE_Q5_1, "dequantize_row_q5_1", "quantize_row_q5_1_ref", "ggml_vec_dot_q5_1_q8_1_generic" },
    { TYPE_Q8_0, "dequantize_row_q8_0", "quantize_row_q8_0_ref", "ggml_vec_dot_q8_0_q8_0_generic" },
    { TYPE_Q2_K, "dequantize_row_q2_K", "quantize_row_q2_K_ref", "ggml_vec_dot_q2_K_q8_K_generic" },
    { TYPE_Q3_K, "dequantize_row_q3_K", "quantize_row_q3_K_ref", "ggml_vec_dot_q3_K_q8_K_generic" },
    { TYPE_Q4_K, "dequantize_row_q4_K", "quantize_row_q4_K_ref", "ggml_vec_dot_q4_K_q8_K_generic" },
    { TYPE_Q5_K, "dequantize_row_q5_K", "quantize_row_q5_K_ref", "ggml_vec_dot_q5_K_q8_K_generic" },
    { TYPE_Q6_K, "dequantize_row_q6_K", "quantize_row_q6_K_ref", "ggml_vec_dot_q6_K_q8_K_generic" },
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL) fprintf(stderr, "libggml lacks %s\n", name);
    return p;
}

static int setup(void **state) {
    (void)state;
    const char *root = getenv("ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/" GGML_LIB_DIR "/libggml-base.so", root ? root : ".");
    lib_base = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (lib_base == NULL) { fprintf(stderr, "cannot load %s: %s (run make deps)\n", path, dlerror()); return -1; }
    snprintf(path, sizeof path, "%s/" GGML_LIB_DIR "/libggml-cpu-x64.so", root ? root : ".");
    lib_cpu = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (lib_cpu == NULL) { fprintf(stderr, "cannot load %s: %s\n", path, dlerror()); return -1; }
    void (*cpu_init)(void) = (void (*)(void))sym(lib_cpu, "ggml_cpu_init"); /* fills f16 tables */
    if (cpu_init == NULL) return -1;
    cpu_init();
    return 0;
}

/* dequantize_row(random blocks) is bit-identical to ggml's. */
static void test_dequantize_bit_identical(void **state) {
    (void)state;
    test_rng r = { 0x1234567 };
    for (size_t t = 0; t < N_NAMES; t++) {
        const tensor_type_traits *tr = tensor_type_get(NAMES[t].type);
        dequant_fn ref = (dequant_fn)sym(lib_base, NAMES[t].dequant);
        assert_non_null(ref);
        int64_t nb = 8, n = nb * tr->block_elems;
        uint8_t *blocks = malloc((size_t)nb * tr->block_bytes);
        float *ours = malloc((size_t)n * sizeof(float)), *theirs = malloc((size_t)n * sizeof(float));
        assert_true(blocks && ours && theirs);
        for (int rep = 0; rep < 20; rep++) {
            random_blocks(&r, NAMES[t].type, blocks, nb);
            dequantize_row(NAMES[t].type, blocks, ours, n);
            ref(blocks, theirs, n);
            if (memcmp(ours, theirs, (size_t)n * sizeof(float)) != 0) {
                for (int64_t i = 0; i < n; i++)
                    if (ours[i] != theirs[i]) { fprintf(stderr, "%s elem %lld: %g vs %g\n", tr->name, (long long)i, ours[i], theirs[i]); break; }
                fail();
            }
        }
        free(blocks); free(ours); free(theirs);
    }
}

/* vec_dot_ref agrees with ggml's scalar kernels on random weights and activations. */
static void test_vec_dot_matches_ggml(void **state) {
    (void)state;
    test_rng r = { 0xabcdef };
    for (size_t t = 0; t < N_NAMES; t++) {
        uint32_t wt = NAMES[t].type, at = quant_vec_dot_type(wt);
        const tensor_type_traits *tr = tensor_type_get(wt);
        dot_fn ref = (dot_fn)sym(lib_cpu, NAMES[t].dot);
        assert_non_null(ref);
        int64_t n = 4 * QK_K, nb = n / tr->block_elems;
        uint8_t *w = malloc((size_t)nb * tr->block_bytes), *a = malloc(tensor_row_bytes(at, n));
        float *x = malloc((size_t)n * sizeof(float));
        assert_true(w && a && x);
        for (int rep = 0; rep < 20; rep++) {
            random_blocks(&r, wt, w, nb);
            for (int64_t i = 0; i < n; i++) x[i] = rng_gauss(&r);
            quantize_row_activation(at, x, a, n);
            float ours = vec_dot_ref(wt, w, a, n), theirs = 0;
            ref((int)n, &theirs, 0, w, 0, a, 0, 1);
            double tol = 1e-5 * (fabs(theirs) + 1.0);
            if (fabs((double)ours - theirs) > tol) {
                fprintf(stderr, "%s dot: %.9g vs ggml %.9g\n", tr->name, ours, theirs);
                fail();
            }
        }
        free(w); free(a); free(x);
    }
}

/* Our quantizers are at least as accurate as ggml's reference ones on
 * gaussian data with outliers (0.2% slack: Q8_0 is the same algorithm). */
static void test_quantizer_error_not_worse(void **state) {
    (void)state;
    test_rng r = { 0x5eed };
    int64_t n = 64 * QK_K;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    uint8_t *q = malloc(tensor_row_bytes(TYPE_Q8_0, n) * 2);
    assert_true(x && y && q);
    for (int64_t i = 0; i < n; i++) x[i] = 0.02f * rng_gauss(&r) * (i % 97 == 0 ? 8.0f : 1.0f);
    for (size_t t = 0; t < N_NAMES; t++) {
        uint32_t type = NAMES[t].type;
        quant_fn ref = (quant_fn)sym(lib_base, NAMES[t].quant);
        assert_non_null(ref);
        assert_int_equal(quantize_row(type, x, q, n), 0);
        dequantize_row(type, q, y, n);
        double ours = rel_rmse(x, y, n);
        ref(x, q, n);
        dequantize_row(type, q, y, n);
        double theirs = rel_rmse(x, y, n);
        printf("%-5s rel rmse: larder %.5f ggml %.5f\n", tensor_type_get(type)->name, ours, theirs);
        assert_true(ours <= theirs * 1.002);
    }
    free(x); free(y); free(q);
}

/* Our Q8_K activation quantizer produces ggml's blocks (d exactly; quants may
 * differ by one only where x/d is a rounding tie). */
static void test_q8_k_activation_matches(void **state) {
    (void)state;
    test_rng r = { 77 };
    quant_fn ref = (quant_fn)sym(lib_base, "quantize_row_q8_K_ref");
    assert_non_null(ref);
    float x[2 * QK_K];
    block_q8_k ours[2], theirs[2];
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < 2 * QK_K; i++) x[i] = rng_gauss(&r);
        quantize_row_activation(TYPE_Q8_K, x, ours, 2 * QK_K);
        ref(x, theirs, 2 * QK_K);
        for (int b = 0; b < 2; b++) {
            assert_true(ours[b].d == theirs[b].d);
            for (int i = 0; i < QK_K; i++) assert_true(abs(ours[b].qs[i] - theirs[b].qs[i]) <= 1);
        }
    }
}

static void test_half_conversions_match(void **state) {
    (void)state;
    float (*h2f)(uint16_t) = (float (*)(uint16_t))sym(lib_base, "ggml_fp16_to_fp32");
    uint16_t (*f2h)(float) = (uint16_t (*)(float))sym(lib_base, "ggml_fp32_to_fp16");
    float (*b2f)(uint16_t) = (float (*)(uint16_t))sym(lib_base, "ggml_bf16_to_fp32");
    uint16_t (*f2b)(float) = (uint16_t (*)(float))sym(lib_base, "ggml_fp32_to_bf16");
    assert_true(h2f && f2h && b2f && f2b);
    for (uint32_t h = 0; h < 65536; h++) {
        float a = fp16_to_f32((uint16_t)h), b = h2f((uint16_t)h);
        if (isnan(a)) assert_true(isnan(b));
        else assert_memory_equal(&a, &b, 4);
        a = bf16_to_f32((uint16_t)h); b = b2f((uint16_t)h);
        assert_memory_equal(&a, &b, 4);
    }
    for (uint64_t u = 0; u < (1ull << 32); u += 9973) {
        uint32_t bits = (uint32_t)u; float f;
        memcpy(&f, &bits, 4);
        if (isnan(f)) continue;
        assert_int_equal(f32_to_fp16(f), f2h(f));
        assert_int_equal(f32_to_bf16(f), f2b(f));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequantize_bit_identical),
        cmocka_unit_test(test_vec_dot_matches_ggml),
        cmocka_unit_test(test_quantizer_error_not_worse),
        cmocka_unit_test(test_q8_k_activation_matches),
        cmocka_unit_test(test_half_conversions_match),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
