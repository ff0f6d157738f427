/*
 * cpu_ops_neon.c — AArch64 Advanced SIMD versions of the cpu_ops.h kernels:
 * 4 lanes per vector, f16 converted by the hardware (FCVTL / FCVTN, base
 * AArch64). The attention kernels block by registers as the AVX2 ones do:
 * scores take 4 query rows x 16 keys (16 accumulators, each K vector
 * loaded once per 4 rows); the weighted V sum keeps 16 output columns of 4
 * rows in 16 accumulators across the key block. One set for every ARM level
 * (dotprod and i8mm add nothing to float work); reached through the kernel
 * tables (cpu_kernels.h).
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "tensor/dtype.h"

static void attn_scores(float *s, int64_t s_stride, const float *q, int64_t q_stride, int nq, const float *kt,
                        int nk, int64_t D) {
    enum { KB = CPU_ATTN_KEY_BLOCK };
    float tmp[4][KB];
    int r = 0;
    for (; r + 4 <= nq; r += 4) {
        float32x4_t acc[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[i][j] = vdupq_n_f32(0);
        const float *q0 = q + r * q_stride;
        for (int64_t d = 0; d < D; d++) {
            float32x4_t k0 = vld1q_f32(kt + d * KB), k1 = vld1q_f32(kt + d * KB + 4);
            float32x4_t k2 = vld1q_f32(kt + d * KB + 8), k3 = vld1q_f32(kt + d * KB + 12);
            for (int i = 0; i < 4; i++) {
                float x = q0[i * q_stride + d];
                acc[i][0] = vfmaq_n_f32(acc[i][0], k0, x), acc[i][1] = vfmaq_n_f32(acc[i][1], k1, x);
                acc[i][2] = vfmaq_n_f32(acc[i][2], k2, x), acc[i][3] = vfmaq_n_f32(acc[i][3], k3, x);
            }
        }
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) vst1q_f32(tmp[i] + 4 * j, acc[i][j]);
            memcpy(s + (r + i) * s_stride, tmp[i], (size_t)nk * sizeof(float));
        }
    }
    for (; r < nq; r++) {
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        const float *q0 = q + r * q_stride;
        for (int64_t d = 0; d < D; d++) {
            float x = q0[d];
            a0 = vfmaq_n_f32(a0, vld1q_f32(kt + d * KB), x), a1 = vfmaq_n_f32(a1, vld1q_f32(kt + d * KB + 4), x);
            a2 = vfmaq_n_f32(a2, vld1q_f32(kt + d * KB + 8), x), a3 = vfmaq_n_f32(a3, vld1q_f32(kt + d * KB + 12), x);
        }
        vst1q_f32(tmp[0], a0), vst1q_f32(tmp[0] + 4, a1), vst1q_f32(tmp[0] + 8, a2), vst1q_f32(tmp[0] + 12, a3);
        memcpy(s + r * s_stride, tmp[0], (size_t)nk * sizeof(float));
    }
}

/* One output row from column d on: 16 columns in 4 accumulators, then 4, then 1. */
static void attn_pv_row(float *orow, const float *prow, const float *v, int nk, int64_t D, int64_t d) {
    for (; d + 16 <= D; d += 16) {
        float32x4_t a0 = vld1q_f32(orow + d), a1 = vld1q_f32(orow + d + 4);
        float32x4_t a2 = vld1q_f32(orow + d + 8), a3 = vld1q_f32(orow + d + 12);
        for (int j = 0; j < nk; j++) {
            float w = prow[j];
            const float *vr = v + j * D + d;
            a0 = vfmaq_n_f32(a0, vld1q_f32(vr), w), a1 = vfmaq_n_f32(a1, vld1q_f32(vr + 4), w);
            a2 = vfmaq_n_f32(a2, vld1q_f32(vr + 8), w), a3 = vfmaq_n_f32(a3, vld1q_f32(vr + 12), w);
        }
        vst1q_f32(orow + d, a0), vst1q_f32(orow + d + 4, a1), vst1q_f32(orow + d + 8, a2), vst1q_f32(orow + d + 12, a3);
    }
    for (; d + 4 <= D; d += 4) {
        float32x4_t a0 = vld1q_f32(orow + d);
        for (int j = 0; j < nk; j++) a0 = vfmaq_n_f32(a0, vld1q_f32(v + j * D + d), prow[j]);
        vst1q_f32(orow + d, a0);
    }
    for (; d < D; d++)
        for (int j = 0; j < nk; j++) orow[d] += prow[j] * v[j * D + d];
}

/* Rows in fours: per key, 16 columns of V (4 loads) serve 4 rows (16
 * accumulators); the rest row by row. */
static void attn_pv(float *o, int64_t o_stride, const float *p, int64_t p_stride, int nq, const float *v, int nk,
                    int64_t D) {
    int r = 0;
    for (; r + 4 <= nq; r += 4) {
        int64_t d = 0;
        for (; d + 16 <= D; d += 16) {
            float32x4_t acc[4][4];
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++) acc[i][c] = vld1q_f32(o + (r + i) * o_stride + d + 4 * c);
            for (int j = 0; j < nk; j++) {
                const float *vr = v + j * D + d;
                float32x4_t v0 = vld1q_f32(vr), v1 = vld1q_f32(vr + 4), v2 = vld1q_f32(vr + 8), v3 = vld1q_f32(vr + 12);
                for (int i = 0; i < 4; i++) {
                    float w = p[(r + i) * p_stride + j];
                    acc[i][0] = vfmaq_n_f32(acc[i][0], v0, w), acc[i][1] = vfmaq_n_f32(acc[i][1], v1, w);
                    acc[i][2] = vfmaq_n_f32(acc[i][2], v2, w), acc[i][3] = vfmaq_n_f32(acc[i][3], v3, w);
                }
            }
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++) vst1q_f32(o + (r + i) * o_stride + d + 4 * c, acc[i][c]);
        }
        for (int i = 0; i < 4 && d < D; i++) attn_pv_row(o + (r + i) * o_stride, p + (r + i) * p_stride, v, nk, D, d);
    }
    for (; r < nq; r++) attn_pv_row(o + r * o_stride, p + r * p_stride, v, nk, D, 0);
}

static float scale_max(float *x, int64_t n, float a) {
    float32x4_t m = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), a);
        vst1q_f32(x + i, v);
        m = vmaxq_f32(m, v);
    }
    float mx = vmaxvq_f32(m);
    for (; i < n; i++) {
        x[i] *= a;
        if (x[i] > mx) mx = x[i];
    }
    return mx;
}

/* exp(x) for 4 lanes: x = k·ln2 + r with k = round(x·log2 e), |r| <= ln2/2
 * (ln2 split in two parts so r is exact), exp(r) by its degree-6 Taylor
 * polynomial (error < 2e-7 relative), times 2^k built in the exponent
 * bits. Lanes below -87 (exp < 2^-126, and -inf) give 0. The same
 * evaluation as the AVX2 kernel. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-87.0f);
    uint32x4_t small = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(88.0f));
    float32x4_t k = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), small));
}

/* The sum in the AVX2 kernel's order (8 lanes as lo, hi; hsum_ps's
 * reduction; the n % 8 tail one by one), so softmax weights come out as
 * the x86 build's: the random test models turn a last-bit difference into
 * visible probability differences (tests/arm64/run.sh). */
static float exp_sum(float *x, int64_t n, float m) {
    float32x4_t vm = vdupq_n_f32(m), lo = vdupq_n_f32(0), hi = lo;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(x + i), vm)), e1 = exp4(vsubq_f32(vld1q_f32(x + i + 4), vm));
        vst1q_f32(x + i, e0), vst1q_f32(x + i + 4, e1);
        lo = vaddq_f32(lo, e0), hi = vaddq_f32(hi, e1);
    }
    float32x4_t s4 = vaddq_f32(lo, hi);
    float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    float s = vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
    for (; i < n; i++) s += x[i] = expf(x[i] - m);
    return s;
}

static void scale_round(float *x, int64_t n, float a, int round_f16) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), a);
        if (round_f16) v = vcvt_f32_f16(vcvt_f16_f32(v));
        vst1q_f32(x + i, v);
    }
    for (; i < n; i++) x[i] = round_f16 ? fp16_to_f32(f32_to_fp16(a * x[i])) : a * x[i];
}

/* r[0..4) (4 rows of 4) -> their transpose, in place. */
static inline void transpose4(float32x4_t r[4]) {
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* Both kt_from_*: 4x4 tiles (rows r0..r0+3, elements d0..d0+3) loaded as 4
 * vectors (missing rows zero), transposed, stored as kt rows d0..d0+3; the
 * D % 4 tail element by element. */
#define KT_FROM(name, T, LOAD, SCALAR)                                                                    \
    static void name(float *kt, const T *rows, int64_t row_stride, int nk, int64_t D) {                   \
        enum { KB = CPU_ATTN_KEY_BLOCK };                                                                 \
        int64_t d0 = 0;                                                                                   \
        for (; d0 + 4 <= D; d0 += 4)                                                                      \
            for (int r0 = 0; r0 < KB; r0 += 4) {                                                          \
                float32x4_t v[4];                                                                         \
                for (int i = 0; i < 4; i++)                                                               \
                    v[i] = r0 + i < nk ? LOAD(rows + (r0 + i) * row_stride + d0) : vdupq_n_f32(0);       \
                transpose4(v);                                                                            \
                for (int i = 0; i < 4; i++) vst1q_f32(kt + (d0 + i) * KB + r0, v[i]);                     \
            }                                                                                             \
        for (; d0 < D; d0++)                                                                              \
            for (int r = 0; r < KB; r++) kt[d0 * KB + r] = r < nk ? SCALAR(rows[r * row_stride + d0]) : 0.0f; \
    }
#define LOAD_F16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define SAME(x) (x)
KT_FROM(kt_from_f16, uint16_t, LOAD_F16, fp16_to_f32)
KT_FROM(kt_from_f32, float, vld1q_f32, SAME)

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, LOAD_F16(src + i));
    for (; i < n; i++) dst[i] = fp16_to_f32(src[i]);
}

static void f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

const cpu_vec_kernels cpu_vec_neon_kernels = {attn_scores, attn_pv, scale_max, exp_sum, scale_round, kt_from_f16, kt_from_f32, f16_to_f32, f32_to_f16, "neon"};
