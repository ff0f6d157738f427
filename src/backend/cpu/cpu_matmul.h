/*
 * cpu_matmul.h — the one matrix-multiplication entry point of the CPU
 * backend: y = x · W^T with quantized (or float) weights, on a thread pool.
 *
 *   y[t][r] = sum_k W[r][k] * x[t][k]     t < n_tokens, r < rows, k < cols
 *
 * W is row-major as stored in a GGUF file: `rows` rows of
 * tensor_row_bytes(wtype, cols) bytes. x is (n_tokens, cols) f32 and y is
 * (n_tokens, rows) f32, both dense.
 *
 * How: x is quantized once to the weight type's activation type
 * (quant_vec_dot_type: Q8_0 / Q8_1 / Q8_K; f32 weights use x as is) into a
 * scratch buffer owned by the ctx, then the rows are split evenly over the
 * threads. Decode (n_tokens == 1) streams each weight row once (a GEMV bound
 * by memory bandwidth). Prefill walks a block of rows small enough to stay
 * in the core's L2 cache across every tile of tokens, and each kernel call
 * unpacks a weight block once for the whole tile, so the weights are read
 * from memory once per matmul and unpacked once per tile (for Q8_0, Q4_0 and
 * Q5_0 on x86 and ARM the tile is a q8 tile of 8 tokens and the kernel a GEMM that
 * takes the whole row block, see cpu_kernels.h).
 * A matmul with less than 64 KiB of weight work runs on the caller alone
 * (waking the pool would cost more).
 *
 * Results do not depend on the thread count (each row is computed the same
 * way whichever thread takes it); a token's results may differ in the last
 * bits between a batch of 1 (decode kernel) and a larger batch.
 * Kernels: those of cpu_level_active() (LARDER_CPU caps them). A ctx is used
 * by one thread at a time (the engine thread); it may be shared by every
 * matmul of a model.
 */
#ifndef LARDER_BACKEND_CPU_MATMUL_H
#define LARDER_BACKEND_CPU_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/error.h"
#include "base/thread_pool.h"

/* Largest activation scratch a ctx may hold, in bytes (quantized x of one
 * call; 8-bit rows are ~1.1 bytes per element, so this is far above any
 * real batch: 32k tokens x 16k columns). A bound so a corrupt shape fails
 * clearly instead of asking the OS for terabytes. */
#define CPU_MATMUL_MAX_SCRATCH_BYTES ((size_t)1 << 33)

/* Most matrices one cpu_matmul_multi call takes. */
#define CPU_MATMUL_MAX_MATS BACKEND_MATMUL_MAX_MATS

typedef struct cpu_matmul_ctx cpu_matmul_ctx;

/* A ctx with an empty scratch buffer. NULL (err set) if out of memory. */
cpu_matmul_ctx *cpu_matmul_ctx_create(larder_error *err);
void cpu_matmul_ctx_free(cpu_matmul_ctx *ctx);

/* y = x · W^T as described above. pool may be NULL (runs on the caller).
 * Returns 0, or -1 with err set: ERR_UNSUPPORTED for a weight type without
 * a dot product, ERR_INVALID for a negative size or cols not a multiple of
 * the type's block size, ERR_NOMEM / ERR_LIMIT when the scratch cannot grow. */
int cpu_matmul(cpu_matmul_ctx *ctx, thread_pool *pool, const void *w, uint32_t wtype, int64_t rows,
               int64_t cols, const float *x, int64_t n_tokens, float *y, larder_error *err);

/* Several matrices sharing the same input x (q, k, v; gate, up): x is
 * quantized once per distinct activation type and all rows are computed in
 * one pass of the pool (one dispatch instead of n_mats). Same results as
 * n_mats cpu_matmul calls, bit for bit. 1 <= n_mats <= CPU_MATMUL_MAX_MATS. Each
 * matrix is backend.h's backend_matmul_weight (the backend passes its
 * callers' array through). */
int cpu_matmul_multi(cpu_matmul_ctx *ctx, thread_pool *pool, const backend_matmul_weight *mats,
                     int n_mats, int64_t cols, const float *x, int64_t n_tokens, larder_error *err);

/* Alignment of a part's first activation row (cpu_matmul_part.t0) that lets
 * prefill use the GEMM kernels' q8 tiles (a multiple of every tile size);
 * a part at another row uses the dot kernels. */
#define CPU_MATMUL_PART_ALIGN 8

/* One matrix over a run of the activation rows:
 *     y (n_tokens, rows) = x[t0 .. t0 + n_tokens) · Wᵀ */
typedef struct cpu_matmul_part {
    const void *w;          /* (rows, cols) of wtype, row-major */
    uint32_t wtype;
    int64_t rows;
    int64_t t0, n_tokens;   /* the run of x's rows */
    float *y;
} cpu_matmul_part;

/* Many matrices over runs of one activation matrix x (n_x_rows, cols), in
 * one pass of the pool: x is quantized once, the work (rows x tokens) of all
 * parts is split evenly over the threads. This is how a mixture-of-experts
 * layer runs each chosen expert once over the rows routed to it (x holds
 * them gathered expert by expert, each run starting at a multiple of
 * CPU_MATMUL_PART_ALIGN, the rows between runs zero). Each part's results
 * are those of cpu_matmul over its run, bit for bit. n_parts >= 1. */
int cpu_matmul_parts(cpu_matmul_ctx *ctx, thread_pool *pool, const cpu_matmul_part *parts, int n_parts,
                     int64_t cols, const float *x, int64_t n_x_rows, larder_error *err);

#endif
