/*
 * cpu_ops.c — scalar reference kernels of cpu_ops.h (the run-time choice is
 * the kernel table's, cpu_kernels.h).
 */
#include "backend/cpu/cpu_ops.h"

#include <math.h>

#include "backend/cpu/cpu_kernels.h"
#include "tensor/dtype.h"

static void attn_scores(float *s, int64_t s_stride, const float *q, int64_t q_stride, int nq, const float *kt,
                        int nk, int64_t D) {
    for (int r = 0; r < nq; r++)
        for (int j = 0; j < nk; j++) {
            float acc = 0;
            for (int64_t d = 0; d < D; d++) acc += q[r * q_stride + d] * kt[d * CPU_ATTN_KEY_BLOCK + j];
            s[r * s_stride + j] = acc;
        }
}

static void attn_pv(float *o, int64_t o_stride, const float *p, int64_t p_stride, int nq, const float *v, int nk,
                    int64_t D) {
    for (int r = 0; r < nq; r++)
        for (int j = 0; j < nk; j++) {
            float w = p[r * p_stride + j];
            for (int64_t d = 0; d < D; d++) o[r * o_stride + d] += w * v[j * D + d];
        }
}

static float scale_max(float *x, int64_t n, float a) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= a;
        if (x[i] > m) m = x[i];
    }
    return m;
}

static float exp_sum(float *x, int64_t n, float m) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] = expf(x[i] - m);
    return s;
}

static void scale_round(float *x, int64_t n, float a, int round_f16) {
    for (int64_t i = 0; i < n; i++) x[i] = round_f16 ? fp16_to_f32(f32_to_fp16(a * x[i])) : a * x[i];
}

static void kt_from_f16(float *kt, const uint16_t *rows, int64_t row_stride, int nk, int64_t D) {
    for (int64_t d = 0; d < D; d++)
        for (int r = 0; r < CPU_ATTN_KEY_BLOCK; r++)
            kt[d * CPU_ATTN_KEY_BLOCK + r] = r < nk ? fp16_to_f32(rows[r * row_stride + d]) : 0.0f;
}

static void kt_from_f32(float *kt, const float *rows, int64_t row_stride, int nk, int64_t D) {
    for (int64_t d = 0; d < D; d++)
        for (int r = 0; r < CPU_ATTN_KEY_BLOCK; r++)
            kt[d * CPU_ATTN_KEY_BLOCK + r] = r < nk ? rows[r * row_stride + d] : 0.0f;
}

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_f32(src[i]);
}

static void f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

static const cpu_vec_kernels scalar_kernels = {attn_scores, attn_pv, scale_max, exp_sum, scale_round, kt_from_f16, kt_from_f32, f16_to_f32, f32_to_f16, "scalar"};

const cpu_vec_kernels *cpu_vec_scalar(void) { return &scalar_kernels; }

const cpu_vec_kernels *cpu_vec_best(void) { return cpu_kernels_active()->vec; }
