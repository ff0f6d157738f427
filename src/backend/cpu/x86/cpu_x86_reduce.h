/*
 * cpu_x86_reduce.h — horizontal reductions of one 8-lane AVX vector to a
 * scalar, shared by the AVX2/AVX-512 kernel files (include only from files
 * compiled with -mavx2). Each folds the two 128-bit halves, then pairs, then
 * the last two lanes.
 */
#ifndef LARDER_BACKEND_CPU_X86_REDUCE_H
#define LARDER_BACKEND_CPU_X86_REDUCE_H

#include <immintrin.h>

/* v0 + v1 + ... + v7 */
static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* max(v0, ..., v7) */
static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#endif
