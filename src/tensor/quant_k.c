/*
 * quant_k.c — the K-quant super-block types (256 elements): unpacking and the
 * integer dot product with Q8_K activations.
 *
 * Key idea: each unpack_* function turns a block into its 256 integer quants
 * in element order plus the per-sub-block scales; dequantization and the dot
 * product are both written on top of them, so the bit packing lives in one
 * place per type. Element e (0..255) of a block is stored as:
 *
 *   Q2_K  2-bit q = (qs[32*(e/128) + e%32] >> 2*((e%128)/32)) & 3
 *         sub-block s = e/16: scales[s] = scale (low 4 bits) | min (high 4)
 *         x = d*scale*q - dmin*min
 *   Q3_K  low 2 bits as Q2_K; bit 2 = (hmask[e%32] >> e/32) & 1, stored
 *         INVERTED in meaning: x = d*(sc-32)*(q - (bit ? 0 : 4)), q in 0..3;
 *         16 6-bit scales sc packed in scales[12] (q3k_scale)
 *   Q4_K  4-bit q: 64-element chunk c = e/64 uses qs[32c..32c+31], low nibbles
 *         for its first 32 elements, high nibbles for the next 32;
 *         8 sub-blocks of 32 with 6-bit scale/min packed in scales[12]
 *         (q4k_scale_min); x = d*sc*q - dmin*m
 *   Q5_K  as Q4_K plus bit 4 = (qh[e%32] >> e/32) & 1
 *   Q6_K  6-bit q: in 128-half h = e/128, r = e%128, g = r/32, l = r%32:
 *         low 4 bits = nibble (g<2 ? low : high) of ql[64h + 32*(g&1) + l],
 *         high 2 bits = (qh[32h + l] >> 2g) & 3; x = d*scales[e/16]*(q-32)
 *   Q8_K  x = d*qs[e] (d is f32); bsums[s] = sum of qs[16s..16s+15]
 */
#include "tensor/quant_internal.h"

#include <string.h>

void q4k_scale_min(const uint8_t scales[12], int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        /* bytes 0..3: scale j in the low 6 bits; bytes 4..7: min j */
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        /* bytes 8..11: low 4 bits of scale (low nibble) and min (high nibble);
         * their top 2 bits are the top bits of bytes j-4 (scale) and j (min) */
        *sc = (uint8_t)((scales[j + 4] & 0x0F) | (scales[j - 4] >> 6) << 4);
        *m = (uint8_t)((scales[j + 4] >> 4) | (scales[j] >> 6) << 4);
    }
}

int q3k_scale(const uint8_t scales[12], int j) {
    /* low 4 bits: nibble (j<8 ? low : high) of byte j%8;
     * high 2 bits: bits 2*(j/4)..+1 of byte 8 + j%4 */
    int low = j < 8 ? scales[j] & 0x0F : scales[j - 8] >> 4;
    int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

/* ---- unpacking to integer quants, element order */

static void unpack_q2_k(const block_q2_k *x, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++)
        q[e] = (int8_t)((x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
}

/* Signed quants in [-4, 3]. */
static void unpack_q3_k(const block_q3_k *x, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++) {
        int low = (x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        int high = (x->hmask[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(low - (high ? 0 : 4));
    }
}

static void unpack_q4_k(const block_q4_k *x, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++) {
        uint8_t byte = x->qs[32 * (e / 64) + e % 32];
        q[e] = (int8_t)(e % 64 < 32 ? byte & 0x0F : byte >> 4);
    }
}

static void unpack_q5_k(const block_q5_k *x, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++) {
        uint8_t byte = x->qs[32 * (e / 64) + e % 32];
        int low = e % 64 < 32 ? byte & 0x0F : byte >> 4;
        int high = (x->qh[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(low | high << 4);
    }
}

/* Signed quants in [-32, 31]. */
static void unpack_q6_k(const block_q6_k *x, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++) {
        int h = e / 128, g = (e % 128) / 32, l = e % 32;
        uint8_t byte = x->ql[64 * h + 32 * (g & 1) + l];
        int low = g < 2 ? byte & 0x0F : byte >> 4;
        int high = (x->qh[32 * h + l] >> (2 * g)) & 3;
        q[e] = (int8_t)((low | high << 4) - 32);
    }
}

/* ---- dequantization (float op order follows ggml's, so results are bit-identical) */

void dequant_q2_k(const block_q2_k *x, float *y, int64_t nb) {
    int8_t q[QK_K];
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        unpack_q2_k(&x[b], q);
        float d = fp16_to_f32(x[b].d), dmin = fp16_to_f32(x[b].dmin);
        for (int e = 0; e < QK_K; e++) {
            uint8_t sc = x[b].scales[e / 16];
            float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
            y[e] = dl * (float)q[e] - ml;
        }
    }
}

void dequant_q3_k(const block_q3_k *x, float *y, int64_t nb) {
    int8_t q[QK_K];
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        unpack_q3_k(&x[b], q);
        float d = fp16_to_f32(x[b].d);
        for (int e = 0; e < QK_K; e++) {
            float dl = d * (float)q3k_scale(x[b].scales, e / 16);
            y[e] = dl * (float)q[e];
        }
    }
}

/* Q4_K and Q5_K share their header (d, dmin, the 12 packed scale/min
 * bytes): one super-block of unpacked q (0..15 or 0..31) to floats. */
static void dequant_scale_min_block(uint16_t d16, uint16_t dmin16, const uint8_t scales[12], const int8_t q[QK_K],
                                    float *y) {
    float d = fp16_to_f32(d16), dmin = fp16_to_f32(dmin16);
    for (int e = 0; e < QK_K; e++) {
        uint8_t sc, m;
        q4k_scale_min(scales, e / 32, &sc, &m);
        y[e] = d * (float)sc * (float)q[e] - dmin * (float)m;
    }
}

void dequant_q4_k(const block_q4_k *x, float *y, int64_t nb) {
    int8_t q[QK_K];
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        unpack_q4_k(&x[b], q);
        dequant_scale_min_block(x[b].d, x[b].dmin, x[b].scales, q, y);
    }
}

void dequant_q5_k(const block_q5_k *x, float *y, int64_t nb) {
    int8_t q[QK_K];
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        unpack_q5_k(&x[b], q);
        dequant_scale_min_block(x[b].d, x[b].dmin, x[b].scales, q, y);
    }
}

void dequant_q6_k(const block_q6_k *x, float *y, int64_t nb) {
    int8_t q[QK_K];
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        unpack_q6_k(&x[b], q);
        float d = fp16_to_f32(x[b].d);
        for (int e = 0; e < QK_K; e++) y[e] = d * (float)x[b].scales[e / 16] * (float)q[e];
    }
}

void dequant_q8_k(const block_q8_k *x, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, y += QK_K)
        for (int e = 0; e < QK_K; e++) y[e] = x[b].d * (float)x[b].qs[e];
}

/* ---- dot products with Q8_K activations a_e = da * qa_e.
 * For x_e = d*sc_s*q_e - dmin*m_s (sub-block s):
 *   sum_e x_e a_e = d*da * sum_s sc_s * (sum_{e in s} q_e qa_e)
 *                 - dmin*da * sum_s m_s * (sum_{e in s} qa_e)
 * and sum_{e in s} qa_e comes from the activation's bsums (groups of 16).
 * All inner sums are exact int32 (bounded well below 2^31). */

/* sum of q[e]*qa[e] over e in [from, from+len) */
static int32_t dot_i8(const int8_t *q, const int8_t *qa, int from, int len) {
    int32_t s = 0;
    for (int e = from; e < from + len; e++) s += q[e] * qa[e];
    return s;
}

float dot_q2_k_q8_k(const block_q2_k *x, const block_q8_k *a, int64_t nb) {
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        unpack_q2_k(&x[b], q);
        int32_t isum = 0, summ = 0;
        for (int s = 0; s < QK_K / 16; s++) {
            isum += (x[b].scales[s] & 0x0F) * dot_i8(q, a[b].qs, 16 * s, 16);
            summ += (x[b].scales[s] >> 4) * a[b].bsums[s];
        }
        float dall = a[b].d * fp16_to_f32(x[b].d), dmin = a[b].d * fp16_to_f32(x[b].dmin);
        sum += dall * (float)isum - dmin * (float)summ;
    }
    return sum;
}

float dot_q3_k_q8_k(const block_q3_k *x, const block_q8_k *a, int64_t nb) {
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        unpack_q3_k(&x[b], q);
        int32_t isum = 0;
        for (int s = 0; s < QK_K / 16; s++)
            isum += q3k_scale(x[b].scales, s) * dot_i8(q, a[b].qs, 16 * s, 16);
        sum += a[b].d * fp16_to_f32(x[b].d) * (float)isum;
    }
    return sum;
}

/* One Q4_K/Q5_K super-block (header as in dequant_scale_min_block) with
 * one Q8_K activation block: sub-blocks of 32, their mins against bsums. */
static float dot_scale_min_block(uint16_t d16, uint16_t dmin16, const uint8_t scales[12], const int8_t q[QK_K],
                                 const block_q8_k *a) {
    int32_t isum = 0, summ = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        q4k_scale_min(scales, j, &sc, &m);
        isum += sc * dot_i8(q, a->qs, 32 * j, 32);
        summ += m * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    float dall = a->d * fp16_to_f32(d16), dmin = a->d * fp16_to_f32(dmin16);
    return dall * (float)isum - dmin * (float)summ;
}

float dot_q4_k_q8_k(const block_q4_k *x, const block_q8_k *a, int64_t nb) {
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        unpack_q4_k(&x[b], q);
        sum += dot_scale_min_block(x[b].d, x[b].dmin, x[b].scales, q, &a[b]);
    }
    return sum;
}

float dot_q5_k_q8_k(const block_q5_k *x, const block_q8_k *a, int64_t nb) {
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        unpack_q5_k(&x[b], q);
        sum += dot_scale_min_block(x[b].d, x[b].dmin, x[b].scales, q, &a[b]);
    }
    return sum;
}

float dot_q6_k_q8_k(const block_q6_k *x, const block_q8_k *a, int64_t nb) {
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        unpack_q6_k(&x[b], q);
        int32_t isum = 0;
        for (int s = 0; s < QK_K / 16; s++) isum += x[b].scales[s] * dot_i8(q, a[b].qs, 16 * s, 16);
        sum += a[b].d * fp16_to_f32(x[b].d) * (float)isum;
    }
    return sum;
}
