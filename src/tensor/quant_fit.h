/*
 * quant_fit.h — what the weight quantizers (quant_legacy.c,
 * quant_k_quantize.c) share: rounding to a clamped integer, and the scale /
 * min searches of quant_fit.c. Not for use outside src/tensor/.
 */
#ifndef LARDER_TENSOR_QUANT_FIT_H
#define LARDER_TENSOR_QUANT_FIT_H

#include <stdint.h>
#include <string.h>

/* Round to the nearest integer (ties to even) and clamp to [lo, hi]; NaN -> lo.
 * Never converts an out-of-range float to int (that would be undefined). */
static inline int quant_round_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo - 0.5f)) return lo; /* also catches NaN */
    if (v >= (float)hi + 0.5f) return hi;
    /* |v| < 2^22 here: adding 1.5 * 2^23 leaves a float whose ulp is 1, so the
     * addition itself rounds v to an integer (ties to even, the default mode),
     * which then sits in the low mantissa bits, offset by 2^22. Same result as
     * lrintf, without a libm call in the quantizers' inner loops. */
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* Scale searches (weights w may be NULL = all 1). */

/* Symmetric: choose scale s and L[i] in [-nmax, nmax-1] minimising
 * sum w_i (x_i - s*L_i)^2. Tries the scales that map the largest-magnitude
 * element onto -nmax +- small steps, each refitted by least squares.
 * Returns s (0 and L = 0 for an all-zero group). */
/* n <= 32 for both searches. */
float quant_fit_symmetric(int n, int nmax, const float *x, const float *w, int8_t *L);

/* Asymmetric: choose scale s >= 0, offset m <= 0 and L[i] in [0, nmax]
 * minimising sum w_i (x_i - (s*L_i + m))^2, trying the grid of
 * iscales (nmax + rmin + rdelta*k) / (max - min), k = 0..nstep, each refitted
 * by weighted least squares. Stores -m (>= 0) in *neg_min; returns s. */
float quant_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                          float *neg_min, float rmin, float rdelta, int nstep);

#endif
