/*
 * quant_fit.c — the scale searches shared by the weight quantizers.
 *
 * Key idea: rounding x/s to integers for the "obvious" scale s (the one that
 * maps the largest element onto the end of the integer range) is rarely the
 * least-squares best. We try a small grid of scales around it; for each, fix
 * the integers L and solve the least-squares problem for the scale (and for
 * the offset, in the asymmetric case) in closed form; keep the best. This is
 * the same idea as ggml's make_qx_quants / make_qkx2_quants (our own code).
 */
#include "tensor/quant_fit.h"

#include <math.h>
#include <string.h>

/* Groups whose largest magnitude is below this are stored as all-zero. */
#define QUANT_GROUP_EPS 1e-15f
/* Symmetric search: iscale = -(nmax + QUANT_SYM_STEP * k) / max, k = -9..9. */
#define QUANT_SYM_STEPS 9
#define QUANT_SYM_STEP 0.1f
/* Lloyd refinement rounds after the grid search (each never raises the error). */
#define QUANT_REFINE_ROUNDS 4
/* Largest group any quantizer passes (Q4_K/Q5_K sub-blocks and Q4_0 blocks are 32). */
#define QUANT_FIT_MAX_N 32

static float weight_at(const float *w, int i) { return w ? w[i] : 1.0f; }

float quant_fit_symmetric(int n, int nmax, const float *x, const float *w, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (!(amax >= QUANT_GROUP_EPS) || !isfinite(amax)) { memset(L, 0, (size_t)n); return 0.0f; }

    /* For fixed L, the best s minimises sum w (x - sL)^2: s = sum wxL / sum wL^2,
     * and the error is sum wx^2 - (sum wxL)^2 / sum wL^2: maximise
     * score = (sum wxL)^2 / sum wL^2. */
    double best_score = -1.0;
    float best_scale = 0.0f;
    int8_t trial[QUANT_FIT_MAX_N];
    for (int k = -QUANT_SYM_STEPS; k <= QUANT_SYM_STEPS; k++) {
        float iscale = -((float)nmax + QUANT_SYM_STEP * (float)k) / max;
        double sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = quant_round_clamp(iscale * x[i], -nmax, nmax - 1);
            trial[i] = (int8_t)l;
            double wi = weight_at(w, i);
            sumlx += wi * x[i] * l;
            suml2 += wi * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx / suml2 > best_score) {
            best_score = sumlx * sumlx / suml2;
            best_scale = (float)(sumlx / suml2);
            memcpy(L, trial, (size_t)n);
        }
    }
    if (best_score < 0) { memset(L, 0, (size_t)n); return 0.0f; }

    /* Lloyd rounds: re-round with the refitted scale, refit, until stable. */
    for (int round = 0; round < QUANT_REFINE_ROUNDS && best_scale != 0.0f; round++) {
        double sumlx = 0, suml2 = 0;
        int changed = 0;
        for (int i = 0; i < n; i++) {
            int l = quant_round_clamp(x[i] / best_scale, -nmax, nmax - 1);
            trial[i] = (int8_t)l;
            changed += l != L[i];
            double wi = weight_at(w, i);
            sumlx += wi * x[i] * l;
            suml2 += wi * l * l;
        }
        if (!changed || suml2 <= 0 || sumlx * sumlx / suml2 <= best_score) break;
        best_score = sumlx * sumlx / suml2;
        best_scale = (float)(sumlx / suml2);
        memcpy(L, trial, (size_t)n);
    }
    return best_scale;
}

float quant_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                          float *neg_min, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    double sum_w = 0, sum_x = 0, sum_x2 = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        double wi = weight_at(w, i);
        sum_w += wi;
        sum_x += wi * x[i];
        sum_x2 += wi * x[i] * x[i];
    }
    if (min > 0) min = 0; /* the offset is never positive: x = s*L + m, m <= 0 */
    if (!(max - min >= QUANT_GROUP_EPS) || !isfinite(max - min)) {
        memset(L, 0, (size_t)n);
        *neg_min = isfinite(min) ? -min : 0.0f;
        return 0.0f;
    }

    /* Starting point: the plain min/max grid. */
    float scale = (max - min) / (float)nmax, offset = min;
    double best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)quant_round_clamp((x[i] - min) / scale, 0, nmax);
        double diff = scale * L[i] + min - x[i];
        best_err += weight_at(w, i) * diff * diff;
    }

    uint8_t trial[QUANT_FIT_MAX_N];
    for (int k = 0; k <= nstep; k++) {
        float iscale = ((float)nmax + rmin + rdelta * (float)k) / (max - min);
        double sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = quant_round_clamp(iscale * (x[i] - min), 0, nmax);
            trial[i] = (uint8_t)l;
            double wi = weight_at(w, i);
            sum_l += wi * l;
            sum_l2 += wi * l * l;
            sum_xl += wi * l * x[i];
        }
        /* Weighted least squares for (s, m) in x ~ s*L + m:
         *   [sum_l2 sum_l] [s]   [sum_xl]
         *   [sum_l  sum_w] [m] = [sum_x ]                                   */
        double det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0) continue;
        double s = (sum_w * sum_xl - sum_x * sum_l) / det;
        double m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0) { m = 0; s = sum_xl / sum_l2; } /* constrained: offset fixed at 0 */
        /* sum w (s*l + m - x)^2 expanded, from the sums already taken */
        double err = sum_x2 + s * s * sum_l2 + m * m * sum_w
                   - 2 * s * sum_xl - 2 * m * sum_x + 2 * s * m * sum_l;
        if (err < best_err) {
            best_err = err;
            scale = (float)s;
            offset = (float)m;
            memcpy(L, trial, (size_t)n);
        }
    }
    *neg_min = -offset;
    return scale;
}
