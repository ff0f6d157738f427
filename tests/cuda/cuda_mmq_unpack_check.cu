/*
 * cuda_mmq_unpack_check.cu — the host half of cuda_mmq.cu's checks, run on
 * any machine (no GPU): for every MMQ weight type, mq_unpack (the code the
 * kernel runs, cuda_mmq.cuh, compiled for the host here) turns each chunk of
 * a row into int8 quants and scale-record entries whose values, combined as
 * cuda_mmq.cuh's table says, equal dequantize_row's element for element.
 * Rows: quantize_row of random data, and blocks of random bytes (every bit
 * pattern of the quants and packed scales) with sane f16 scales; each step
 * placed at every even offset mod 16 (row starts are 2-byte aligned). Also the
 * activation records' lo/hi split of a 32-quant sum. Built by `make cuda`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_mmq.cuh"

extern "C" {
#include "tensor/quant.h"
}

static int n_pass, n_fail;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() >> 8) / 8388608.0f * 2.0f - 1.0f; }

static void check(const char *what, bool ok, double worst) {
    printf("%-4s %-60s worst %.3g\n", ok ? "ok" : "FAIL", what, worst);
    ok ? n_pass++ : n_fail++;
}

/* byte offsets of a block's f16 scale fields (d first) */
static void f16_fields(uint32_t t, int *off, int *n) {
    switch (t) {
    case TYPE_Q4_1: case TYPE_Q5_1: case TYPE_Q4_K: case TYPE_Q5_K: off[0] = 0, off[1] = 2, *n = 2; break;
    case TYPE_Q3_K: off[0] = 108, *n = 1; break;
    case TYPE_Q6_K: off[0] = 208, *n = 1; break;
    default: off[0] = 0, *n = 1; break;
    }
}

template <int T> static void check_type(bool random_bytes) {
    const int64_t cols = 2048;
    const tensor_type_traits *tt = tensor_type_get(T);
    const size_t rb = tensor_row_bytes(T, cols);
    uint8_t *row = (uint8_t *)malloc(rb);
    float *f = (float *)malloc(cols * sizeof(float)), *ref = (float *)malloc(cols * sizeof(float));
    if (random_bytes) {
        for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)urand();
        int off[2], nf;
        f16_fields(T, off, &nf);
        const uint16_t vals[2] = {0x3800 /* 0.5 */, 0x2E66 /* ~0.1 */};
        for (int64_t b = 0; b < cols / tt->block_elems; b++)
            for (int k = 0; k < nf; k++) memcpy(row + b * tt->block_bytes + off[k], &vals[k], 2);
    } else {
        for (int64_t i = 0; i < cols; i++) f[i] = frand() * (1.0f + (float)(i / 256));
        if (quantize_row(T, f, row, cols)) {
            printf("FAIL cannot quantize %s\n", tt->name);
            n_fail++;
            return;
        }
    }
    dequantize_row(T, row, ref, cols);
    constexpr int KIND = mq_traits<T>::kind, SLICE = mq_traits<T>::slice;
    double worst = 0;
    bool ok = true;
    for (int64_t st = 0; st < cols / MQ_BK; st++)
      for (int off = 0; off < 16; off += 2) {
        /* the slice at every alignment the kernel's shared-memory copy can have (its global offset mod 16) */
        alignas(16) uint8_t buf[SLICE + 32];
        memset(buf, 0xA5, sizeof buf);
        memcpy(buf + off, row + st * SLICE, SLICE);
        uint32_t rec[MQ_SREC];
        memset(rec, 0xff, sizeof rec);
        uint32_t q[8][8];
        for (int c = 0; c < 8; c++) mq_unpack<T>(buf + off, c, q[c], rec);
        const float *rf = (const float *)rec;
        const __half *mh = (const __half *)(rec + 32);
        for (int c = 0; c < 8; c++)
            for (int e = 0; e < 32; e++) {
                const int qe = (int)(int8_t)(q[c][e / 4] >> (8 * (e % 4)));
                float v;
                if (KIND == MQ_LEGACY) v = (float)qe * rf[16 + c];
                else if (KIND == MQ_LEGACY_MIN) v = (float)qe * rf[16 + c] + rf[24 + c];
                else if (KIND == MQ_K_MIN) {
                    const float m = __half2float(mh[c]);
                    if (__half2float(mh[8 + c]) != 64.0f * m) ok = false;
                    v = rf[16] * (float)(int)rec[c] * (float)qe - rf[17] * m;
                } else {
                    v = rf[16] * (float)(int)rec[2 * c + e / 16] * (float)qe;
                }
                const float r = ref[st * MQ_BK + 32 * c + e];
                const double d = fabs((double)v - r);
                if (d > worst) worst = d;
                if (d > 1e-6 * fabs(r) + 1e-30) ok = false;
            }
    }
    char what[96];
    snprintf(what, sizeof what, "mq_unpack %s (%s) = dequantize_row", tt->name, random_bytes ? "random bytes" : "quantized");
    check(what, ok, worst);
    free(row), free(f), free(ref);
}

int main(void) {
    for (int rb = 0; rb < 2; rb++) {
        check_type<TYPE_Q4_0>(rb), check_type<TYPE_Q4_1>(rb), check_type<TYPE_Q5_0>(rb), check_type<TYPE_Q5_1>(rb);
        check_type<TYPE_Q8_0>(rb), check_type<TYPE_Q3_K>(rb), check_type<TYPE_Q4_K>(rb), check_type<TYPE_Q5_K>(rb);
        check_type<TYPE_Q6_K>(rb);
    }
    /* the activation record's split of a sub-block sum (k_mmq_act): 64·hi + lo, both exact in f16 */
    bool ok = true;
    for (int sum = -32 * 128; sum <= 32 * 127; sum++) {
        const int hi = (sum + 32) >> 6, lo = sum - 64 * hi;
        if (lo < -32 || lo > 32 || hi < -64 || hi > 64 || 64 * hi + lo != sum) ok = false;
        if ((int)__half2float(__int2half_rn(lo)) != lo || (int)__half2float(__int2half_rn(hi)) != hi) ok = false;
    }
    check("activation sum split 64*hi + lo, |lo| <= 32, exact in f16", ok, 0);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
