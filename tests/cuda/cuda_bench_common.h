/*
 * cuda_bench_common.h — what the CUDA microbenchmarks (cuda_gemm_bench,
 * cuda_gemv_bench, cuda_attn_bench) share: fatal errors, a seeded random
 * stream, a CUDA backend made with environment settings, and a quantized
 * weight in device memory. Header-only (each benchmark is one .cu file);
 * BENCH_NAME names the program in error messages.
 */
#ifndef LARDER_TESTS_CUDA_CUDA_BENCH_COMMON_H
#define LARDER_TESTS_CUDA_CUDA_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "backend/cuda/cuda_internal.h"

extern "C" {
#include "tensor/quant.h"
}

#ifndef BENCH_NAME
#error "define BENCH_NAME before including cuda_bench_common.h"
#endif

static inline void die(const char *what, const larder_error *err) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, err->message);
    exit(2);
}

static inline void cu(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
        fprintf(stderr, BENCH_NAME ": %s: %s\n", what, cudaGetErrorString(e));
        exit(2);
    }
}

/* xorshift64: uniform in [-1, 1) */
static uint64_t rng = 0x2545F4914F6CDD1Dull;
static inline float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* A CUDA backend on device 0 made with the settings in env ("A=1 B=2",
 * space-separated; each restored to unset afterwards). */
static inline backend *bench_gpu(const char *env) {
    larder_error err = {};
    backend_options opt = {};
    opt.n_threads = 1, opt.device = 0;
    std::vector<std::string> names;
    std::string all(env);
    size_t at = 0;
    while (at < all.size()) {
        size_t end = all.find(' ', at);
        if (end == std::string::npos) end = all.size();
        std::string kv = all.substr(at, end - at);
        size_t eq = kv.find('=');
        if (eq != std::string::npos) {
            setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
            names.push_back(kv.substr(0, eq));
        }
        at = end + 1;
    }
    backend *b = backend_create("cuda", &opt, &err);
    for (auto &n : names) unsetenv(n.c_str());
    if (!b) die("cuda backend", &err);
    return b;
}

/* A weight of rows x cols of `type` in device memory (random values; 64
 * distinct rows quantized once and repeated, so large matrices upload
 * fast; the bytes are read from memory all the same). */
static inline void *make_weight(uint32_t type, int64_t rows, int64_t cols, size_t *bytes_out) {
    size_t rb = tensor_row_bytes(type, cols);
    const int64_t distinct = 64;
    std::vector<float> f((size_t)cols);
    std::vector<uint8_t> host(rb * (size_t)distinct);
    for (int64_t r = 0; r < distinct; r++) {
        for (auto &v : f) v = frand();
        if (quantize_row(type, f.data(), host.data() + (size_t)r * rb, cols)) {
            fprintf(stderr, BENCH_NAME ": cannot quantize type %u\n", type);
            exit(2);
        }
    }
    std::vector<uint8_t> all(rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) memcpy(all.data() + (size_t)r * rb, host.data() + (size_t)(r % distinct) * rb, rb);
    void *d;
    cu(cudaMalloc(&d, all.size()), "weight");
    cu(cudaMemcpy(d, all.data(), all.size(), cudaMemcpyHostToDevice), "weight upload");
    *bytes_out = all.size();
    return d;
}

#endif
