/*
 * test_dtype_traits.c — the type table (names, block sizes, row bytes),
 * unknown ids, name lookup, and fp16/bf16 conversions on edge cases against
 * known bit patterns.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tensor/dtype.h"
#include "tensor/quant.h"

static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float float_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_traits_of_every_type(void **state) {
    (void)state;
    static const struct { uint32_t id; const char *name; int32_t elems; size_t bytes; } want[] = {
        { TYPE_F32, "f32", 1, 4 },         { TYPE_F16, "f16", 1, 2 },        { TYPE_BF16, "bf16", 1, 2 },
        { TYPE_Q4_0, "q4_0", 32, 18 },     { TYPE_Q4_1, "q4_1", 32, 20 },    { TYPE_Q5_0, "q5_0", 32, 22 },
        { TYPE_Q5_1, "q5_1", 32, 24 },     { TYPE_Q8_0, "q8_0", 32, 34 },    { TYPE_Q8_1, "q8_1", 32, 36 },
        { TYPE_Q2_K, "q2_k", 256, 84 },    { TYPE_Q3_K, "q3_k", 256, 110 },  { TYPE_Q4_K, "q4_k", 256, 144 },
        { TYPE_Q5_K, "q5_k", 256, 176 },   { TYPE_Q6_K, "q6_k", 256, 210 },  { TYPE_Q8_K, "q8_k", 256, 292 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tensor_type_traits *t = tensor_type_get(want[i].id);
        assert_non_null(t);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->block_elems, want[i].elems);
        assert_int_equal(t->block_bytes, want[i].bytes);
        assert_int_equal(tensor_type_from_name(want[i].name), (int)want[i].id);
        assert_true(quant_can_dequantize(want[i].id));
    }
    /* activation-only types are not weight types */
    assert_false(tensor_type_get(TYPE_Q8_1)->can_compute);
    assert_false(tensor_type_get(TYPE_Q8_K)->can_compute);
    assert_true(tensor_type_get(TYPE_Q4_K)->can_compute);
}

static void test_unknown_type_ids_rejected(void **state) {
    (void)state;
    static const uint32_t unknown[] = { 4, 5, 16, 17, 29, 31, 39, 63, 64, 65, 1000, UINT32_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(tensor_type_get(unknown[i]));
        assert_int_equal(tensor_row_bytes(unknown[i], 256), 0);
        assert_false(quant_can_dequantize(unknown[i]));
        assert_int_equal(quant_vec_dot_type(unknown[i]), QUANT_NO_TYPE);
        float src[32] = { 1 }, dst[32];
        uint8_t out[256];
        assert_int_equal(quantize_row(unknown[i], src, out, 32), -1);
        memset(dst, 0x7f, sizeof dst);
        dequantize_row(unknown[i], out, dst, 32);
        for (int k = 0; k < 32; k++) assert_true(dst[k] == 0.0f);
        assert_true(vec_dot_ref(unknown[i], out, src, 32) == 0.0f);
    }
    /* the activation types have no dot product as weights */
    assert_int_equal(quant_vec_dot_type(TYPE_Q8_K), QUANT_NO_TYPE);
    assert_int_equal(quant_vec_dot_type(TYPE_Q8_1), QUANT_NO_TYPE);
}

static void test_row_bytes(void **state) {
    (void)state;
    assert_int_equal(tensor_row_bytes(TYPE_F32, 3), 12);
    assert_int_equal(tensor_row_bytes(TYPE_F16, 5), 10);
    assert_int_equal(tensor_row_bytes(TYPE_BF16, 0), 0);
    assert_int_equal(tensor_row_bytes(TYPE_Q4_0, 64), 36);
    assert_int_equal(tensor_row_bytes(TYPE_Q8_0, 4096), 128 * 34);
    assert_int_equal(tensor_row_bytes(TYPE_Q4_K, 512), 288);
    assert_int_equal(tensor_row_bytes(TYPE_Q6_K, 2048), 8 * 210);
    /* not a whole number of blocks, negative, overflowing size_t */
    assert_int_equal(tensor_row_bytes(TYPE_Q4_0, 33), 0);
    assert_int_equal(tensor_row_bytes(TYPE_Q4_K, 128), 0);
    assert_int_equal(tensor_row_bytes(TYPE_F32, -4), 0);
    assert_int_equal(tensor_row_bytes(TYPE_F32, INT64_MAX), 0);
    assert_int_equal(tensor_row_bytes(TYPE_F32, (int64_t)(SIZE_MAX / 4) + 1), 0);
    assert_int_equal(tensor_row_bytes(TYPE_F32, (int64_t)(SIZE_MAX / 4)), SIZE_MAX - 3);
    /* quantize_row refuses a partial block */
    float x[48] = { 0 };
    uint8_t out[64];
    assert_int_equal(quantize_row(TYPE_Q8_0, x, out, 48), -1);
}

static void test_type_from_name(void **state) {
    (void)state;
    assert_int_equal(tensor_type_from_name("Q4_K"), TYPE_Q4_K);
    assert_int_equal(tensor_type_from_name("BF16"), TYPE_BF16);
    assert_int_equal(tensor_type_from_name("q8_0"), TYPE_Q8_0);
    assert_int_equal(tensor_type_from_name("q4_2"), -1);
    assert_int_equal(tensor_type_from_name("q4_k_m"), -1);
    assert_int_equal(tensor_type_from_name(""), -1);
    assert_int_equal(tensor_type_from_name(NULL), -1);
    char longname[300];
    memset(longname, 'q', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(tensor_type_from_name(longname), -1);
}

static void test_fp16_edge_cases(void **state) {
    (void)state;
    static const struct { float f; uint16_t h; } enc[] = {
        { 0.0f, 0x0000 },  { -0.0f, 0x8000 },  { 1.0f, 0x3c00 },   { -2.0f, 0xc000 },
        { 0.1f, 0x2e66 },  { 65504.0f, 0x7bff }, { 65519.0f, 0x7bff }, /* just below the halfway point */
        { 65520.0f, 0x7c00 },                   /* halfway to 2^16: ties to even = overflow to inf */
        { 1e10f, 0x7c00 }, { -1e10f, 0xfc00 },
        { 0x1p-14f, 0x0400 },                   /* smallest normal */
        { 0x1p-24f, 0x0001 },                   /* smallest subnormal */
        { 0x1p-25f, 0x0000 },                   /* half of it: tie, rounds to even (0) */
        { 0x1.000002p-25f, 0x0001 },            /* just above the tie */
        { 0x3p-25f, 0x0002 },                   /* 1.5 * 2^-24: tie, rounds to even (2) */
        { 0x3ffp-24f, 0x03ff },                 /* largest subnormal */
        { 0x1.ffcp-15f, 0x0400 },               /* rounds up out of the subnormals */
        { 1.0f + 0x1p-11f, 0x3c00 },            /* tie between 1 and 1+2^-10: even */
        { 1.0f + 0x3p-11f, 0x3c02 },            /* tie: rounds up to the even mantissa */
        { 1e-8f, 0x0000 }, { -1e-8f, 0x8000 },
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        if (f32_to_fp16(enc[i].f) != enc[i].h) fail_msg("f32_to_fp16(%a) = %04x, want %04x", (double)enc[i].f, f32_to_fp16(enc[i].f), enc[i].h);
    }
    assert_int_equal(f32_to_fp16(INFINITY), 0x7c00);
    assert_int_equal(f32_to_fp16(-INFINITY), 0xfc00);
    uint16_t hn = f32_to_fp16(NAN);
    assert_true((hn & 0x7c00) == 0x7c00 && (hn & 0x03ff) != 0);

    assert_true(fp16_to_f32(0x0001) == 0x1p-24f);
    assert_true(fp16_to_f32(0x03ff) == 0x3ffp-24f);
    assert_true(fp16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(fp16_to_f32(0x7bff) == 65504.0f);
    assert_true(fp16_to_f32(0x7c00) == INFINITY);
    assert_true(fp16_to_f32(0xfc00) == -INFINITY);
    assert_true(isnan(fp16_to_f32(0x7e00)));
    assert_int_equal(bits_of(fp16_to_f32(0x8000)), 0x80000000u);
    /* every finite half survives a round trip through f32 */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* nan */
        assert_int_equal(f32_to_fp16(fp16_to_f32((uint16_t)h)), h);
    }
}

static void test_bf16_edge_cases(void **state) {
    (void)state;
    assert_int_equal(f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie: even */
    assert_int_equal(f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);      /* tie: up to even */
    assert_int_equal(f32_to_bf16(1.0f + 0x1.2p-8f), 0x3f81);    /* above the tie */
    assert_int_equal(f32_to_bf16(float_of(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
    assert_int_equal(f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(f32_to_bf16(float_of(0x00000001)), 0x0000); /* tiny subnormal */
    assert_int_equal(f32_to_bf16(float_of(0x00018000)), 0x0002); /* subnormal tie: even */
    assert_int_equal(f32_to_bf16(float_of(0x7f800001)), 0x7fc0); /* signalling nan -> quiet */
    assert_int_equal(f32_to_bf16(float_of(0xffc12345)), 0xffc1);
    assert_true(bf16_to_f32(0x4049) == 3.140625f);
    assert_true(bf16_to_f32(0xff80) == -INFINITY);
    assert_int_equal(bits_of(bf16_to_f32(0x0001)), 0x00010000u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_of_every_type),
        cmocka_unit_test(test_unknown_type_ids_rejected),
        cmocka_unit_test(test_row_bytes),
        cmocka_unit_test(test_type_from_name),
        cmocka_unit_test(test_fp16_edge_cases),
        cmocka_unit_test(test_bf16_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
