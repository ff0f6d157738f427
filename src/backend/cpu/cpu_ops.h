/*
 * cpu_ops.h — the small vector kernels under the CPU backend's non-matmul
 * ops (attention over f16/f32 pages, half-precision row conversion), with a
 * scalar reference and AVX2 (+F16C, FMA) versions chosen once at run time.
 *
 * Every kernel has the same contract in each ISA; tests/model holds the SIMD
 * versions against the scalar ones. n is any length (tails handled).
 */
#ifndef LARDER_BACKEND_CPU_CPU_OPS_H
#define LARDER_BACKEND_CPU_CPU_OPS_H

#include <stdint.h>

typedef struct cpu_vec_kernels {
    float (*dot_f32_f16)(const float *a, const uint16_t *b, int64_t n);   /* Σ a_i·half(b_i) */
    float (*dot_f32_f32)(const float *a, const float *b, int64_t n);      /* Σ a_i·b_i */
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);    /* y_i += a·half(x_i) */
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);       /* y_i += a·x_i */
    void (*f32_to_f16)(uint16_t *dst, const float *src, int64_t n);       /* round to nearest even */
    const char *name;                                                     /* "scalar", "avx2" */
} cpu_vec_kernels;

/* The best kernels this CPU runs (cached after the first call). */
const cpu_vec_kernels *cpu_vec_best(void);
/* The scalar reference. */
const cpu_vec_kernels *cpu_vec_scalar(void);
/* The AVX2 set, or NULL when the CPU lacks AVX2/FMA/F16C. */
const cpu_vec_kernels *cpu_vec_avx2(void);

/* Defined in cpu_ops_avx2.c (compiled with -mavx2 -mfma -mf16c); call only
 * after checking the CPU. */
extern const cpu_vec_kernels cpu_vec_avx2_kernels;

#endif
