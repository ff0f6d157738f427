/*
 * cpu_kernels.h — the table of kernels for one CPU level (scalar; AVX2,
 * AVX-512 on x86-64; NEON, dotprod, i8mm on AArch64): dot products,
 * activation quantization, the prefill GEMM and the vector ops of
 * cpu_ops.h. The one place where a level's kernels are chosen.
 *
 * Key idea: one micro-kernel shape serves decode and prefill. A dot kernel
 * multiplies ONE weight row with up to tile_tokens[type] activation rows,
 * unpacking each weight block once and reusing it for every token; decode
 * calls it with n_tok = 1, prefill with tiles of tile_tokens[type] tokens
 * (4, or 8 for Q4_K with AVX-512, whose 32 registers hold 8 tokens' sums).
 * Prefill of the 32-element signed types (Q8_0, Q4_0, Q5_0) goes instead
 * through a GEMM kernel on activations packed for it (q8 tiles, below).
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
#include "backend/cpu/cpu_ops.h"
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

/* n floats x -> one activation row at dst (tensor_row_bytes(type, n) bytes). */
typedef void (*cpu_quantize_fn)(const float *x, void *dst, int64_t n);

/* ---- the prefill GEMM of the 32-element signed types (Q8_0, Q4_0, Q5_0)
 *
 * Prefill multiplies every weight row with many tokens, so the activations
 * are packed once per matmul into "q8 tiles" laid out for the kernel: the
 * Q8_0 quantization of tile_tokens tokens side by side per 32-element block,
 * their f16 scales already widened to f32, plus whatever per-block sums the
 * kernel needs. The layout belongs to the kernel (x86/cpu_dot_x86.inc and arm/cpu_dot_arm.inc describe
 * each); callers only size it: a tile of a row of n elements (n a multiple
 * of 32) is n / 32 * tile_block_bytes bytes, and the tiles of a batch follow
 * one another. The quants are exactly those of quantize_row_activation
 * (TYPE_Q8_0, ...); the unused slots of a partial last tile must be zero. */

/* Quantizes one token (x, n floats) into slot t of a q8 tile. */
typedef void (*cpu_tile_pack_fn)(const float *x, int64_t n, int t, void *tile);

/* y[t * y_stride + r] = sum_i W_r[i] * a_t[i] for rows r < n_rows (row r at
 * w + r * w_row_bytes) and tokens t < n_tokens (n_tokens >= 1) held in
 * consecutive q8 tiles; the same values as the dot kernel up to float
 * summation order. work: work_bytes_per_row_block * n_rows * (n / 32) bytes
 * of scratch, 64-byte aligned, for the kernel's use. */
typedef void (*cpu_gemm_fn)(int64_t n, const void *w, size_t w_row_bytes, int64_t n_rows,
                            const void *tiles, int64_t n_tokens, float *y, int64_t y_stride, void *work);

typedef struct cpu_gemm_kernel {
    cpu_gemm_fn gemm;           /* NULL: this type has no GEMM (prefill uses dot tiles) */
    cpu_tile_pack_fn pack;      /* its tiles' packer */
    int tile_tokens;            /* tokens per tile */
    size_t tile_block_bytes;    /* tile bytes per 32-element block */
    size_t work_bytes_per_row_block;
} cpu_gemm_kernel;

typedef struct cpu_kernels {
    cpu_level level;                       /* the level these kernels need */
    cpu_dot_fn dot[TYPE_COUNT_MAX];        /* by weight type; NULL: no dot product */
    int tile_tokens[TYPE_COUNT_MAX];       /* most tokens dot[type] takes in one call */
    cpu_quantize_fn quantize[TYPE_COUNT_MAX]; /* by activation type (F32 Q8_0 Q8_1 Q8_K) */
    cpu_gemm_kernel gemm[TYPE_COUNT_MAX];  /* prefill on q8 tiles by weight type */
    const cpu_vec_kernels *vec;            /* attention, softmax and f16 row kernels */
} cpu_kernels;

/* The kernels of a level. A level the CPU lacks gives the highest level
 * below it in its chain that the CPU has (so AVX512 on an AVX2 CPU gives
 * the AVX2 table, AVX2 on ARM the scalar one); check ->level. Tables are
 * built once and never change. */
const cpu_kernels *cpu_kernels_for(cpu_level level);

/* The kernels of cpu_level_active(). */
const cpu_kernels *cpu_kernels_active(void);

/* Filled by the ISA files (one folder per instruction-set family: x86/ for
 * AVX2 / AVX-512, arm/ for NEON / dotprod / i8mm; only the target's family
 * is compiled); each starts from the level below and replaces what it
 * speeds up. Internal to src/backend/cpu. */
void cpu_kernels_fill_scalar(cpu_kernels *k);
void cpu_kernels_fill_avx2(cpu_kernels *k);
void cpu_kernels_fill_avx512(cpu_kernels *k);
void cpu_kernels_fill_neon(cpu_kernels *k);
void cpu_kernels_fill_dotprod(cpu_kernels *k);
void cpu_kernels_fill_i8mm(cpu_kernels *k);

#endif
