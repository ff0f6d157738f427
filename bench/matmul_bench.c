/*
 * matmul_bench.c — micro-benchmark of the CPU matmul (src/backend/cpu/cpu_matmul.h)
 * at TinyLlama-1.1B shapes, against the machine's memory read bandwidth.
 *
 *   bandwidth   GB/s (1e9 bytes/s) of a plain parallel read of 512 MiB, on
 *               the same thread pool: the ceiling for decode.
 *   gemv        1 token: GB/s of weight bytes streamed. Each shape is
 *               replicated into enough copies (>= 256 MiB in all) that every
 *               call reads its weights from memory, not from cache, as in a
 *               real forward pass over 22 layers.
 *   prefill     512 tokens: GFLOP/s (2 * rows * cols * tokens per call).
 *
 * Weights are random block bytes with sane f16 scales (speed does not depend
 * on the values). Build and run with bench/matmul_bench.sh; LARDER_CPU=avx2
 * or scalar caps the kernel level.
 *
 * usage: matmul_bench [threads] [prefill_tokens]
 *
 * A/B mode for kernel work on a busy machine: MATMUL_BENCH_AB=VAR
 * matmul_bench [tokens] [rounds] times one thread's CPU time (not wall
 * time) for a prefill of each shape, alternately with VAR unset and set, and
 * keeps the best of each: add a temporary getenv(VAR) switch to the code
 * under test (the two-row dot2 and the GEMM were compared that way, see
 * bench/matmul_results.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_matmul.h"
#include "base/thread_pool.h"
#include "base/timing.h"
#include "tensor/dtype.h"

#define GEMV_SET_BYTES ((size_t)256 << 20)
#define BANDWIDTH_BYTES ((size_t)512 << 20)

static uint64_t g_rng = 88172645463325252ULL;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "matmul_bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Offset of each block's f16 scale fields, as in the test. */
static void fix_scales(uint32_t type, uint8_t *w, size_t bytes) {
    const tensor_type_traits *tr = tensor_type_get(type);
    int offs[2] = {-1, -1};
    switch (type) {
    case TYPE_Q8_0: case TYPE_Q4_0: offs[0] = 0; break;
    case TYPE_Q4_K: case TYPE_Q5_K: offs[0] = 0; offs[1] = 2; break;
    case TYPE_Q6_K: offs[0] = 208; break;
    default: break;
    }
    uint16_t h = f32_to_fp16(0.001f);
    if (tr->block_elems == 1) { /* float types: every element a sane value */
        for (size_t i = 0; i + 2 <= bytes; i += 2) memcpy(w + i, &h, 2);
        return;
    }
    for (size_t b = 0; b + tr->block_bytes <= bytes; b += tr->block_bytes)
        for (int k = 0; k < 2; k++)
            if (offs[k] >= 0) memcpy(w + b + (size_t)offs[k], &h, 2);
}

static uint8_t *random_weights(uint32_t type, size_t bytes) {
    uint8_t *w = xmalloc(bytes);
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t r = rnd();
        memcpy(w + i, &r, 8);
    }
    fix_scales(type, w, bytes);
    return w;
}

/* ---- bandwidth */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sums[64];
} bw_ctx;

static void bw_task(void *arg, int ti, int nt) {
    bw_ctx *c = arg;
    int64_t b, e;
    thread_pool_split((int64_t)c->n / 8, ti, nt, &b, &e);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = b * 8; i < e * 8; i += 8) { /* independent chains keep loads in flight */
        s0 += c->p[i] + c->p[i + 4];
        s1 += c->p[i + 1] + c->p[i + 5];
        s2 += c->p[i + 2] + c->p[i + 6];
        s3 += c->p[i + 3] + c->p[i + 7];
    }
    c->sums[ti & 63] = s0 + s1 + s2 + s3;
}

static double bench_bandwidth(thread_pool *pool) {
    bw_ctx c = {0};
    c.n = BANDWIDTH_BYTES / 8;
    uint64_t *p = xmalloc(BANDWIDTH_BYTES);
    for (size_t i = 0; i < c.n; i++) p[i] = i;
    c.p = p;
    double best = 0;
    for (int pass = 0; pass < 6; pass++) {
        int64_t t0 = timing_now_us();
        thread_pool_run(pool, bw_task, &c);
        double gbs = (double)BANDWIDTH_BYTES / ((double)(timing_now_us() - t0) * 1e3);
        if (gbs > best) best = gbs;
    }
    free(p);
    return best;
}

/* ---- gemv and prefill */

typedef struct shape {
    const char *name;
    int64_t rows, cols;
} shape;

static double bench_gemv(cpu_matmul_ctx *ctx, thread_pool *pool, uint32_t type, shape s, double *us_per_call) {
    size_t bytes = tensor_row_bytes(type, s.cols) * (size_t)s.rows;
    int copies = (int)(GEMV_SET_BYTES / bytes) + 1;
    uint8_t *w = random_weights(type, bytes * (size_t)copies);
    float *x = xmalloc((size_t)s.cols * sizeof *x), *y = xmalloc((size_t)s.rows * sizeof *y);
    for (int64_t i = 0; i < s.cols; i++) x[i] = (float)((int64_t)(rnd() % 2001) - 1000) / 1000.0f;
    larder_error err = {0};
    double best = 0;
    for (int round = 0; round < 5; round++) {
        int64_t t0 = timing_now_us();
        for (int c = 0; c < copies; c++)
            if (cpu_matmul(ctx, pool, w + (size_t)c * bytes, type, s.rows, s.cols, x, 1, y, &err) != 0) {
                fprintf(stderr, "matmul_bench: %s\n", err.message);
                exit(1);
            }
        double us = (double)(timing_now_us() - t0);
        double gbs = (double)bytes * copies / (us * 1e3);
        if (gbs > best) {
            best = gbs;
            *us_per_call = us / copies;
        }
    }
    free(w);
    free(x);
    free(y);
    return best;
}

static double bench_prefill(cpu_matmul_ctx *ctx, thread_pool *pool, uint32_t type, shape s, int64_t tokens,
                            double *ms_per_call) {
    size_t bytes = tensor_row_bytes(type, s.cols) * (size_t)s.rows;
    uint8_t *w = random_weights(type, bytes);
    float *x = xmalloc((size_t)(s.cols * tokens) * sizeof *x);
    float *y = xmalloc((size_t)(s.rows * tokens) * sizeof *y);
    for (int64_t i = 0; i < s.cols * tokens; i++) x[i] = (float)((int64_t)(rnd() % 2001) - 1000) / 1000.0f;
    larder_error err = {0};
    double best = 0;
    for (int round = 0; round < 3; round++) {
        int64_t t0 = timing_now_us();
        if (cpu_matmul(ctx, pool, w, type, s.rows, s.cols, x, tokens, y, &err) != 0) {
            fprintf(stderr, "matmul_bench: %s\n", err.message);
            exit(1);
        }
        double us = (double)(timing_now_us() - t0);
        double gflops = 2.0 * (double)s.rows * (double)s.cols * (double)tokens / (us * 1e3);
        if (gflops > best) {
            best = gflops;
            *ms_per_call = us / 1e3;
        }
    }
    free(w);
    free(x);
    free(y);
    return best;
}

/* Compute ceiling of one core: a GEMV over a 256-row matrix that stays in
 * L2, repeated; best of many. GB/s of weight bytes and ns per weight block. */
static void bench_in_cache(cpu_matmul_ctx *ctx, uint32_t type, int64_t cols, int64_t tokens) {
    const int64_t rows = 256;
    size_t bytes = tensor_row_bytes(type, cols) * (size_t)rows;
    uint8_t *w = random_weights(type, bytes);
    float *x = xmalloc((size_t)(cols * tokens) * sizeof *x), *y = xmalloc((size_t)(rows * tokens) * sizeof *y);
    for (int64_t i = 0; i < cols * tokens; i++) x[i] = (float)((int64_t)(rnd() % 2001) - 1000) / 1000.0f;
    larder_error err = {0};
    double best_us = 1e30;
    for (int round = 0; round < 200; round++) {
        int64_t t0 = timing_now_us();
        for (int k = 0; k < 4; k++) cpu_matmul(ctx, NULL, w, type, rows, cols, x, tokens, y, &err);
        double us = (double)(timing_now_us() - t0) / 4;
        if (us < best_us) best_us = us;
    }
    const tensor_type_traits *tr = tensor_type_get(type);
    double blocks = (double)rows * (double)(cols / tr->block_elems);
    printf("in-cache   %-5s 1 thread %lld tokens: %6.1f GB/s of weights, %6.2f ns per block, %6.1f GFLOP/s\n",
           tr->name, (long long)tokens, (double)bytes / (best_us * 1e3), best_us * 1e3 / blocks,
           2.0 * (double)rows * (double)cols * (double)tokens / (best_us * 1e3));
    free(w);
    free(x);
    free(y);
}

/* Seconds of this thread's CPU time. */
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A/B of kernel variants on a busy machine: one thread, no pool, the
 * prefill shapes with `tokens` tokens; each round runs variant A (env
 * variable `var` unset) then B (set), best thread CPU time of all rounds
 * each, so both meet the same load. MATMUL_BENCH_AB=VAR [tokens] [rounds]. */
static void bench_ab(const char *var, int64_t tokens, int rounds) {
    const struct { const char *name; int64_t rows, cols; } shapes[] = {
        {"2048x2048", 2048, 2048}, {"5632x2048", 5632, 2048}, {"2048x5632", 2048, 5632}};
    const uint32_t types[] = {TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q6_K};
    larder_error err = {0};
    cpu_matmul_ctx *ctx = cpu_matmul_ctx_create(&err);
    printf("# A/B by %s: 1 thread, %lld tokens, best CPU time of %d alternating rounds\n", var,
           (long long)tokens, rounds);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            uint32_t type = types[ti];
            int64_t rows = shapes[si].rows, cols = shapes[si].cols;
            size_t bytes = tensor_row_bytes(type, cols) * (size_t)rows;
            uint8_t *w = random_weights(type, bytes);
            float *x = xmalloc((size_t)(cols * tokens) * sizeof *x);
            float *y = xmalloc((size_t)(rows * tokens) * sizeof *y);
            for (int64_t i = 0; i < cols * tokens; i++) x[i] = (float)((int64_t)(rnd() % 2001) - 1000) / 1000.0f;
            double best[2] = {1e30, 1e30};
            for (int r = 0; r < rounds; r++)
                for (int v = 0; v < 2; v++) {
                    if (v) setenv(var, "1", 1);
                    else unsetenv(var);
                    double t0 = thread_cpu_s();
                    cpu_matmul(ctx, NULL, w, type, rows, cols, x, tokens, y, &err);
                    double dt = thread_cpu_s() - t0;
                    if (dt < best[v]) best[v] = dt;
                }
            unsetenv(var);
            double flop = 2.0 * (double)rows * (double)cols * (double)tokens;
            printf("%-5s %-10s A %6.1f GFLOP/s  B (%s) %6.1f GFLOP/s  A/B %.2f\n", tensor_type_get(type)->name,
                   shapes[si].name, flop / best[0] * 1e-9, var, flop / best[1] * 1e-9, best[1] / best[0]);
            free(w);
            free(x);
            free(y);
        }
    cpu_matmul_ctx_free(ctx);
}

int main(int argc, char **argv) {
    if (getenv("MATMUL_BENCH_AB")) {
        bench_ab(getenv("MATMUL_BENCH_AB"), argc > 1 ? atoll(argv[1]) : 64, argc > 2 ? atoi(argv[2]) : 20);
        return 0;
    }
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int64_t tokens = argc > 2 ? atoll(argv[2]) : 512;
    if (threads < 1 || tokens < 1) {
        fprintf(stderr, "usage: matmul_bench [threads] [prefill_tokens]\n");
        return 1;
    }
    larder_error err = {0};
    thread_pool *pool = thread_pool_create(threads, &err);
    cpu_matmul_ctx *ctx = cpu_matmul_ctx_create(&err);
    if (!pool || !ctx) {
        fprintf(stderr, "matmul_bench: %s\n", err.message);
        return 1;
    }
    printf("# kernels: %s, %d threads\n", cpu_level_name(cpu_level_active()), threads);
    const uint32_t ctypes[] = {TYPE_Q4_K, TYPE_Q8_0, TYPE_Q6_K, TYPE_Q5_K, TYPE_Q4_0, TYPE_F16};
    for (size_t t = 0; t < sizeof ctypes / sizeof ctypes[0]; t++) {
        bench_in_cache(ctx, ctypes[t], 2048, 1);
        bench_in_cache(ctx, ctypes[t], 2048, 4);
    }
    if (getenv("MATMUL_BENCH_CACHE_ONLY")) return 0;
    double bw = bench_bandwidth(pool);
    printf("bandwidth  read %.1f GB/s\n", bw);

    const shape shapes[] = {
        {"attn_q/o 2048x2048", 2048, 2048},
        {"attn_k/v 256x2048", 256, 2048},
        {"ffn_gate/up 5632x2048", 5632, 2048},
        {"ffn_down 2048x5632", 2048, 5632},
        {"output 32000x2048", 32000, 2048},
    };
    const uint32_t types[] = {TYPE_Q4_K, TYPE_Q8_0, TYPE_Q6_K, TYPE_F16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            double us = 0;
            double gbs = bench_gemv(ctx, pool, types[t], shapes[s], &us);
            printf("gemv       %-5s %-24s %6.1f GB/s (%.0f%% of bandwidth)  %8.1f us/call\n",
                   tensor_type_get(types[t])->name, shapes[s].name, gbs, 100.0 * gbs / bw, us);
        }
    const uint32_t ptypes[] = {TYPE_Q4_K, TYPE_Q8_0, TYPE_Q6_K};
    for (size_t t = 0; t < sizeof ptypes / sizeof ptypes[0]; t++)
        for (size_t s = 0; s < 4; s++) {
            double ms = 0;
            double gf = bench_prefill(ctx, pool, ptypes[t], shapes[s], tokens, &ms);
            printf("prefill    %-5s %-24s %6.1f GFLOP/s  %lld tokens  %8.2f ms/call\n",
                   tensor_type_get(ptypes[t])->name, shapes[s].name, gf, (long long)tokens, ms);
        }
    cpu_matmul_ctx_free(ctx);
    thread_pool_destroy(pool);
    return 0;
}
