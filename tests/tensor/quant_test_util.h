/*
 * quant_test_util.h — helpers shared by the tensor tests: a seeded PRNG
 * (xorshift64*), gaussian samples, relative RMSE, and the list of types.
 */
#ifndef LARDER_TESTS_TENSOR_QUANT_TEST_UTIL_H
#define LARDER_TESTS_TENSOR_QUANT_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tensor/dtype.h"
#include "tensor/quant.h"

typedef struct { uint64_t s; } test_rng;

static inline uint64_t rng_u64(test_rng *r) {
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}
/* uniform in [0, 1) */
static inline float rng_uniform(test_rng *r) { return (float)(rng_u64(r) >> 40) / 16777216.0f; }
/* standard normal (Box-Muller) */
static inline float rng_gauss(test_rng *r) {
    float u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
static inline void rng_bytes(test_rng *r, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rng_u64(r) >> 56);
}

/* sqrt(sum (a-b)^2 / sum a^2) */
static inline double rel_rmse(const float *a, const float *b, int64_t n) {
    double err = 0, sig = 0;
    for (int64_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; err += d * d; sig += (double)a[i] * a[i]; }
    return sig > 0 ? sqrt(err / sig) : sqrt(err);
}

/* Every type id dtype.h defines, and the weight types with a dot product. */
static const uint32_t ALL_TYPES[] = {
    TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
    TYPE_Q8_1, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K, TYPE_Q8_K,
};
#define N_ALL_TYPES (sizeof ALL_TYPES / sizeof ALL_TYPES[0])
static const uint32_t WEIGHT_TYPES[] = {
    TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
    TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K,
};
#define N_WEIGHT_TYPES (sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])

/* Random block bytes for `type` whose f16/f32 scale fields are finite and
 * moderate (random bytes there could be inf/nan): n_blocks blocks at dst. */
static inline void random_blocks(test_rng *r, uint32_t type, void *dst, int64_t n_blocks) {
    const tensor_type_traits *t = tensor_type_get(type);
    rng_bytes(r, dst, (size_t)n_blocks * t->block_bytes);
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = (uint8_t *)dst + (size_t)b * t->block_bytes;
        uint16_t d = f32_to_fp16((rng_uniform(r) * 2 - 1) * 0.05f);
        uint16_t m = f32_to_fp16(rng_uniform(r) * 0.05f);
        switch (type) {
        case TYPE_Q4_0: case TYPE_Q5_0: case TYPE_Q8_0: ((block_q8_0 *)p)->d = d; break;
        case TYPE_Q4_1: case TYPE_Q5_1: ((block_q4_1 *)p)->d = d; ((block_q4_1 *)p)->m = m; break;
        case TYPE_Q8_1: ((block_q8_1 *)p)->d = d; ((block_q8_1 *)p)->s = m; break;
        case TYPE_Q2_K: ((block_q2_k *)p)->d = d; ((block_q2_k *)p)->dmin = m; break;
        case TYPE_Q3_K: ((block_q3_k *)p)->d = d; break;
        case TYPE_Q4_K: ((block_q4_k *)p)->d = d; ((block_q4_k *)p)->dmin = m; break;
        case TYPE_Q5_K: ((block_q5_k *)p)->d = d; ((block_q5_k *)p)->dmin = m; break;
        case TYPE_Q6_K: ((block_q6_k *)p)->d = d; break;
        case TYPE_Q8_K: ((block_q8_k *)p)->d = (rng_uniform(r) * 2 - 1) * 0.05f; break;
        default: break;
        }
    }
}

#endif
