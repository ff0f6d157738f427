/*
 * quant.c — dispatch of quant.h's reference functions by type id, and the
 * float types (F32, F16, BF16).
 *
 * Key idea: one switch per operation; the per-type kernels live in
 * quant_legacy.c and quant_k.c / quant_k_quantize.c. Float-weight dot
 * products accumulate in double (the reference should not add its own
 * rounding error; ggml's scalar path does the same).
 */
#include "tensor/quant.h"

#include <string.h>

#include "tensor/quant_internal.h"

/* Number of blocks in a row of n elements, or -1 if n is not a whole number
 * of blocks of a known type. */
static int64_t row_blocks(uint32_t type, int64_t n) {
    const tensor_type_traits *t = tensor_type_get(type);
    if (t == NULL || n < 0 || n % t->block_elems != 0) return -1;
    return n / t->block_elems;
}

bool quant_can_dequantize(uint32_t type) {
    switch (type) {
    case TYPE_F32: case TYPE_F16: case TYPE_BF16:
    case TYPE_Q4_0: case TYPE_Q4_1: case TYPE_Q5_0: case TYPE_Q5_1: case TYPE_Q8_0: case TYPE_Q8_1:
    case TYPE_Q2_K: case TYPE_Q3_K: case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K: case TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    int64_t nb = row_blocks(type, n);
    if (nb < 0 || !quant_can_dequantize(type)) {
        if (n > 0) memset(dst, 0, (size_t)n * sizeof(float));
        return;
    }
    switch (type) {
    case TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_f32(h[i]);
        break;
    }
    case TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]);
        break;
    }
    case TYPE_Q4_0: dequant_q4_0(src, dst, nb); break;
    case TYPE_Q4_1: dequant_q4_1(src, dst, nb); break;
    case TYPE_Q5_0: dequant_q5_0(src, dst, nb); break;
    case TYPE_Q5_1: dequant_q5_1(src, dst, nb); break;
    case TYPE_Q8_0: dequant_q8_0(src, dst, nb); break;
    case TYPE_Q8_1: dequant_q8_1(src, dst, nb); break;
    case TYPE_Q2_K: dequant_q2_k(src, dst, nb); break;
    case TYPE_Q3_K: dequant_q3_k(src, dst, nb); break;
    case TYPE_Q4_K: dequant_q4_k(src, dst, nb); break;
    case TYPE_Q5_K: dequant_q5_k(src, dst, nb); break;
    case TYPE_Q6_K: dequant_q6_k(src, dst, nb); break;
    case TYPE_Q8_K: dequant_q8_k(src, dst, nb); break;
    default: break;
    }
}

int quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    int64_t nb = row_blocks(type, n);
    if (nb < 0 || !quant_can_dequantize(type)) return -1;
    switch (type) {
    case TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case TYPE_F16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = f32_to_fp16(src[i]);
        break;
    }
    case TYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]);
        break;
    }
    case TYPE_Q4_0: quant_q4_0(src, dst, nb); break;
    case TYPE_Q4_1: quant_q4_1(src, dst, nb); break;
    case TYPE_Q5_0: quant_q5_0(src, dst, nb); break;
    case TYPE_Q5_1: quant_q5_1(src, dst, nb); break;
    case TYPE_Q8_0: quant_q8_0(src, dst, nb); break;
    case TYPE_Q8_1: quant_q8_1(src, dst, nb); break;
    case TYPE_Q2_K: quant_q2_k(src, dst, nb); break;
    case TYPE_Q3_K: quant_q3_k(src, dst, nb); break;
    case TYPE_Q4_K: quant_q4_k(src, dst, nb); break;
    case TYPE_Q5_K: quant_q5_k(src, dst, nb); break;
    case TYPE_Q6_K: quant_q6_k(src, dst, nb); break;
    case TYPE_Q8_K: quant_q8_k(src, dst, nb); break;
    default: return -1;
    }
    return 0;
}

int quantize_row_fast(uint32_t type, const float *src, void *dst, int64_t n) {
    if (type == TYPE_Q4_0) {
        int64_t nb = row_blocks(type, n);
        if (nb < 0) return -1;
        quant_q4_0_fast(src, dst, nb);
        return 0;
    }
    if (type == TYPE_Q8_0 || type == TYPE_F32 || type == TYPE_F16 || type == TYPE_BF16)
        return quantize_row(type, src, dst, n);
    return -1;
}

uint32_t quant_vec_dot_type(uint32_t wtype) {
    switch (wtype) {
    case TYPE_F32: case TYPE_F16: case TYPE_BF16: return TYPE_F32;
    case TYPE_Q4_0: case TYPE_Q5_0: case TYPE_Q8_0: return TYPE_Q8_0;
    case TYPE_Q4_1: case TYPE_Q5_1: return TYPE_Q8_1;
    case TYPE_Q2_K: case TYPE_Q3_K: case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K: return TYPE_Q8_K;
    default: return QUANT_NO_TYPE;
    }
}

void quantize_row_activation(uint32_t act_type, const float *x, void *dst, int64_t n) {
    int64_t nb = row_blocks(act_type, n);
    if (nb < 0) return;
    switch (act_type) {
    case TYPE_F32: memcpy(dst, x, (size_t)n * sizeof(float)); break;
    case TYPE_Q8_0: quant_q8_0_activation(x, dst, nb); break;
    case TYPE_Q8_1: quant_q8_1_activation(x, dst, nb); break;
    case TYPE_Q8_K: quant_q8_k(x, dst, nb); break;
    default: break;
    }
}

float vec_dot_ref(uint32_t wtype, const void *w_row, const void *act_row, int64_t n) {
    int64_t nb = row_blocks(wtype, n);
    if (nb < 0) return 0.0f;
    const float *a = act_row;
    double sum = 0;
    switch (wtype) {
    case TYPE_F32: {
        const float *w = w_row;
        for (int64_t i = 0; i < n; i++) sum += (double)w[i] * a[i];
        return (float)sum;
    }
    case TYPE_F16: {
        const uint16_t *w = w_row;
        for (int64_t i = 0; i < n; i++) sum += (double)fp16_to_f32(w[i]) * a[i];
        return (float)sum;
    }
    case TYPE_BF16: {
        const uint16_t *w = w_row;
        for (int64_t i = 0; i < n; i++) sum += (double)bf16_to_f32(w[i]) * a[i];
        return (float)sum;
    }
    case TYPE_Q4_0: return dot_q4_0_q8_0(w_row, act_row, nb);
    case TYPE_Q4_1: return dot_q4_1_q8_1(w_row, act_row, nb);
    case TYPE_Q5_0: return dot_q5_0_q8_0(w_row, act_row, nb);
    case TYPE_Q5_1: return dot_q5_1_q8_1(w_row, act_row, nb);
    case TYPE_Q8_0: return dot_q8_0_q8_0(w_row, act_row, nb);
    case TYPE_Q2_K: return dot_q2_k_q8_k(w_row, act_row, nb);
    case TYPE_Q3_K: return dot_q3_k_q8_k(w_row, act_row, nb);
    case TYPE_Q4_K: return dot_q4_k_q8_k(w_row, act_row, nb);
    case TYPE_Q5_K: return dot_q5_k_q8_k(w_row, act_row, nb);
    case TYPE_Q6_K: return dot_q6_k_q8_k(w_row, act_row, nb);
    default: return 0.0f;
    }
}
