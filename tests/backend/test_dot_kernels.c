/*
 * test_dot_kernels.c — every SIMD dot kernel and activation quantizer the CPU
 * supports (AVX2, AVX-512 on x86-64; NEON, dotprod, i8mm on AArch64, where
 * `make test-arm64` runs this under qemu once per -cpu model) agrees with
 * the scalar reference of
 * src/tensor/quant.h: activation quantization bit for bit, dot products
 * within float-reordering tolerance, for 1..4 tokens per call, on weights
 * quantized from random floats AND on random block bytes (every bit pattern
 * of quants and sub-block scales), at several row lengths; the prefill
 * GEMM kernels (q8 tiles) likewise for 1-3 tiles of tokens (full and partial)
 * and row counts that do and do not fill the kernels' row groups, the Q4_0 /
 * Q5_0 ones bit for bit as the dot kernel with 2+ tokens (llama.cpp's
 * prefill order on x86; on ARM Q8_0 too, so the SDOT and SMMLA GEMMs agree
 * bit for bit with the dot kernels). Every level of the CPU's chain is
 * checked; a level it lacks must fall back to the level below. With
 * LARDER_TEST_EXPECT_LEVEL set, the detected level must be that one (the
 * qemu runs check the feature detection this way). The F32 dot sums bit for bit in the order of llama.cpp's
 * F32 matmul of the same instruction set (tinyBLAS: 8 lanes with AVX2, 16
 * with AVX-512), for 1..4 tokens.
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

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_kernels.h"
#include "tensor/quant.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
/* Uniform in [-1, 1). */
static float rnd_f(void) { return (float)(rnd_u32() & 0xffffff) / 8388608.0f - 1.0f; }

static const uint32_t g_wtypes[] = {TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0, TYPE_Q4_K,
                                    TYPE_Q5_K, TYPE_Q6_K, TYPE_F16, TYPE_BF16, TYPE_F32,
                                    TYPE_Q2_K, TYPE_Q3_K};
#define N_WTYPES (sizeof g_wtypes / sizeof g_wtypes[0])

/* Byte offsets of the f16 scale fields in one block of a type (-1 ends). */
static const int *scale_offsets(uint32_t type) {
    static const int d0[] = {0, -1}, d01[] = {0, 2, -1}, q6k[] = {208, -1}, q2k[] = {80, 82, -1},
                     q3k[] = {108, -1}, none[] = {-1};
    switch (type) {
    case TYPE_Q4_0: case TYPE_Q5_0: case TYPE_Q8_0: return d0;
    case TYPE_Q4_1: case TYPE_Q5_1: case TYPE_Q4_K: case TYPE_Q5_K: return d01;
    case TYPE_Q6_K: return q6k;
    case TYPE_Q2_K: return q2k;
    case TYPE_Q3_K: return q3k;
    default: return none;
    }
}

/* A weight row of `type` with n elements: quantized from random floats, or
 * (random_bytes) random bytes with every f16 scale set to a sane value. */
static void make_weight_row(uint32_t type, int64_t n, bool random_bytes, void *row) {
    const tensor_type_traits *tr = tensor_type_get(type);
    size_t bytes = tensor_row_bytes(type, n);
    float *f = malloc((size_t)n * sizeof *f);
    assert_non_null(f);
    for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * (1.0f + (float)(i % 7));
    if (!random_bytes || tr->block_elems == 1) {
        assert_int_equal(quantize_row(type, f, row, n), 0);
    } else {
        uint8_t *p = row;
        for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)rnd_u32();
        for (int64_t b = 0; b < n / tr->block_elems; b++)
            for (const int *o = scale_offsets(type); *o >= 0; o++) {
                uint16_t h = f32_to_fp16(rnd_f() * 0.01f);
                memcpy(p + (size_t)b * tr->block_bytes + (size_t)*o, &h, sizeof h);
            }
    }
    free(f);
}

/* sum |w_i * a_i| over the dequantized rows: the scale of rounding errors. */
static double abs_dot(uint32_t wtype, const void *w, uint32_t atype, const void *a, int64_t n) {
    float *wf = malloc((size_t)n * sizeof *wf), *af = malloc((size_t)n * sizeof *af);
    assert_non_null(wf);
    assert_non_null(af);
    dequantize_row(wtype, w, wf, n);
    dequantize_row(atype, a, af, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)wf[i] * af[i]);
    free(wf);
    free(af);
    return s;
}

static void check_type_level(const cpu_kernels *k, uint32_t wtype, int64_t n, bool random_bytes) {
    uint32_t atype = quant_vec_dot_type(wtype);
    size_t wbytes = tensor_row_bytes(wtype, n), abytes = tensor_row_bytes(atype, n);
    void *w = malloc(wbytes);
    char *act = malloc(abytes * CPU_DOT_MAX_TOKENS), *act_fast = malloc(abytes);
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(w);
    assert_non_null(act);
    assert_non_null(act_fast);
    assert_non_null(x);
    make_weight_row(wtype, n, random_bytes, w);
    for (int t = 0; t < CPU_DOT_MAX_TOKENS; t++) {
        for (int64_t i = 0; i < n; i++) x[i] = rnd_f() * (t == 2 ? 1e-3f : 3.0f);
        if (t == 3) x[n / 2] = -40.0f; /* a negative extreme: the Q8_K scale is negative-signed */
        quantize_row_activation(atype, x, act + (size_t)t * abytes, n);
        /* the fast quantizer: bit-identical */
        memset(act_fast, 0x55, abytes);
        k->quantize[atype](x, act_fast, n);
        if (memcmp(act_fast, act + (size_t)t * abytes, abytes) != 0)
            fail_msg("%s quantize %s n=%lld token %d differs from the reference",
                     cpu_level_name(k->level), tensor_type_get(atype)->name, (long long)n, t);
    }
    double tol_rel = wtype == TYPE_F32 || wtype == TYPE_F16 || wtype == TYPE_BF16 ? 1e-5 : 1e-5;
    assert_true(k->tile_tokens[wtype] >= 1 && k->tile_tokens[wtype] <= CPU_DOT_MAX_TOKENS);
    for (int nt = 1; nt <= k->tile_tokens[wtype]; nt++) { /* every tile width the kernel takes */
        float out[CPU_DOT_MAX_TOKENS];
        for (int t = 0; t < CPU_DOT_MAX_TOKENS; t++) out[t] = NAN;
        k->dot[wtype](n, w, act, abytes, nt, out);
        for (int t = 0; t < nt; t++) {
            const void *a = act + (size_t)t * abytes;
            float ref = vec_dot_ref(wtype, w, a, n);
            double tol = tol_rel * abs_dot(wtype, w, atype, a, n) + 1e-30;
            if (!(fabs((double)out[t] - ref) <= tol))
                fail_msg("%s dot %s n=%lld %s n_tok=%d token %d: got %.9g, reference %.9g (tol %.3g)",
                         cpu_level_name(k->level), tensor_type_get(wtype)->name, (long long)n,
                         random_bytes ? "random-bytes" : "quantized", nt, t, out[t], ref, tol);
        }
        for (int t = nt; t < CPU_DOT_MAX_TOKENS; t++) assert_true(isnan(out[t])); /* untouched */
    }
    free(w);
    free(act);
    free(act_fast);
    free(x);
}

/* The GEMM of wtype (if the table has one): rows x tokens from packed q8
 * tiles against vec_dot_ref on the reference Q8_0 quantization. */
static void check_gemm(const cpu_kernels *k, uint32_t wtype, int64_t n, bool random_bytes) {
    const cpu_gemm_kernel *g = &k->gemm[wtype];
    if (!g->gemm) return;
    assert_non_null(g->pack);
    assert_true(g->tile_tokens >= 1 && g->tile_block_bytes % 32 == 0);
    enum { MAX_ROWS = 7, MAX_TOKENS = 24 };
    size_t wbytes = tensor_row_bytes(wtype, n), abytes = tensor_row_bytes(TYPE_Q8_0, n);
    int64_t nb = n / 32;
    uint8_t *w = malloc(wbytes * MAX_ROWS);
    char *act = malloc(abytes * MAX_TOKENS);
    float *x = malloc((size_t)n * MAX_TOKENS * sizeof *x);
    float *y = malloc(sizeof(float) * MAX_ROWS * MAX_TOKENS);
    size_t tile_bytes = (size_t)nb * g->tile_block_bytes;
    size_t tiles_bytes = tile_bytes * (size_t)((MAX_TOKENS + g->tile_tokens - 1) / g->tile_tokens);
    void *tiles = aligned_alloc(64, (tiles_bytes + 63) / 64 * 64);
    size_t work_bytes = g->work_bytes_per_row_block * (size_t)nb * MAX_ROWS;
    void *work = work_bytes ? aligned_alloc(64, (work_bytes + 63) / 64 * 64) : NULL;
    assert_true(w && act && x && y && tiles && (work || !work_bytes));
    for (int r = 0; r < MAX_ROWS; r++) make_weight_row(wtype, n, random_bytes != (r % 2 == 1), w + (size_t)r * wbytes);
    for (int t = 0; t < MAX_TOKENS; t++) {
        for (int64_t i = 0; i < n; i++) x[(size_t)t * n + i] = rnd_f() * (t % 3 == 2 ? 1e-3f : 3.0f);
        if (t == 3) x[(size_t)t * n + n / 2] = -40.0f;
        if (t == 4) memset(x + (size_t)t * n, 0, (size_t)n * sizeof *x); /* an all-zero token: d = 0 */
        quantize_row_activation(TYPE_Q8_0, x + (size_t)t * n, act + (size_t)t * abytes, n);
    }
    const int64_t token_counts[] = {1, 5, g->tile_tokens, g->tile_tokens + 1, MAX_TOKENS - 1};
    const int64_t row_counts[] = {1, 3, 4, MAX_ROWS};
    for (size_t ti = 0; ti < sizeof token_counts / sizeof token_counts[0]; ti++) {
        int64_t n_tok = token_counts[ti];
        memset(tiles, 0, tiles_bytes); /* the unused slots of a partial tile are zero */
        for (int64_t t = 0; t < n_tok; t++)
            g->pack(x + (size_t)t * n, n, (int)(t % g->tile_tokens),
                    (char *)tiles + (size_t)(t / g->tile_tokens) * tile_bytes);
        for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
            int64_t rows = row_counts[ri];
            for (int i = 0; i < MAX_ROWS * MAX_TOKENS; i++) y[i] = NAN;
            g->gemm(n, w, wbytes, rows, tiles, n_tok, y, rows, work);
            for (int64_t t = 0; t < n_tok; t++)
                for (int64_t r = 0; r < rows; r++) {
                    const void *a = act + (size_t)t * abytes, *wr = w + (size_t)r * wbytes;
                    float ref = vec_dot_ref(wtype, wr, a, n), got = y[t * rows + r];
                    double tol = 1e-5 * abs_dot(wtype, wr, TYPE_Q8_0, a, n) + 1e-30;
                    if (!(fabs((double)got - ref) <= tol))
                        fail_msg("%s gemm %s n=%lld %s rows=%lld tokens=%lld: row %lld token %lld got %.9g, "
                                 "reference %.9g (tol %.3g)",
                                 cpu_level_name(k->level), tensor_type_get(wtype)->name, (long long)n,
                                 random_bytes ? "random-bytes" : "quantized", (long long)rows, (long long)n_tok,
                                 (long long)r, (long long)t, got, ref, tol);
                }
            for (int64_t i = rows * n_tok; i < MAX_ROWS * MAX_TOKENS; i++) assert_true(isnan(y[i])); /* untouched */
            bool arm = cpu_level_includes(k->level, CPU_LEVEL_NEON);
            if ((wtype == TYPE_Q4_0 || wtype == TYPE_Q5_0 || (arm && wtype == TYPE_Q8_0)) && n_tok >= 2) {
                /* llama.cpp's prefill order: bit for bit the dot kernel with 2+ tokens */
                for (int64_t t0 = 0; t0 + 2 <= n_tok; t0 += 2)
                    for (int64_t r = 0; r < rows; r++) {
                        float one[CPU_DOT_MAX_TOKENS];
                        k->dot[wtype](n, w + (size_t)r * wbytes, act + (size_t)t0 * abytes, abytes, 2, one);
                        for (int t = 0; t < 2; t++)
                            if (memcmp(&one[t], &y[(t0 + t) * rows + r], sizeof one[t]) != 0)
                                fail_msg("%s gemm %s n=%lld row %lld token %lld: %.9g, dot kernel %.9g",
                                         cpu_level_name(k->level), tensor_type_get(wtype)->name, (long long)n,
                                         (long long)r, (long long)(t0 + t), y[(t0 + t) * rows + r], one[t]);
                    }
            }
        }
    }
    free(w);
    free(act);
    free(x);
    free(y);
    free(tiles);
    free(work);
}

static void check_level(cpu_level level) {
    const cpu_kernels *k = cpu_kernels_for(level);
    assert_int_equal(k->level, level);
    for (size_t i = 0; i < N_WTYPES; i++) {
        uint32_t wtype = g_wtypes[i];
        int32_t be = tensor_type_get(wtype)->block_elems;
        assert_non_null(k->dot[wtype]);
        int64_t sizes_blocks[] = {1, 2, 3, 8, 11};
        int64_t sizes_float[] = {1, 7, 8, 13, 64, 257, 1000};
        if (be == 1) {
            for (size_t s = 0; s < sizeof sizes_float / sizeof sizes_float[0]; s++)
                check_type_level(k, wtype, sizes_float[s], false);
        } else {
            for (size_t s = 0; s < sizeof sizes_blocks / sizeof sizes_blocks[0]; s++) {
                check_type_level(k, wtype, sizes_blocks[s] * be, false);
                check_type_level(k, wtype, sizes_blocks[s] * be, true);
                check_gemm(k, wtype, sizes_blocks[s] * be, false);
                check_gemm(k, wtype, sizes_blocks[s] * be, true);
            }
        }
    }
}

/* The SIMD tables give the 32-element signed types their prefill GEMM. */
static void check_gemm_present(cpu_level level) {
    const cpu_kernels *k = cpu_kernels_for(level);
    const uint32_t types[] = {TYPE_Q8_0, TYPE_Q4_0, TYPE_Q5_0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_non_null(k->gemm[types[i]].gemm);
}

static void test_scalar_table_is_reference(void **state) {
    (void)state;
    check_level(CPU_LEVEL_SCALAR);
}

/* One SIMD level (state points at it): checked when the CPU has it;
 * otherwise its table must be the highest level below it that the CPU has. */
static void test_level_matches_reference(void **state) {
    cpu_level level = *(const cpu_level *)*state;
    cpu_level have = level;
    while (!cpu_level_includes(cpu_level_supported(), have)) have = cpu_level_below(have);
    if (have != level) {
        printf("# CPU has no %s: its table falls back to %s, checked anyway\n", cpu_level_name(level),
               cpu_level_name(have));
        assert_int_equal(cpu_kernels_for(level)->level, have);
        return;
    }
    printf("# %s: every kernel against the reference\n", cpu_level_name(level));
    check_level(level);
    check_gemm_present(level);
}

/* llama.cpp's F32 matmul result for one output (ggml-cpu/llamafile/
 * sgemm.cpp, tinyBLAS<lanes>): lane l accumulates w[k]·x[k] for k = l,
 * l + lanes, ... with one rounding per fused multiply-add; the lanes are then
 * summed by halves (l + l + lanes/2, down to 4 lanes), then (0 + 2) + (1 + 3). */
static float tinyblas_dot_f32(const float *w, const float *x, int64_t n, int lanes) {
    float acc[16] = {0};
    for (int64_t k = 0; k < n; k += lanes)
        for (int l = 0; l < lanes; l++) acc[l] = fmaf(w[k + l], x[k + l], acc[l]);
    for (int half = lanes / 2; half >= 4; half /= 2)
        for (int l = 0; l < half; l++) acc[l] = acc[l + half] + acc[l];
    return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

static void check_f32_order(cpu_level level, int lanes) {
    const cpu_kernels *k = cpu_kernels_for(level);
    assert_int_equal(k->level, level);
    enum { N = 512, T = 4 };
    static float w[N], x[T * N];
    for (int i = 0; i < N; i++) w[i] = rnd_f();
    for (int i = 0; i < T * N; i++) x[i] = rnd_f();
    for (int64_t n = lanes; n <= N; n *= 2)
        for (int nt = 1; nt <= T; nt++) {
            float out[CPU_DOT_MAX_TOKENS];
            k->dot[TYPE_F32](n, w, x, N * sizeof(float), nt, out);
            for (int t = 0; t < nt; t++) {
                float want = tinyblas_dot_f32(w, x + t * N, n, lanes);
                if (memcmp(&out[t], &want, sizeof want) != 0)
                    fail_msg("%s F32 dot, n %lld, %d tokens, token %d: %.9g, llama.cpp's order %.9g",
                             cpu_level_name(level), (long long)n, nt, t, out[t], want);
            }
        }
}

static void test_f32_dot_sums_in_llamacpp_order(void **state) {
    (void)state;
    cpu_level top = cpu_level_supported();
    if (cpu_level_includes(top, CPU_LEVEL_AVX2)) check_f32_order(CPU_LEVEL_AVX2, 8);
    if (cpu_level_includes(top, CPU_LEVEL_AVX512)) check_f32_order(CPU_LEVEL_AVX512, 16);
    if (!cpu_level_includes(top, CPU_LEVEL_AVX2)) printf("# no x86 SIMD level: nothing to hold\n");
}

static void test_level_names_parse(void **state) {
    (void)state;
    cpu_level l;
    for (int i = CPU_LEVEL_SCALAR; i < CPU_LEVEL_COUNT; i++) {
        assert_true(cpu_level_parse(cpu_level_name((cpu_level)i), &l));
        assert_int_equal(l, i);
    }
    assert_false(cpu_level_parse("sse9", &l));
    assert_false(cpu_level_parse("", &l));
    assert_true(cpu_level_includes(cpu_level_supported(), cpu_level_active()));
    assert_true(cpu_level_includes(CPU_LEVEL_I8MM, CPU_LEVEL_NEON));
    assert_true(cpu_level_includes(CPU_LEVEL_AVX512, CPU_LEVEL_SCALAR));
    assert_false(cpu_level_includes(CPU_LEVEL_DOTPROD, CPU_LEVEL_AVX2));
    assert_false(cpu_level_includes(CPU_LEVEL_NEON, CPU_LEVEL_DOTPROD));
    const cpu_features *f = cpu_features_get();
    if (cpu_level_includes(cpu_level_supported(), CPU_LEVEL_AVX2)) assert_true(f->avx2 && f->fma && f->f16c);
    if (cpu_level_includes(cpu_level_supported(), CPU_LEVEL_DOTPROD)) assert_true(f->neon && f->dotprod);
    if (cpu_level_supported() == CPU_LEVEL_I8MM) assert_true(f->i8mm);
    printf("# supported %s, active %s\n", cpu_level_name(cpu_level_supported()),
           cpu_level_name(cpu_level_active()));
    const char *want = getenv("LARDER_TEST_EXPECT_LEVEL");
    if (want && *want && strcmp(want, cpu_level_name(cpu_level_supported())) != 0)
        fail_msg("detected level %s, expected %s", cpu_level_name(cpu_level_supported()), want);
}

static const cpu_level g_levels[CPU_LEVEL_COUNT - 1] = {CPU_LEVEL_AVX2, CPU_LEVEL_AVX512, CPU_LEVEL_NEON,
                                                         CPU_LEVEL_DOTPROD, CPU_LEVEL_I8MM};

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names_parse),
        cmocka_unit_test(test_scalar_table_is_reference),
        cmocka_unit_test_prestate(test_level_matches_reference, (void *)&g_levels[0]),
        cmocka_unit_test_prestate(test_level_matches_reference, (void *)&g_levels[1]),
        cmocka_unit_test_prestate(test_level_matches_reference, (void *)&g_levels[2]),
        cmocka_unit_test_prestate(test_level_matches_reference, (void *)&g_levels[3]),
        cmocka_unit_test_prestate(test_level_matches_reference, (void *)&g_levels[4]),
        cmocka_unit_test(test_f32_dot_sums_in_llamacpp_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
