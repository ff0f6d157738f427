/*
 * cpu_ops.c — scalar reference kernels of cpu_ops.h and the run-time choice
 * of the fastest set the CPU supports.
 */
#include "backend/cpu/cpu_ops.h"

#include "backend/cpu/cpu_features.h"
#include "tensor/dtype.h"

static float dot_f32_f16(const float *a, const uint16_t *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * fp16_to_f32(b[i]);
    return s;
}

static float dot_f32_f32(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_f16(float *y, float a, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * fp16_to_f32(x[i]);
}

static void axpy_f32(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

static const cpu_vec_kernels scalar_kernels = {dot_f32_f16, dot_f32_f32, axpy_f16, axpy_f32, f32_to_f16, "scalar"};

const cpu_vec_kernels *cpu_vec_scalar(void) { return &scalar_kernels; }

const cpu_vec_kernels *cpu_vec_avx2(void) {
    return cpu_level_supported() >= CPU_LEVEL_AVX2 ? &cpu_vec_avx2_kernels : NULL;
}

const cpu_vec_kernels *cpu_vec_best(void) {
    /* Benign race: every thread computes the same pointer. */
    static const cpu_vec_kernels *best;
    if (!best) {
        /* LARDER_CPU may cap the level (cpu_features.h) */
        best = cpu_level_active() >= CPU_LEVEL_AVX2 ? &cpu_vec_avx2_kernels : &scalar_kernels;
    }
    return best;
}
