/*
 * quant_k_quantize.c — quantizers for the K super-block types (256 elements).
 *
 * Key idea (two levels, as in ggml): first fit every sub-block on its own
 * (scale, and min for the affine types) with the searches of quant_fit.c; then
 * quantize those per-sub-block scales to 4/6/8 bits against one f16
 * super-block scale; finally re-round every element against the scales as
 * they will be read back. Bit layouts: see quant_k.c.
 */
#include "tensor/quant_internal.h"
#include "tensor/quant_fit.h"

#include <math.h>
#include <string.h>

/* Groups whose scales are all below this are stored as all-zero blocks. */
#define QUANT_K_EPS 1e-15f

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins */

/* Squared error of a 32-element sub-block read back as d*ls*q - dmin*lm with
 * each q rounded to the nearest level in [0, nmax]. */
static float sub_block_error(const float *x, int nmax, float ds, float dm) {
    float err = 0;
    for (int l = 0; l < 32; l++) {
        int q = ds != 0.0f ? quant_round_clamp((x[l] + dm) / ds, 0, nmax) : 0;
        float diff = ds * (float)q - dm - x[l];
        err += diff * diff;
    }
    return err;
}

/* The 6-bit scale/min pair nearest the fitted values is not always the best
 * pair once both are rounded: try the neighbours (+-1 each) and keep the pair
 * with the least squared error. */
static void refine_scale_min(const float *x, int nmax, float d, float dmin, int *ls, int *lm) {
    int best_s = *ls, best_m = *lm;
    float best = sub_block_error(x, nmax, d * (float)best_s, dmin * (float)best_m);
    for (int s = *ls - 1; s <= *ls + 1; s++) {
        for (int m = *lm - 1; m <= *lm + 1; m++) {
            if (s < 0 || s > 63 || m < 0 || m > 63 || (s == *ls && m == *lm)) continue;
            float err = sub_block_error(x, nmax, d * (float)s, dmin * (float)m);
            if (err < best) { best = err; best_s = s; best_m = m; }
        }
    }
    *ls = best_s;
    *lm = best_m;
}

/* Fit the 8 sub-blocks of x (256 floats) with quants in [0, nmax], pack the
 * 6-bit scales/mins into scales[12], set d/dmin, and write the final quants
 * (re-rounded against the packed scales) to L. */
static void fit_q45_k(const float *x, int nmax, float rmin, int nstep,
                      uint8_t scales_out[12], uint16_t *d_out, uint16_t *dmin_out, uint8_t L[QK_K]) {
    float scales[QK_K / 32], mins[QK_K / 32], w[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xs = x + 32 * j;
        /* weight = rms of the sub-block + |x|: large values matter more, none are ignored */
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float rms = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = rms + fabsf(xs[l]);
        scales[j] = quant_fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    /* super-block scales first, so the 6-bit ones are rounded against the f16
     * values readers will use (matters when d is an f16 subnormal) */
    *d_out = f32_to_fp16(max_scale / 63.0f);
    *dmin_out = f32_to_fp16(max_min / 63.0f);
    float d = fp16_to_f32(*d_out), dmin = fp16_to_f32(*dmin_out);
    float inv_scale = d > 0 ? 1.0f / d : 0.0f;
    float inv_min = dmin > 0 ? 1.0f / dmin : 0.0f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < QK_K / 32; j++) {
        int ls = quant_round_clamp(inv_scale * scales[j], 0, 63);
        int lm = quant_round_clamp(inv_min * mins[j], 0, 63);
        refine_scale_min(x + 32 * j, nmax, d, dmin, &ls, &lm);
        if (j < 4) {
            scales_out[j] |= ls;
            scales_out[j + 4] |= lm;
        } else { /* low 4 bits in byte j+4, top 2 bits in the top of bytes j-4 and j */
            scales_out[j + 4] = (uint8_t)((ls & 0x0F) | (lm & 0x0F) << 4);
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        q4k_scale_min(scales_out, j, &sc, &m);
        float ds = d * (float)sc, dm = dmin * (float)m;
        for (int l = 0; l < 32; l++)   /* x = ds*q - dm  ->  q = (x + dm) / ds */
            L[32 * j + l] = (uint8_t)(ds != 0.0f ? quant_round_clamp((x[32 * j + l] + dm) / ds, 0, nmax) : 0);
    }
}

void quant_q4_k(const float *x, block_q4_k *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        fit_q45_k(x, 15, -1.0f, 20, y[b].scales, &y[b].d, &y[b].dmin, L);
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++)
                y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void quant_q5_k(const float *x, block_q5_k *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        fit_q45_k(x, 31, -0.5f, 15, y[b].scales, &y[b].d, &y[b].dmin, L);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int e = 0; e < QK_K; e++) y[b].qh[e % 32] |= (uint8_t)(((L[e] >> 4) & 1) << (e / 32));
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++)
                y[b].qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0x0F) | (L[64 * c + 32 + l] & 0x0F) << 4);
    }
}

/* ---- Q2_K: 16 sub-blocks of 16, 2-bit quants, 4-bit scales and mins */

void quant_q2_k(const float *x, block_q2_k *y, int64_t nb) {
    uint8_t L[QK_K];
    float scales[QK_K / 16], mins[QK_K / 16], w[16];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int s = 0; s < QK_K / 16; s++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * s + l]);
            scales[s] = quant_fit_scale_min(16, 3, x + 16 * s, w, L + 16 * s, &mins[s], -0.5f, 0.1f, 15);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }
        y[b].d = f32_to_fp16(max_scale / 15.0f);
        y[b].dmin = f32_to_fp16(max_min / 15.0f);
        float d = fp16_to_f32(y[b].d), dmin = fp16_to_f32(y[b].dmin);
        float inv_scale = d > 0 ? 1.0f / d : 0.0f;      /* against the stored f16 d */
        float inv_min = dmin > 0 ? 1.0f / dmin : 0.0f;
        for (int s = 0; s < QK_K / 16; s++)
            y[b].scales[s] = (uint8_t)(quant_round_clamp(inv_scale * scales[s], 0, 15) |
                                       quant_round_clamp(inv_min * mins[s], 0, 15) << 4);
        for (int s = 0; s < QK_K / 16; s++) {
            float ds = d * (float)(y[b].scales[s] & 0x0F), dm = dmin * (float)(y[b].scales[s] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = (uint8_t)(ds != 0.0f ? quant_round_clamp((x[16 * s + l] + dm) / ds, 0, 3) : 0);
        }
        memset(y[b].qs, 0, sizeof y[b].qs);
        for (int e = 0; e < QK_K; e++)
            y[b].qs[32 * (e / 128) + e % 32] |= (uint8_t)(L[e] << (2 * ((e % 128) / 32)));
    }
}

/* ---- Q3_K: 16 sub-blocks of 16, 3-bit signed quants, 6-bit signed scales */

void quant_q3_k(const float *x, block_q3_k *y, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int s = 0; s < QK_K / 16; s++) {
            scales[s] = quant_fit_symmetric(16, 4, x + 16 * s, NULL, L + 16 * s);
            if (fabsf(scales[s]) > amax) { amax = fabsf(scales[s]); max_scale = scales[s]; }
        }
        memset(y[b].scales, 0, sizeof y[b].scales);
        if (amax >= QUANT_K_EPS) {
            /* the largest-magnitude scale maps to -32; the others in [-32, 31] */
            y[b].d = f32_to_fp16(max_scale / -32.0f);
            float dd = fp16_to_f32(y[b].d);
            float iscale = dd != 0.0f ? 1.0f / dd : 0.0f; /* against the stored f16 d */
            for (int s = 0; s < QK_K / 16; s++) {
                int l = quant_round_clamp(iscale * scales[s], -32, 31) + 32; /* 6 bits */
                if (s < 8) y[b].scales[s] |= (uint8_t)(l & 0x0F);
                else y[b].scales[s - 8] |= (uint8_t)((l & 0x0F) << 4);
                y[b].scales[8 + s % 4] |= (uint8_t)((l >> 4) << (2 * (s / 4)));
            }
        } else {
            y[b].d = f32_to_fp16(0.0f);
        }
        float d = fp16_to_f32(y[b].d);
        for (int s = 0; s < QK_K / 16; s++) {
            float ds = d * (float)q3k_scale(y[b].scales, s);
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = (int8_t)(ds != 0.0f ? quant_round_clamp(x[16 * s + l] / ds, -4, 3) : 0);
        }
        /* q in [-4, 3]: stored as low 2 bits of q+4 and a high bit meaning "q >= 0" */
        memset(y[b].hmask, 0, sizeof y[b].hmask);
        memset(y[b].qs, 0, sizeof y[b].qs);
        for (int e = 0; e < QK_K; e++) {
            int u = L[e] + 4;
            if (u > 3) { y[b].hmask[e % 32] |= (uint8_t)(1u << (e / 32)); u -= 4; }
            y[b].qs[32 * (e / 128) + e % 32] |= (uint8_t)(u << (2 * ((e % 128) / 32)));
        }
    }
}

/* ---- Q6_K: 16 sub-blocks of 16, 6-bit signed quants, int8 scales */

void quant_q6_k(const float *x, block_q6_k *y, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int s = 0; s < QK_K / 16; s++) {
            scales[s] = quant_fit_symmetric(16, 32, x + 16 * s, NULL, L + 16 * s);
            if (fabsf(scales[s]) > amax) { amax = fabsf(scales[s]); max_scale = scales[s]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (!(amax >= QUANT_K_EPS)) continue; /* all-zero block (d = +0) */
        y[b].d = f32_to_fp16(max_scale / -128.0f);
        float d = fp16_to_f32(y[b].d);
        float iscale = d != 0.0f ? 1.0f / d : 0.0f; /* against the stored f16 d */
        for (int s = 0; s < QK_K / 16; s++)
            y[b].scales[s] = (int8_t)quant_round_clamp(iscale * scales[s], -128, 127);
        for (int s = 0; s < QK_K / 16; s++) {
            float ds = d * (float)y[b].scales[s];
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = (int8_t)(ds != 0.0f ? quant_round_clamp(x[16 * s + l] / ds, -32, 31) : 0);
        }
        for (int e = 0; e < QK_K; e++) {
            int u = L[e] + 32; /* 0..63 */
            int h = e / 128, g = (e % 128) / 32, l = e % 32;
            y[b].ql[64 * h + 32 * (g & 1) + l] |= (uint8_t)((u & 0x0F) << (g < 2 ? 0 : 4));
            y[b].qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * g));
        }
    }
}

/* ---- Q8_K: the activation type. d = -max/127 where max is the element of
 * largest magnitude (so it maps to exactly -127), q = round(x/d) <= 127. */

void quant_q8_k(const float *x, block_q8_k *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float amax = 0, max = 0;
        for (int e = 0; e < QK_K; e++)
            if (fabsf(x[e]) > amax) { amax = fabsf(x[e]); max = x[e]; }
        if (amax == 0.0f || !isfinite(amax)) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float iscale = -127.0f / max;
        for (int e = 0; e < QK_K; e++) y[b].qs[e] = (int8_t)quant_round_clamp(iscale * x[e], -128, 127);
        for (int s = 0; s < QK_K / 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[b].qs[16 * s + l];
            y[b].bsums[s] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}
