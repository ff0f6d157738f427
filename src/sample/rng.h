/*
 * rng.h — the sampler's seeded random numbers: xoshiro256** seeded through
 * splitmix64. Same seed, same sequence, on every machine.
 */
#ifndef LARDER_SAMPLE_RNG_H
#define LARDER_SAMPLE_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4]; /* xoshiro256** state (never all zero) */
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
/* Uniform double in [0, 1) (53 random bits). */
double rng_uniform(rng *r);

#endif
