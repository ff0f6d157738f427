/*
 * cpu_ops.h — the small vector kernels under the CPU backend's non-matmul
 * ops (the two products of attention, half-precision row conversion), with
 * a scalar reference, AVX2 (+F16C, FMA) and NEON versions. A level's set is
 * part of its kernel table (cpu_kernels.h: cpu_kernels_for(level)->vec), so
 * there is one selection for every kernel.
 *
 * Every kernel has the same contract in each ISA; tests/model holds the SIMD
 * versions against the scalar ones. n, nq, nk and D are any length (tails
 * handled).
 */
#ifndef LARDER_BACKEND_CPU_CPU_OPS_H
#define LARDER_BACKEND_CPU_CPU_OPS_H

#include <stdint.h>

/* Keys per block of the attention kernels: K of a block is handed over
 * transposed, (D, CPU_ATTN_KEY_BLOCK) f32, so one query row's scores for
 * the whole block are D broadcast multiply-adds into two 8-lane registers. */
#define CPU_ATTN_KEY_BLOCK 16

typedef struct cpu_vec_kernels {
    /* Scores of nq query rows against nk <= CPU_ATTN_KEY_BLOCK keys:
     *   s[r·s_stride + j] = Σ_d q[r·q_stride + d] · kt[d·CPU_ATTN_KEY_BLOCK + j]
     * kt's columns nk..CPU_ATTN_KEY_BLOCK-1 must hold finite values. */
    void (*attn_scores)(float *s, int64_t s_stride, const float *q, int64_t q_stride, int nq, const float *kt,
                        int nk, int64_t D);
    /* Weighted sum of nk value rows v (nk, D) into nq output rows:
     *   o[r·o_stride + d] += Σ_j p[r·p_stride + j] · v[j·D + d] */
    void (*attn_pv)(float *o, int64_t o_stride, const float *p, int64_t p_stride, int nq, const float *v, int nk,
                    int64_t D);
    /* Softmax pieces: x_i *= a, returns max_i x_i (-INFINITY for n = 0) */
    float (*scale_max)(float *x, int64_t n, float a);
    /* x_i = exp(x_i - m), returns Σ x_i (exp to ~2 ulp; exp(-inf) = 0) */
    float (*exp_sum)(float *x, int64_t n, float m);
    /* x_i = a·x_i, then rounded to the nearest half when round_f16 */
    void (*scale_round)(float *x, int64_t n, float a, int round_f16);
    /* A key block into the transposed layout attn_scores reads: nk rows
     * (row r at rows + r·row_stride elements, D each) become
     *   kt[d·CPU_ATTN_KEY_BLOCK + r] (r < nk), columns nk.. set to 0. */
    void (*kt_from_f16)(float *kt, const uint16_t *rows, int64_t row_stride, int nk, int64_t D);
    void (*kt_from_f32)(float *kt, const float *rows, int64_t row_stride, int nk, int64_t D);
    void (*f16_to_f32)(float *dst, const uint16_t *src, int64_t n);       /* exact */
    void (*f32_to_f16)(uint16_t *dst, const float *src, int64_t n);       /* round to nearest even */
    const char *name;                                                     /* "scalar", "avx2" */
} cpu_vec_kernels;

/* The kernels of the active level (cpu_kernels_active()->vec). */
const cpu_vec_kernels *cpu_vec_best(void);
/* The scalar reference. */
const cpu_vec_kernels *cpu_vec_scalar(void);

/* Defined in x86/cpu_ops_avx2.c (compiled with -mavx2 -mfma -mf16c) and
 * arm/cpu_ops_neon.c; only the target's are compiled; reached through the
 * kernel tables, which check the CPU. */
extern const cpu_vec_kernels cpu_vec_avx2_kernels;
extern const cpu_vec_kernels cpu_vec_neon_kernels;

#endif
