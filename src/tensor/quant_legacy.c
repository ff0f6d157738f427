/*
 * quant_legacy.c — the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q8_1: unpacking, quantizing, and the integer dot product with Q8_0 / Q8_1
 * activations.
 *
 * Packing (per block of 32, element i):
 *   4-bit quant q_i: i < 16 -> low nibble of qs[i]; i >= 16 -> high nibble of qs[i-16]
 *   5-bit types add bit 4 of q_i from bit i of qh (32-bit little-endian)
 *   Q4_0: x = d*(q-8)   Q5_0: x = d*(q-16)   Q4_1/Q5_1: x = d*q + m   Q8: x = d*q
 * Rounding everywhere is to nearest, ties to even (what SIMD round-to-nearest does).
 */
#include "tensor/quant_internal.h"
#include "tensor/quant_fit.h"

#include <math.h>
#include <string.h>

/* ---- unpacking */

/* Unsigned 4-bit quant i (0..31) of a block's qs[16]. */
static inline int nibble(const uint8_t *qs, int i) {
    return i < 16 ? qs[i] & 0x0F : qs[i - 16] >> 4;
}
/* Bit 4 of 5-bit quant i from the 32-bit little-endian qh. */
static inline int high_bit(const uint8_t qh[4], int i) {
    return ((qh[i / 8] >> (i % 8)) & 1) << 4;
}

void dequant_q4_0(const block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d);
        for (int i = 0; i < QK32; i++) y[i] = (float)(nibble(x[b].qs, i) - 8) * d;
    }
}

void dequant_q4_1(const block_q4_1 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d), m = fp16_to_f32(x[b].m);
        for (int i = 0; i < QK32; i++) y[i] = (float)nibble(x[b].qs, i) * d + m;
    }
}

void dequant_q5_0(const block_q5_0 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d);
        for (int i = 0; i < QK32; i++)
            y[i] = (float)((nibble(x[b].qs, i) | high_bit(x[b].qh, i)) - 16) * d;
    }
}

void dequant_q5_1(const block_q5_1 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d), m = fp16_to_f32(x[b].m);
        for (int i = 0; i < QK32; i++)
            y[i] = (float)(nibble(x[b].qs, i) | high_bit(x[b].qh, i)) * d + m;
    }
}

void dequant_q8_0(const block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d);
        for (int i = 0; i < QK32; i++) y[i] = (float)x[b].qs[i] * d;
    }
}

void dequant_q8_1(const block_q8_1 *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK32) {
        float d = fp16_to_f32(x[b].d);
        for (int i = 0; i < QK32; i++) y[i] = (float)x[b].qs[i] * d;
    }
}

/* ---- packing helpers */

static void pack_nibbles(const uint8_t q[QK32], uint8_t qs[QK32 / 2]) {
    for (int i = 0; i < QK32 / 2; i++) qs[i] = (uint8_t)((q[i] & 0x0F) | (q[i + 16] & 0x0F) << 4);
}
static void pack_high_bits(const uint8_t q[QK32], uint8_t qh[4]) {
    memset(qh, 0, 4);
    for (int i = 0; i < QK32; i++) qh[i / 8] |= (uint8_t)(((q[i] >> 4) & 1) << (i % 8));
}

/* Symmetric types: x ~ d * (q - bias), q in [0, 2*bias). */
static void quant_symmetric_block(const float *x, int bias, uint16_t *d_out, uint8_t q[QK32]) {
    int8_t L[QK32];
    float s = quant_fit_symmetric(QK32, bias, x, NULL, L);
    *d_out = f32_to_fp16(s);
    float d = fp16_to_f32(*d_out);
    /* re-round against the scale as stored (f16), which is what readers use */
    for (int i = 0; i < QK32; i++)
        q[i] = (uint8_t)(d != 0.0f ? quant_round_clamp(x[i] / d, -bias, bias - 1) + bias : bias);
}

/* Scale+min types: x ~ d * q + m, q in [0, nmax]. */
static void quant_affine_block(const float *x, int nmax, uint16_t *d_out, uint16_t *m_out,
                               uint8_t q[QK32]) {
    uint8_t L[QK32];
    float neg_min;
    float s = quant_fit_scale_min(QK32, nmax, x, NULL, L, &neg_min, -0.5f, 0.1f, 10);
    *d_out = f32_to_fp16(s);
    *m_out = f32_to_fp16(-neg_min);
    float d = fp16_to_f32(*d_out), m = fp16_to_f32(*m_out);
    for (int i = 0; i < QK32; i++)
        q[i] = (uint8_t)(d != 0.0f ? quant_round_clamp((x[i] - m) / d, 0, nmax) : 0);
}

void quant_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        uint8_t q[QK32];
        quant_symmetric_block(x, 8, &y[b].d, q);
        pack_nibbles(q, y[b].qs);
    }
}

/* No search: d from the block's largest-magnitude element m, so that m maps
 * to q = 0 exactly (d = m / -8); the others round half up, clamped to 15. */
void quant_q4_0_fast(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        float amax = 0, m = 0;
        for (int i = 0; i < QK32; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), m = x[i];
        float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_fp16(d);
        uint8_t q[QK32];
        for (int i = 0; i < QK32; i++) {
            int v = (int)(x[i] * id + 8.5f);
            q[i] = (uint8_t)(v > 15 ? 15 : v < 0 ? 0 : v);
        }
        pack_nibbles(q, y[b].qs);
    }
}

void quant_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        uint8_t q[QK32];
        quant_symmetric_block(x, 16, &y[b].d, q);
        pack_nibbles(q, y[b].qs);
        pack_high_bits(q, y[b].qh);
    }
}

void quant_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        uint8_t q[QK32];
        quant_affine_block(x, 15, &y[b].d, &y[b].m, q);
        pack_nibbles(q, y[b].qs);
    }
}

void quant_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        uint8_t q[QK32];
        quant_affine_block(x, 31, &y[b].d, &y[b].m, q);
        pack_nibbles(q, y[b].qs);
        pack_high_bits(q, y[b].qh);
    }
}

/* Q8_0 / Q8_1: d = amax / 127 (as f32 for rounding, stored as f16), q =
 * round(x * id). For weights (llama.cpp's quantize_row_q8_0_ref) id = 1/d;
 * for activations id = 127/amax, as llama.cpp's x86 quantize_row_q8_0 /
 * q8_1 (arch/x86/quants.c) compute it, which the matmul and the attention
 * query quantize with: the two differ in the last bit now and then, enough
 * to round a quant the other way. Returns the f32 d and the sum of the quants. */
static float quant_q8_block(const float *x, bool activation, uint16_t *d_out, int8_t qs[QK32], int *sum_out) {
    float amax = 0;
    for (int i = 0; i < QK32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f;
    float id = activation ? (amax != 0.0f ? 127.0f / amax : 0.0f) : (d != 0.0f ? 1.0f / d : 0.0f);
    int sum = 0;
    for (int i = 0; i < QK32; i++) {
        qs[i] = (int8_t)quant_round_clamp(x[i] * id, -127, 127);
        sum += qs[i];
    }
    *d_out = f32_to_fp16(d);
    *sum_out = sum;
    return d;
}

static void quant_q8_0_rows(const float *x, block_q8_0 *y, int64_t nb, bool activation) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        int sum;
        quant_q8_block(x, activation, &y[b].d, y[b].qs, &sum);
    }
}

static void quant_q8_1_rows(const float *x, block_q8_1 *y, int64_t nb, bool activation) {
    for (int64_t b = 0; b < nb; b++, x += QK32) {
        int sum;
        float d = quant_q8_block(x, activation, &y[b].d, y[b].qs, &sum);
        y[b].s = f32_to_fp16(d * (float)sum); /* s = d * sum(q): carries the offset term */
    }
}

void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb) { quant_q8_0_rows(x, y, nb, false); }
void quant_q8_1(const float *x, block_q8_1 *y, int64_t nb) { quant_q8_1_rows(x, y, nb, false); }
void quant_q8_0_activation(const float *x, block_q8_0 *y, int64_t nb) { quant_q8_0_rows(x, y, nb, true); }
void quant_q8_1_activation(const float *x, block_q8_1 *y, int64_t nb) { quant_q8_1_rows(x, y, nb, true); }

/* ---- dot products: integer sum per block, then one scale multiply.
 * With w_i = dw*(q_i - bias) and a_i = da*qa_i:
 *   sum_i w_i a_i = dw*da * sum_i (q_i - bias)*qa_i
 * With w_i = dw*q_i + mw (Q4_1/Q5_1) and Q8_1's sa = da*sum(qa):
 *   sum_i w_i a_i = dw*da * sum_i q_i*qa_i + mw*sa                       */

float dot_q4_0_q8_0(const block_q4_0 *x, const block_q8_0 *a, int64_t nb) {
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sumi = 0;
        for (int i = 0; i < QK32; i++) sumi += (nibble(x[b].qs, i) - 8) * a[b].qs[i];
        sum += (float)sumi * fp16_to_f32(x[b].d) * fp16_to_f32(a[b].d);
    }
    return sum;
}

float dot_q5_0_q8_0(const block_q5_0 *x, const block_q8_0 *a, int64_t nb) {
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sumi = 0;
        for (int i = 0; i < QK32; i++)
            sumi += ((nibble(x[b].qs, i) | high_bit(x[b].qh, i)) - 16) * a[b].qs[i];
        sum += (float)sumi * fp16_to_f32(x[b].d) * fp16_to_f32(a[b].d);
    }
    return sum;
}

float dot_q8_0_q8_0(const block_q8_0 *x, const block_q8_0 *a, int64_t nb) {
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sumi = 0;
        for (int i = 0; i < QK32; i++) sumi += x[b].qs[i] * a[b].qs[i];
        sum += (float)sumi * fp16_to_f32(x[b].d) * fp16_to_f32(a[b].d);
    }
    return sum;
}

float dot_q4_1_q8_1(const block_q4_1 *x, const block_q8_1 *a, int64_t nb) {
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sumi = 0;
        for (int i = 0; i < QK32; i++) sumi += nibble(x[b].qs, i) * a[b].qs[i];
        sum += fp16_to_f32(x[b].d) * fp16_to_f32(a[b].d) * (float)sumi
             + fp16_to_f32(x[b].m) * fp16_to_f32(a[b].s);
    }
    return sum;
}

float dot_q5_1_q8_1(const block_q5_1 *x, const block_q8_1 *a, int64_t nb) {
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sumi = 0;
        for (int i = 0; i < QK32; i++)
            sumi += (nibble(x[b].qs, i) | high_bit(x[b].qh, i)) * a[b].qs[i];
        sum += fp16_to_f32(x[b].d) * fp16_to_f32(a[b].d) * (float)sumi
             + fp16_to_f32(x[b].m) * fp16_to_f32(a[b].s);
    }
    return sum;
}
