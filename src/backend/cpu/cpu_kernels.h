/*
 * cpu_kernels.h — the table of dot-product and activation-quantization
 * kernels for one CPU level (scalar, AVX2, AVX-512).
 *
 * Key idea: one micro-kernel shape serves decode and prefill. A dot kernel
 * multiplies ONE weight row with up to tile_tokens[type] activation rows,
 * unpacking each weight block once and reusing it for every token; decode
 * calls it with n_tok = 1, prefill with tiles of tile_tokens[type] tokens
 * (4, or 8 for Q4_K with AVX-512, whose 32 registers hold 8 tokens' sums).
 *
 * Activation rows are in quant_vec_dot_type(wtype) (src/tensor/quant.h):
 * Q8_0 / Q8_1 / Q8_K blocks, or plain f32 for F32/F16/BF16 weights.
 * Results agree with vec_dot_ref up to float summation order (the integer
 * block sums are exact); the quantize kernels are bit-identical to
 * quantize_row_activation for finite input.
 */
#ifndef LARDER_BACKEND_CPU_KERNELS_H
#define LARDER_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu_features.h"
#include "tensor/dtype.h"

/* The prefill tile of most dot kernels, and the widest any kernel takes
 * (sizes of callers' output arrays). */
#define CPU_DOT_TILE_TOKENS 4
#define CPU_DOT_MAX_TOKENS 8

/* out[t] = sum_i w_row[i] * act_t[i] for t in [0, n_tok), where act_t starts
 * at (const char *)act + t * act_stride_bytes. n: row length in elements (a
 * multiple of the weight type's block size); 1 <= n_tok <= tile_tokens[type]. */
typedef void (*cpu_dot_fn)(int64_t n, const void *w_row, const void *act,
                           size_t act_stride_bytes, int n_tok, float *out);

/* Two weight rows at once (w_row0 and w_row0 + w_row_bytes) with up to
 * CPU_DOT_TILE_TOKENS activation rows: out[r * CPU_DOT_MAX_TOKENS + t] for
 * r in {0, 1}, t < n_tok; with n_tok >= 2 bit for bit the values of two
 * cpu_dot_fn calls (llama.cpp's prefill summation order, cpu_dot_x86.h),
 * with one token the same up to float summation order. Optional (NULL
 * where a type has none): prefill uses it where both rows can share each
 * activation load and scale conversion (Q8_0, Q4_0, Q5_0). */
typedef void (*cpu_dot2_fn)(int64_t n, const void *w_row0, size_t w_row_bytes, const void *act,
                            size_t act_stride_bytes, int n_tok, float *out);

/* n floats x -> one activation row at dst (tensor_row_bytes(type, n) bytes). */
typedef void (*cpu_quantize_fn)(const float *x, void *dst, int64_t n);

typedef struct cpu_kernels {
    cpu_level level;                       /* the level these kernels need */
    cpu_dot_fn dot[TYPE_COUNT_MAX];        /* by weight type; NULL: no dot product */
    cpu_dot2_fn dot2[TYPE_COUNT_MAX];      /* by weight type; NULL: use dot row by row */
    int tile_tokens[TYPE_COUNT_MAX];       /* most tokens dot[type] takes in one call */
    cpu_quantize_fn quantize[TYPE_COUNT_MAX]; /* by activation type (F32 Q8_0 Q8_1 Q8_K) */
} cpu_kernels;

/* The kernels of a level (a level above cpu_level_supported() gives the
 * supported one's). Tables are built once and never change. */
const cpu_kernels *cpu_kernels_for(cpu_level level);

/* The kernels of cpu_level_active(). */
const cpu_kernels *cpu_kernels_active(void);

/* Filled by the ISA files; each starts from the level below and replaces
 * what it speeds up. Internal to src/backend/cpu. */
void cpu_kernels_fill_scalar(cpu_kernels *k);
void cpu_kernels_fill_avx2(cpu_kernels *k);
void cpu_kernels_fill_avx512(cpu_kernels *k);

#endif
