/*
 * test_quant_blocks.c — dequantize_row on hand-built blocks equals values
 * computed by hand from the format description (dtype.h / quant_k.c). Bits
 * are chosen to exercise signs, both nibbles, the high bits (qh / hmask), the
 * packed 6-bit scales (including their top bits) and one odd byte per type.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "tensor/quant_test_util.h"

#define H_2     0x4000 /* f16 2.0 */
#define H_1     0x3c00
#define H_HALF  0x3800
#define H_QUART 0x3400
#define H_8TH   0x3000
#define H_NEG1  0xbc00

static void expect_row(uint32_t type, const void *blk, const float *want, int n) {
    float got[QK_K];
    dequantize_row(type, blk, got, n);
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s element %d: got %g, want %g", tensor_type_get(type)->name, i, got[i], want[i]);
}

static void test_float_types(void **state) {
    (void)state;
    float f[4] = { 1.5f, -0.0f, 3e38f, -7.25f };
    uint16_t h[4] = { 0x3e00, 0x8000, 0x7c00, 0xc740 };  /* 1.5, -0, inf, -7.25 */
    uint16_t b[4] = { 0x3fc0, 0x8000, 0x7f80, 0xc0e8 };  /* 1.5, -0, inf, -7.25 */
    float wf[4] = { 1.5f, -0.0f, 3e38f, -7.25f }, wh[4] = { 1.5f, -0.0f, INFINITY, -7.25f };
    expect_row(TYPE_F32, f, wf, 4);
    expect_row(TYPE_F16, h, wh, 4);
    expect_row(TYPE_BF16, b, wh, 4);
}

static void test_q4_0_q4_1(void **state) {
    (void)state;
    block_q4_0 a = { .d = H_HALF };
    block_q4_1 b = { .d = H_QUART, .m = H_NEG1 };
    for (int j = 0; j < 16; j++) {
        a.qs[j] = (uint8_t)(j | (15 - j) << 4);
        b.qs[j] = (uint8_t)(j | 0xF0);
    }
    float wa[32], wb[32];
    for (int j = 0; j < 16; j++) {
        wa[j] = 0.5f * (float)(j - 8);       /* low nibble j, minus 8 */
        wa[16 + j] = 0.5f * (float)(7 - j);  /* high nibble 15-j, minus 8 */
        wb[j] = 0.25f * (float)j - 1.0f;     /* d*q + m */
        wb[16 + j] = 0.25f * 15 - 1.0f;
    }
    expect_row(TYPE_Q4_0, &a, wa, 32);
    expect_row(TYPE_Q4_1, &b, wb, 32);
}

static void test_q5_0_q5_1(void **state) {
    (void)state;
    /* qh bit i = element i's 5th bit: set for 0-7, 16-19, 28-31 */
    block_q5_0 a = { .d = H_1, .qh = { 0xFF, 0x00, 0x0F, 0xF0 } };
    block_q5_1 b = { .d = H_HALF, .m = H_2, .qh = { 0xFF, 0x00, 0x0F, 0xF0 } };
    for (int j = 0; j < 16; j++) a.qs[j] = b.qs[j] = 0x5A; /* low nibble 10, high 5 */
    float wa[32], wb[32];
    for (int i = 0; i < 32; i++) {
        int high = i < 8 || (i >= 16 && i < 20) || i >= 28;
        int q = (i < 16 ? 10 : 5) + (high ? 16 : 0);
        wa[i] = (float)(q - 16);
        wb[i] = 0.5f * (float)q + 2.0f;
    }
    assert_true(wa[0] == 10 && wa[8] == -6 && wa[20] == -11 && wa[30] == 5); /* the hand values */
    expect_row(TYPE_Q5_0, &a, wa, 32);
    expect_row(TYPE_Q5_1, &b, wb, 32);
}

static void test_q8_types(void **state) {
    (void)state;
    block_q8_0 a = { .d = H_8TH };
    block_q8_1 b = { .d = H_2, .s = 0 };
    static block_q8_k c;
    c.d = 0.25f;
    for (int i = 0; i < 32; i++) { a.qs[i] = (int8_t)(i * 8 - 128); b.qs[i] = (int8_t)(i - 16); }
    for (int i = 0; i < QK_K; i++) c.qs[i] = (int8_t)(i - 128);
    float wa[32], wb[32], wc[QK_K];
    for (int i = 0; i < 32; i++) { wa[i] = (float)(i - 16); wb[i] = 2.0f * (float)(i - 16); }
    for (int i = 0; i < QK_K; i++) wc[i] = 0.25f * (float)(i - 128);
    expect_row(TYPE_Q8_0, &a, wa, 32);
    expect_row(TYPE_Q8_1, &b, wb, 32);
    expect_row(TYPE_Q8_K, &c, wc, QK_K);
}

static void test_q2_k(void **state) {
    (void)state;
    block_q2_k x = { .d = H_1, .dmin = H_HALF };
    for (int s = 0; s < 16; s++) x.scales[s] = (uint8_t)((s & 0xF) | (15 - s) << 4);
    memset(x.qs, 0xE4, sizeof x.qs);  /* 2-bit fields 0,1,2,3 from the low end */
    x.qs[5] = 0x1B;                    /* fields 3,2,1,0 */
    float want[QK_K];
    for (int e = 0; e < QK_K; e++) {
        int q = (e % 128) / 32;        /* the field a 32-element group reads */
        if (e == 5) q = 3;
        if (e == 37) q = 2;
        if (e == 69) q = 1;
        if (e == 101) q = 0;
        int s = e / 16;
        want[e] = 1.0f * (float)s * (float)q - 0.5f * (float)(15 - s);
    }
    expect_row(TYPE_Q2_K, &x, want, QK_K);
}

static void test_q3_k(void **state) {
    (void)state;
    /* 16 6-bit scales u_j = 24 + j (so sc_j - 32 = j - 8): low nibbles in
     * bytes 0-7 (j<8 low half, j>=8 high half), top 2 bits in bytes 8-11 */
    block_q3_k x = { .d = H_1, .scales = { 0x08, 0x19, 0x2A, 0x3B, 0x4C, 0x5D, 0x6E, 0x7F,
                                           0xA5, 0xA5, 0xA5, 0xA5 } };
    memset(x.hmask, 0x0F, sizeof x.hmask); /* high bit set for elements 0..127 */
    x.hmask[3] = 0x8F;                     /* ... and for element 3 + 32*7 = 227 */
    memset(x.qs, 0xE4, sizeof x.qs);
    float want[QK_K];
    for (int e = 0; e < QK_K; e++) {
        int low = (e % 128) / 32;
        int high = e < 128 || e == 227;
        int s = e / 16;
        want[e] = (float)(s - 8) * (float)(low - (high ? 0 : 4));
    }
    assert_true(want[227] == 3.0f * 6 && want[226] == -1.0f * 6);
    expect_row(TYPE_Q3_K, &x, want, QK_K);
}

/* Scales/mins sc = {1,2,3,4,17,33,50,63}, m = {5,6,7,8,20,36,48,60} packed by hand. */
static const uint8_t K4_SCALES[12] = { 0x41, 0x82, 0xC3, 0xC4, 0x45, 0x86, 0xC7, 0xC8, 0x41, 0x41, 0x02, 0xCF };
static const int K4_SC[8] = { 1, 2, 3, 4, 17, 33, 50, 63 };
static const int K4_M[8] = { 5, 6, 7, 8, 20, 36, 48, 60 };

/* 4-bit quant of element e for qs = 0x69 everywhere except qs[71] = 0xF0:
 * byte 71 is byte 7 of the third 32-byte group, holding elements 128+7
 * (low nibble) and 160+7 (high nibble). */
static int k4_nibble(int e) {
    if (e == 135) return 0;
    if (e == 167) return 15;
    return e % 64 < 32 ? 9 : 6;
}

static void test_q4_k(void **state) {
    (void)state;
    block_q4_k x = { .d = H_1, .dmin = H_QUART };
    memcpy(x.scales, K4_SCALES, 12);
    memset(x.qs, 0x69, sizeof x.qs);
    x.qs[71] = 0xF0;
    float want[QK_K];
    for (int e = 0; e < QK_K; e++) {
        int j = e / 32;
        want[e] = 1.0f * (float)K4_SC[j] * (float)k4_nibble(e) - 0.25f * (float)K4_M[j];
    }
    expect_row(TYPE_Q4_K, &x, want, QK_K);
}

static void test_q5_k(void **state) {
    (void)state;
    block_q5_k x = { .d = H_1, .dmin = H_QUART };
    memcpy(x.scales, K4_SCALES, 12);
    memset(x.qs, 0x69, sizeof x.qs);
    x.qs[71] = 0xF0;
    memset(x.qh, 0x55, sizeof x.qh); /* bit b of qh[l] is element 32b + l's 5th bit */
    x.qh[9] = 0xFF;
    float want[QK_K];
    for (int e = 0; e < QK_K; e++) {
        int j = e / 32;
        int high = (e / 32) % 2 == 0 || e % 32 == 9;
        want[e] = 1.0f * (float)K4_SC[j] * (float)(k4_nibble(e) + (high ? 16 : 0)) - 0.25f * (float)K4_M[j];
    }
    expect_row(TYPE_Q5_K, &x, want, QK_K);
}

static void test_q6_k(void **state) {
    (void)state;
    block_q6_k x = { .d = H_HALF };
    for (int s = 0; s < 16; s++) x.scales[s] = (int8_t)(s * 17 - 128);
    memset(x.ql, 0x3C, sizeof x.ql);  /* low nibble 12 (groups 0,1), high nibble 3 (groups 2,3) */
    memset(x.qh, 0xE4, sizeof x.qh);  /* group g of 32 gets top bits g */
    x.ql[70] = 0xF0;                  /* elements 134 (low 0) and 198 (low 15) */
    x.qh[40] = 0x1B;                  /* elements 136, 168, 200, 232 get top bits 3, 2, 1, 0 */
    float want[QK_K];
    for (int e = 0; e < QK_K; e++) {
        int g = (e % 128) / 32;
        int low = g < 2 ? 12 : 3, high = g;
        if (e == 134) low = 0;
        if (e == 198) low = 15;
        if (e == 136) high = 3;
        if (e == 168) high = 2;
        if (e == 200) high = 1;
        if (e == 232) high = 0;
        want[e] = 0.5f * (float)(e / 16 * 17 - 128) * (float)((low | high << 4) - 32);
    }
    expect_row(TYPE_Q6_K, &x, want, QK_K);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_types),
        cmocka_unit_test(test_q4_0_q4_1),
        cmocka_unit_test(test_q5_0_q5_1),
        cmocka_unit_test(test_q8_types),
        cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_q3_k),
        cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q5_k),
        cmocka_unit_test(test_q6_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
