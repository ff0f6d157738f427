/*
 * quant_internal.h — per-type reference kernels behind quant.h's dispatch
 * (src/tensor/quant.c). Not for use outside src/tensor/.
 *
 * Every function takes nb = number of blocks (row elements / block_elems).
 * Files: quant_legacy.c (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1), quant_k.c (K-type
 * unpacking and dot products), quant_k_quantize.c (K-type quantizers),
 * quant_fit.c (the scale / min searches the weight quantizers share).
 */
#ifndef LARDER_TENSOR_QUANT_INTERNAL_H
#define LARDER_TENSOR_QUANT_INTERNAL_H

#include <stdint.h>

#include "tensor/dtype.h"

/* ---- quant_legacy.c */
void dequant_q4_0(const block_q4_0 *x, float *y, int64_t nb);
void dequant_q4_1(const block_q4_1 *x, float *y, int64_t nb);
void dequant_q5_0(const block_q5_0 *x, float *y, int64_t nb);
void dequant_q5_1(const block_q5_1 *x, float *y, int64_t nb);
void dequant_q8_0(const block_q8_0 *x, float *y, int64_t nb);
void dequant_q8_1(const block_q8_1 *x, float *y, int64_t nb);
void quant_q4_0(const float *x, block_q4_0 *y, int64_t nb);
void quant_q4_0_fast(const float *x, block_q4_0 *y, int64_t nb);
void quant_q4_1(const float *x, block_q4_1 *y, int64_t nb);
void quant_q5_0(const float *x, block_q5_0 *y, int64_t nb);
void quant_q5_1(const float *x, block_q5_1 *y, int64_t nb);
void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb);
void quant_q8_1(const float *x, block_q8_1 *y, int64_t nb);
void quant_q8_0_activation(const float *x, block_q8_0 *y, int64_t nb); /* id = 127/amax (llama.cpp's x86) */
void quant_q8_1_activation(const float *x, block_q8_1 *y, int64_t nb);
float dot_q4_0_q8_0(const block_q4_0 *x, const block_q8_0 *a, int64_t nb);
float dot_q4_1_q8_1(const block_q4_1 *x, const block_q8_1 *a, int64_t nb);
float dot_q5_0_q8_0(const block_q5_0 *x, const block_q8_0 *a, int64_t nb);
float dot_q5_1_q8_1(const block_q5_1 *x, const block_q8_1 *a, int64_t nb);
float dot_q8_0_q8_0(const block_q8_0 *x, const block_q8_0 *a, int64_t nb);

/* ---- quant_k.c */
void dequant_q2_k(const block_q2_k *x, float *y, int64_t nb);
void dequant_q3_k(const block_q3_k *x, float *y, int64_t nb);
void dequant_q4_k(const block_q4_k *x, float *y, int64_t nb);
void dequant_q5_k(const block_q5_k *x, float *y, int64_t nb);
void dequant_q6_k(const block_q6_k *x, float *y, int64_t nb);
void dequant_q8_k(const block_q8_k *x, float *y, int64_t nb);
float dot_q2_k_q8_k(const block_q2_k *x, const block_q8_k *a, int64_t nb);
float dot_q3_k_q8_k(const block_q3_k *x, const block_q8_k *a, int64_t nb);
float dot_q4_k_q8_k(const block_q4_k *x, const block_q8_k *a, int64_t nb);
float dot_q5_k_q8_k(const block_q5_k *x, const block_q8_k *a, int64_t nb);
float dot_q6_k_q8_k(const block_q6_k *x, const block_q8_k *a, int64_t nb);
/* 6-bit scale and min j (0..7) of a Q4_K / Q5_K block's scales[12]. */
void q4k_scale_min(const uint8_t scales[12], int j, uint8_t *sc, uint8_t *m);
/* 6-bit signed scale j (0..15) of a Q3_K block's scales[12], in [-32, 31]. */
int q3k_scale(const uint8_t scales[12], int j);

/* ---- quant_k_quantize.c */
void quant_q2_k(const float *x, block_q2_k *y, int64_t nb);
void quant_q3_k(const float *x, block_q3_k *y, int64_t nb);
void quant_q4_k(const float *x, block_q4_k *y, int64_t nb);
void quant_q5_k(const float *x, block_q5_k *y, int64_t nb);
void quant_q6_k(const float *x, block_q6_k *y, int64_t nb);
void quant_q8_k(const float *x, block_q8_k *y, int64_t nb);

#endif
