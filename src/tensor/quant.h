/*
 * quant.h — the scalar REFERENCE for every tensor type: dequantize a row,
 * quantize a row, and the weight·activation dot product.
 *
 * This is the contract the SIMD kernels (src/backend/cpu/) implement fast
 * versions of and are tested against. Everything here is plain C, exact
 * with respect to ggml's block layouts (src/tensor/dtype.h), and slow.
 *
 * Dot-product scheme (the same as ggml's CPU backend, so results are close to
 * llama.cpp's): a weight row of type W is multiplied with an activation row
 * that was first quantized to W's "vec dot type" A = quant_vec_dot_type(W):
 *
 *     W = Q4_0, Q5_0, Q8_0           ->  A = Q8_0
 *     W = Q4_1, Q5_1                 ->  A = Q8_1  (block carries s = d * sum(qs))
 *     W = Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> A = Q8_K (block carries bsums)
 *     W = F32, F16, BF16             ->  A = F32   (activations used as floats)
 *
 * and vec_dot_ref multiplies the integer quants block by block, applying the
 * scales once per (sub-)block, exactly as ggml's generic kernels do.
 *
 * Row lengths n are element counts and must be a multiple of the type's
 * block_elems (32 for Q4_0..Q8_1, 256 for the K types, 1 for F32/F16/BF16);
 * callers check this (the GGUF reader rejects tensors where it fails).
 * Rows are packed blocks, as in the file: tensor_row_bytes(type, n) bytes.
 */
#ifndef LARDER_TENSOR_QUANT_H
#define LARDER_TENSOR_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/dtype.h"

/* Returned by quant_vec_dot_type for a type with no dot product. */
#define QUANT_NO_TYPE UINT32_MAX

/* True if dequantize_row handles this type: F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. */
bool quant_can_dequantize(uint32_t type);

/* dst[0..n) (f32) = the values of the n elements in src (a row of `type`).
 * For a type quant_can_dequantize rejects, dst is filled with zeros. */
void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize n floats into a row of `type` at dst (tensor_row_bytes(type, n)
 * bytes). The weight quantizers search scales (and mins) to minimise the
 * squared error, like ggml's reference quantizers, so llama.cpp reads the
 * result as an ordinary file of that type. Supported: F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
 * Returns 0, or -1 for an unsupported type or an n that is not a multiple
 * of the block size (dst untouched). */
int quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Quantize n floats into a row of `type` without any scale search: the
 * quantizers llama.cpp uses for rows written while running (its KV cache).
 * Q4_0: per block, m = the element of largest magnitude (sign kept),
 * d = m / -8, q = min(15, trunc(x/d + 8.5)); Q8_0, F32, F16, BF16: as
 * quantize_row. Returns 0, or -1 for another type or a bad n. */
int quantize_row_fast(uint32_t type, const float *src, void *dst, int64_t n);

/* The activation type a weight type is dotted with (table above), or
 * QUANT_NO_TYPE if the weight type has no dot product. */
uint32_t quant_vec_dot_type(uint32_t wtype);

/* The reference activation quantizer: n floats x -> a row of act_type at dst.
 * act_type is one of Q8_0 (d = amax/127, q = round(x·127/amax), as
 * llama.cpp's x86 quantize_row_q8_0; weights use x/d), Q8_1 (as Q8_0,
 * plus s = d * sum(q)), Q8_K (d = -max/127 where |max| is the largest
 * magnitude, q = round(x/d) clamped to 127, bsums per 16), or F32 (copy).
 * Other act_type values: dst untouched. */
void quantize_row_activation(uint32_t act_type, const float *x, void *dst, int64_t n);

/* sum_i w_i * a_i over one row of n elements: w_row is a row of wtype,
 * act_row a row of quant_vec_dot_type(wtype) (for F32/F16/BF16 weights: f32).
 * Integer products per block, scaled per block as ggml does. Returns 0 for a
 * wtype with no dot product. */
float vec_dot_ref(uint32_t wtype, const void *w_row, const void *act_row, int64_t n);

#endif
