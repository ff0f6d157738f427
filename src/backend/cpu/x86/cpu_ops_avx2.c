/*
 * cpu_ops_avx2.c — AVX2 + FMA + F16C versions of the cpu_ops.h kernels:
 * 8 lanes per step, f16 converted with vcvtph2ps/vcvtps2ph. The attention
 * kernels block by registers: scores take 4 query rows x 16 keys (8
 * accumulators, each K value loaded once per 4 rows); the weighted V sum
 * keeps 32 output columns of a row in 4 accumulators across the key block.
 * Reached only through the AVX2 / AVX-512 kernel tables (cpu_kernels.h).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/x86/cpu_x86_reduce.h"
#include "tensor/dtype.h"

static void attn_scores(float *s, int64_t s_stride, const float *q, int64_t q_stride, int nq, const float *kt,
                        int nk, int64_t D) {
    enum { KB = CPU_ATTN_KEY_BLOCK };
    float tmp[4][KB];
    int r = 0;
    for (; r + 4 <= nq; r += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        const float *q0 = q + r * q_stride, *q1 = q0 + q_stride, *q2 = q1 + q_stride, *q3 = q2 + q_stride;
        for (int64_t d = 0; d < D; d++) {
            __m256 k0 = _mm256_loadu_ps(kt + d * KB), k1 = _mm256_loadu_ps(kt + d * KB + 8);
            __m256 x = _mm256_broadcast_ss(q0 + d);
            a0 = _mm256_fmadd_ps(x, k0, a0), a1 = _mm256_fmadd_ps(x, k1, a1);
            x = _mm256_broadcast_ss(q1 + d);
            b0 = _mm256_fmadd_ps(x, k0, b0), b1 = _mm256_fmadd_ps(x, k1, b1);
            x = _mm256_broadcast_ss(q2 + d);
            c0 = _mm256_fmadd_ps(x, k0, c0), c1 = _mm256_fmadd_ps(x, k1, c1);
            x = _mm256_broadcast_ss(q3 + d);
            d0 = _mm256_fmadd_ps(x, k0, d0), d1 = _mm256_fmadd_ps(x, k1, d1);
        }
        _mm256_storeu_ps(tmp[0], a0), _mm256_storeu_ps(tmp[0] + 8, a1);
        _mm256_storeu_ps(tmp[1], b0), _mm256_storeu_ps(tmp[1] + 8, b1);
        _mm256_storeu_ps(tmp[2], c0), _mm256_storeu_ps(tmp[2] + 8, c1);
        _mm256_storeu_ps(tmp[3], d0), _mm256_storeu_ps(tmp[3] + 8, d1);
        for (int i = 0; i < 4; i++) memcpy(s + (r + i) * s_stride, tmp[i], (size_t)nk * sizeof(float));
    }
    for (; r < nq; r++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        const float *q0 = q + r * q_stride;
        for (int64_t d = 0; d < D; d++) {
            __m256 x = _mm256_broadcast_ss(q0 + d);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(kt + d * KB), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(kt + d * KB + 8), a1);
        }
        _mm256_storeu_ps(tmp[0], a0), _mm256_storeu_ps(tmp[0] + 8, a1);
        memcpy(s + r * s_stride, tmp[0], (size_t)nk * sizeof(float));
    }
}

/* One output row, all of D: 32 columns in 4 accumulators, then 8, then 1. */
static void attn_pv_row(float *orow, const float *prow, const float *v, int nk, int64_t D, int64_t d) {
    for (; d + 32 <= D; d += 32) {
        __m256 a0 = _mm256_loadu_ps(orow + d), a1 = _mm256_loadu_ps(orow + d + 8);
        __m256 a2 = _mm256_loadu_ps(orow + d + 16), a3 = _mm256_loadu_ps(orow + d + 24);
        for (int j = 0; j < nk; j++) {
            __m256 w = _mm256_broadcast_ss(prow + j);
            const float *vr = v + j * D + d;
            a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr), a0);
            a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 8), a1);
            a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 16), a2);
            a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 24), a3);
        }
        _mm256_storeu_ps(orow + d, a0), _mm256_storeu_ps(orow + d + 8, a1);
        _mm256_storeu_ps(orow + d + 16, a2), _mm256_storeu_ps(orow + d + 24, a3);
    }
    for (; d + 8 <= D; d += 8) {
        __m256 a0 = _mm256_loadu_ps(orow + d);
        for (int j = 0; j < nk; j++) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(prow + j), _mm256_loadu_ps(v + j * D + d), a0);
        _mm256_storeu_ps(orow + d, a0);
    }
    for (; d < D; d++)
        for (int j = 0; j < nk; j++) orow[d] += prow[j] * v[j * D + d];
}

/* Rows in fours: per key, 16 columns of V (2 loads) serve 4 rows (8
 * accumulators), as attn_scores shares K; the rest row by row. */
static void attn_pv(float *o, int64_t o_stride, const float *p, int64_t p_stride, int nq, const float *v, int nk,
                    int64_t D) {
    int r = 0;
    for (; r + 4 <= nq; r += 4) {
        int64_t d = 0;
        float *o0 = o + r * o_stride, *o1 = o0 + o_stride, *o2 = o1 + o_stride, *o3 = o2 + o_stride;
        const float *p0 = p + r * p_stride, *p1 = p0 + p_stride, *p2 = p1 + p_stride, *p3 = p2 + p_stride;
        for (; d + 16 <= D; d += 16) {
            __m256 a0 = _mm256_loadu_ps(o0 + d), a1 = _mm256_loadu_ps(o0 + d + 8);
            __m256 b0 = _mm256_loadu_ps(o1 + d), b1 = _mm256_loadu_ps(o1 + d + 8);
            __m256 c0 = _mm256_loadu_ps(o2 + d), c1 = _mm256_loadu_ps(o2 + d + 8);
            __m256 e0 = _mm256_loadu_ps(o3 + d), e1 = _mm256_loadu_ps(o3 + d + 8);
            for (int j = 0; j < nk; j++) {
                __m256 v0 = _mm256_loadu_ps(v + j * D + d), v1 = _mm256_loadu_ps(v + j * D + d + 8);
                __m256 w = _mm256_broadcast_ss(p0 + j);
                a0 = _mm256_fmadd_ps(w, v0, a0), a1 = _mm256_fmadd_ps(w, v1, a1);
                w = _mm256_broadcast_ss(p1 + j);
                b0 = _mm256_fmadd_ps(w, v0, b0), b1 = _mm256_fmadd_ps(w, v1, b1);
                w = _mm256_broadcast_ss(p2 + j);
                c0 = _mm256_fmadd_ps(w, v0, c0), c1 = _mm256_fmadd_ps(w, v1, c1);
                w = _mm256_broadcast_ss(p3 + j);
                e0 = _mm256_fmadd_ps(w, v0, e0), e1 = _mm256_fmadd_ps(w, v1, e1);
            }
            _mm256_storeu_ps(o0 + d, a0), _mm256_storeu_ps(o0 + d + 8, a1);
            _mm256_storeu_ps(o1 + d, b0), _mm256_storeu_ps(o1 + d + 8, b1);
            _mm256_storeu_ps(o2 + d, c0), _mm256_storeu_ps(o2 + d + 8, c1);
            _mm256_storeu_ps(o3 + d, e0), _mm256_storeu_ps(o3 + d + 8, e1);
        }
        for (int i = 0; i < 4 && d < D; i++) attn_pv_row(o + (r + i) * o_stride, p + (r + i) * p_stride, v, nk, D, d);
    }
    for (; r < nq; r++) attn_pv_row(o + r * o_stride, p + r * p_stride, v, nk, D, 0);
}

static float scale_max(float *x, int64_t n, float a) {
    __m256 va = _mm256_set1_ps(a), m = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(va, _mm256_loadu_ps(x + i));
        _mm256_storeu_ps(x + i, v);
        m = _mm256_max_ps(m, v);
    }
    float mx = hmax_ps(m);
    for (; i < n; i++) {
        x[i] *= a;
        if (x[i] > mx) mx = x[i];
    }
    return mx;
}

/* exp(x) for 8 lanes: x = k·ln2 + r with k = round(x·log2 e), |r| <= ln2/2
 * (ln2 split in two parts so r is exact), exp(r) by its degree-6 Taylor
 * polynomial (error < 2e-7 relative), times 2^k built in the exponent
 * bits. Lanes below -87 (exp < 2^-126, and -inf) give 0. */
static inline __m256 exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 small = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(small, y);
}

static float exp_sum(float *x, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum_ps(acc);
    for (; i < n; i++) s += x[i] = expf(x[i] - m);
    return s;
}

static void scale_round(float *x, int64_t n, float a, int round_f16) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(va, _mm256_loadu_ps(x + i));
        if (round_f16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(x + i, v);
    }
    for (; i < n; i++) x[i] = round_f16 ? fp16_to_f32(f32_to_fp16(a * x[i])) : a * x[i];
}

/* r[0..8) (8 rows of 8) -> their transpose, in place: unpack pairs of rows,
 * shuffle pairs of pairs, then swap 128-bit halves. */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Both kt_from_*: 8x8 tiles (rows r0..r0+7, elements d0..d0+7) loaded as 8
 * vectors (missing rows zero), transposed, stored as kt rows d0..d0+7; the
 * D % 8 tail element by element. */
#define KT_FROM(name, T, LOAD, SCALAR)                                                                    \
    static void name(float *kt, const T *rows, int64_t row_stride, int nk, int64_t D) {                   \
        enum { KB = CPU_ATTN_KEY_BLOCK };                                                                 \
        int64_t d0 = 0;                                                                                   \
        for (; d0 + 8 <= D; d0 += 8)                                                                      \
            for (int r0 = 0; r0 < KB; r0 += 8) {                                                          \
                __m256 v[8];                                                                              \
                for (int i = 0; i < 8; i++)                                                               \
                    v[i] = r0 + i < nk ? LOAD(rows + (r0 + i) * row_stride + d0) : _mm256_setzero_ps();  \
                transpose8(v);                                                                            \
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(kt + (d0 + i) * KB + r0, v[i]);              \
            }                                                                                             \
        for (; d0 < D; d0++)                                                                              \
            for (int r = 0; r < KB; r++) kt[d0 * KB + r] = r < nk ? SCALAR(rows[r * row_stride + d0]) : 0.0f; \
    }
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define SAME(x) (x)
KT_FROM(kt_from_f16, uint16_t, LOAD_F16, fp16_to_f32)
KT_FROM(kt_from_f32, float, _mm256_loadu_ps, SAME)

static void f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = fp16_to_f32(src[i]);
}

static void f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

const cpu_vec_kernels cpu_vec_avx2_kernels = {attn_scores, attn_pv, scale_max, exp_sum, scale_round, kt_from_f16, kt_from_f32, f16_to_f32, f32_to_f16, "avx2"};
