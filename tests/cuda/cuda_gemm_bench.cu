/*
 * cuda_gemm_bench.cu — times the CUDA backend's prefill matrix products,
 * the old path (weights dequantised to f16 slabs in device memory, then a
 * wmma GEMM: LARDER_CUDA_GEMM=2) against the new one (cuda_gemm.cu: the
 * quantized weights unpacked in shared memory) in the same run, on one GPU
 * (built by `make cuda`; not a `make test` program).
 *
 *   dense: the Llama-3-8B Q4_K_M shapes (rows x cols) 4096x4096,
 *     1024x4096, 14336x4096, 4096x14336 (Q4_K and Q6_K), 128256x4096 (Q6_K)
 *   moe: the Qwen3-30B-A3B expert feed-forward (128 experts, dim 2048,
 *     ff 768, top 8, Q4_K gate/up and Q6_K down), routed by random logits
 * at n = 64, 512, 4096 tokens. Each figure is the median of many runs timed
 * with CUDA events on the backend's stream, rotating over 3 weight copies
 * and 3 inputs so a run does not find the previous run's bytes in L2.
 * Prints TFLOP/s (2·n·rows·cols a matrix) and GB/s of weight bytes (the
 * matrix's bytes once; for the experts, the bytes of the experts chosen).
 *
 *   mmq: cuda_gemm.cu's f16 path against cuda_mmq.cu's integer one
 *     (LARDER_CUDA_MMQ=1) for Q4_K, Q6_K (Q5_K, Q8_0) at 4096x4096 and
 *     14336x4096, n = 16, 64, 512, 4096 (us, TFLOP/s, GB/s, ratio)
 *
 * Usage: cuda_gemm_bench [--quick] [--tiles] [--mmq]   (--quick: fewer
 * repeats; --tiles: also each tile shape of the new path and of the MMQ,
 * forced; --mmq: only the mmq comparison)
 */
#include <math.h>

#include <algorithm>

#define BENCH_NAME "cuda_gemm_bench"
#include "cuda_bench_common.h"

static int g_reps = 15;
#define N_TILES 6
static backend *g_tiles[N_TILES]; /* --tiles: the new path with each tile forced (LARDER_CUDA_GEMM=3..8) */
static const char *g_tile_names[N_TILES] = {"64x128", "64x64", "64x32", "128x64", "128x128/k128", "64x128/k128"};
static backend *g_mmq_tiles[3]; /* --tiles: the MMQ with each tile forced (LARDER_CUDA_MMQ_TILE=1..3) */
static const char *g_mmq_tile_names[3] = {"64x128", "64x64", "128x128"};

static backend *make_gpu(const char *gemm) {
    const std::string env = std::string("LARDER_CUDA_GEMM=") + gemm;
    return bench_gpu(env.c_str());
}

static float *make_input(size_t n) {
    std::vector<float> h(n);
    for (auto &v : h) v = frand();
    float *d;
    cu(cudaMalloc(&d, n * 4), "input");
    cu(cudaMemcpy(d, h.data(), n * 4, cudaMemcpyHostToDevice), "input upload");
    return d;
}

/* Median ms of fn(i) over repeats (after 2 warm-ups), timed by events on stream s. */
template <typename F> static double time_median(cudaStream_t s, F fn) {
    cudaEvent_t a, b;
    cu(cudaEventCreate(&a), "event"), cu(cudaEventCreate(&b), "event");
    for (int i = 0; i < 2; i++) fn(i);
    cu(cudaStreamSynchronize(s), "sync");
    std::vector<double> ms;
    double total = 0;
    for (int i = 0; i < g_reps && (i < 5 || total < 3000.0); i++) {
        cu(cudaEventRecord(a, s), "record");
        fn(i);
        cu(cudaEventRecord(b, s), "record");
        cu(cudaEventSynchronize(b), "sync");
        float t;
        cu(cudaEventElapsedTime(&t, a, b), "elapsed");
        ms.push_back(t);
        total += t;
    }
    cudaEventDestroy(a), cudaEventDestroy(b);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

static void bench_dense(backend *old_b, backend *new_b, uint32_t type, int64_t rows, int64_t cols) {
    larder_error err = {};
    size_t wbytes = 0;
    void *w[3];
    for (int i = 0; i < 3; i++) w[i] = make_weight(type, rows, cols, &wbytes);
    const int64_t ns[3] = {64, 512, 4096};
    for (int j = 0; j < 3; j++) {
        const int64_t n = ns[j];
        float *x[3], *y;
        for (int i = 0; i < 3; i++) x[i] = make_input((size_t)(n * cols));
        cu(cudaMalloc(&y, (size_t)(n * rows) * 4), "output");
        double t[2];
        backend *bs[2] = {old_b, new_b};
        for (int v = 0; v < 2; v++) {
            cuda_backend *c = (cuda_backend *)bs[v];
            t[v] = time_median(c->stream, [&](int i) {
                if (backend_matmul(bs[v], w[i % 3], type, rows, cols, x[i % 3], n, y, &err)) die("matmul", &err);
            });
            if (backend_sync(bs[v], &err)) die("sync", &err);
        }
        const double flop = 2.0 * (double)n * (double)rows * (double)cols;
        if (g_tiles[0]) {
            printf("  tiles %-5s %6lldx%-6lld n=%-5lld", tensor_type_get(type)->name, (long long)rows, (long long)cols,
                   (long long)n);
            for (int v = 0; v < N_TILES; v++) {
                cuda_backend *c = (cuda_backend *)g_tiles[v];
                double tv = time_median(c->stream, [&](int i) {
                    if (backend_matmul(g_tiles[v], w[i % 3], type, rows, cols, x[i % 3], n, y, &err)) die("matmul", &err);
                });
                if (backend_sync(g_tiles[v], &err)) die("sync", &err);
                printf(" | %s %.3f ms %.0f TF", g_tile_names[v], tv, flop / tv * 1e-9);
            }
            printf("\n");
        }
        printf("dense %-5s %6lldx%-6lld n=%-5lld old %8.3f ms %6.1f TFLOP/s %7.1f GB/s | new %8.3f ms %6.1f TFLOP/s "
               "%7.1f GB/s | %.2fx\n",
               tensor_type_get(type)->name, (long long)rows, (long long)cols, (long long)n, t[0],
               flop / t[0] * 1e-9, wbytes / t[0] * 1e-6, t[1], flop / t[1] * 1e-9, wbytes / t[1] * 1e-6, t[0] / t[1]);
        fflush(stdout);
        for (int i = 0; i < 3; i++) cudaFree(x[i]);
        cudaFree(y);
    }
    for (int i = 0; i < 3; i++) cudaFree(w[i]);
}

/* cuda_gemm.cu's f16 path (gemm_b) against the integer MMQ (mmq_b:
 * LARDER_CUDA_MMQ=1) on one weight, n = 16, 64, 512, 4096; both include
 * their activation rounding. */
static void bench_mmq(backend *gemm_b, backend *mmq_b, uint32_t type, int64_t rows, int64_t cols) {
    larder_error err = {};
    size_t wbytes = 0;
    void *w[3];
    for (int i = 0; i < 3; i++) w[i] = make_weight(type, rows, cols, &wbytes);
    const int64_t ns[4] = {16, 64, 512, 4096};
    for (int j = 0; j < 4; j++) {
        const int64_t n = ns[j];
        float *x[3], *y;
        for (int i = 0; i < 3; i++) x[i] = make_input((size_t)(n * cols));
        cu(cudaMalloc(&y, (size_t)(n * rows) * 4), "output");
        double t[2];
        backend *bs[2] = {gemm_b, mmq_b};
        for (int v = 0; v < 2; v++) {
            cuda_backend *c = (cuda_backend *)bs[v];
            t[v] = time_median(c->stream, [&](int i) {
                if (backend_matmul(bs[v], w[i % 3], type, rows, cols, x[i % 3], n, y, &err)) die("matmul", &err);
            });
            if (backend_sync(bs[v], &err)) die("sync", &err);
        }
        const double flop = 2.0 * (double)n * (double)rows * (double)cols;
        printf("mmq   %-5s %6lldx%-6lld n=%-5lld gemm %9.1f us %6.1f TFLOP/s %7.1f GB/s | mmq %9.1f us %6.1f TFLOP/s "
               "%7.1f GB/s | mmq %.2fx",
               tensor_type_get(type)->name, (long long)rows, (long long)cols, (long long)n, t[0] * 1e3,
               flop / t[0] * 1e-9, wbytes / t[0] * 1e-6, t[1] * 1e3, flop / t[1] * 1e-9, wbytes / t[1] * 1e-6,
               t[0] / t[1]);
        for (int v = 0; v < 3 && g_mmq_tiles[0]; v++) { /* --tiles: each MMQ tile forced */
            cuda_backend *c = (cuda_backend *)g_mmq_tiles[v];
            const double tv = time_median(c->stream, [&](int i) {
                if (backend_matmul(g_mmq_tiles[v], w[i % 3], type, rows, cols, x[i % 3], n, y, &err))
                    die("matmul", &err);
            });
            if (backend_sync(g_mmq_tiles[v], &err)) die("sync", &err);
            printf(" | %s %.1f us", g_mmq_tile_names[v], tv * 1e3);
        }
        printf("\n");
        fflush(stdout);
        for (int i = 0; i < 3; i++) cudaFree(x[i]);
        cudaFree(y);
    }
    for (int i = 0; i < 3; i++) cudaFree(w[i]);
}

static void bench_mmq_all(backend *gemm_b, backend *mmq_b) {
    bench_mmq(gemm_b, mmq_b, TYPE_Q4_K, 4096, 4096);
    bench_mmq(gemm_b, mmq_b, TYPE_Q4_K, 14336, 4096);
    bench_mmq(gemm_b, mmq_b, TYPE_Q6_K, 4096, 4096);
    bench_mmq(gemm_b, mmq_b, TYPE_Q6_K, 14336, 4096);
    bench_mmq(gemm_b, mmq_b, TYPE_Q5_K, 4096, 4096);
    bench_mmq(gemm_b, mmq_b, TYPE_Q8_0, 4096, 4096);
}

static void bench_moe(backend *old_b, backend *new_b) {
    larder_error err = {};
    const int32_t n_expert = 128, k = 8;
    const int64_t dim = 2048, ff = 768;
    size_t gb, ub, db;
    void *gate = make_weight(TYPE_Q4_K, ff * n_expert, dim, &gb), *up = make_weight(TYPE_Q4_K, ff * n_expert, dim, &ub),
         *down = make_weight(TYPE_Q6_K, dim * n_expert, ff, &db);
    backend_moe_experts ex = {gate, up, down, TYPE_Q4_K, TYPE_Q4_K, TYPE_Q6_K, n_expert, dim, ff};
    const int64_t ns[3] = {64, 512, 4096};
    for (int j = 0; j < 3; j++) {
        const int64_t n = ns[j];
        float *x[3], *logits = make_input((size_t)(n * n_expert)), *wts, *out;
        for (int i = 0; i < 3; i++) x[i] = make_input((size_t)(n * dim));
        int32_t *ids;
        cu(cudaMalloc(&ids, (size_t)(n * k) * 4), "ids");
        cu(cudaMalloc(&wts, (size_t)(n * k) * 4), "weights");
        cu(cudaMalloc(&out, (size_t)(n * dim) * 4), "out");
        if (backend_moe_route(new_b, logits, NULL, n, n_expert, k, BACKEND_MOE_SOFTMAX, ids, wts, &err) ||
            backend_sync(new_b, &err))
            die("route", &err);
        std::vector<int32_t> h((size_t)(n * k));
        cu(cudaMemcpy(h.data(), ids, h.size() * 4, cudaMemcpyDeviceToHost), "ids");
        std::vector<char> used(n_expert, 0);
        for (int32_t e : h) used[e] = 1;
        int n_used = 0;
        for (char u : used) n_used += u;
        const double wbytes = (double)n_used * (double)(gb + ub + db) / n_expert;
        double t[2];
        backend *bs[2] = {old_b, new_b};
        for (int v = 0; v < 2; v++) {
            cuda_backend *c = (cuda_backend *)bs[v];
            t[v] = time_median(c->stream, [&](int i) {
                if (backend_moe_ffn(bs[v], &ex, x[i % 3], ids, wts, n, k, out, &err)) die("moe_ffn", &err);
            });
            if (backend_sync(bs[v], &err)) die("sync", &err);
        }
        const double flop = 3.0 * 2.0 * (double)(n * k) * (double)dim * (double)ff;
        printf("moe   q4_k/q6_k 128x(768x2048) top8 n=%-5lld (%3d experts) old %8.3f ms %6.1f TFLOP/s %7.1f GB/s | new "
               "%8.3f ms %6.1f TFLOP/s %7.1f GB/s | %.2fx\n",
               (long long)n, n_used, t[0], flop / t[0] * 1e-9, wbytes / t[0] * 1e-6, t[1], flop / t[1] * 1e-9,
               wbytes / t[1] * 1e-6, t[0] / t[1]);
        fflush(stdout);
        for (int i = 0; i < 3; i++) cudaFree(x[i]);
        cudaFree(logits), cudaFree(ids), cudaFree(wts), cudaFree(out);
    }
    cudaFree(gate), cudaFree(up), cudaFree(down);
}

int main(int argc, char **argv) {
    bool tiles = false, mmq_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_reps = 7;
        else if (!strcmp(argv[i], "--tiles")) tiles = true;
        else if (!strcmp(argv[i], "--mmq")) mmq_only = true;
        else {
            fprintf(stderr, "usage: cuda_gemm_bench [--quick] [--tiles] [--mmq]\n");
            return 2;
        }
    }
    setenv("LARDER_CUDA_MMQ", "0", 1); /* old and new: the f16 products; the MMQ backends name it */
    backend *old_b = make_gpu("2"), *new_b = make_gpu("0");
    setenv("LARDER_CUDA_MMQ", "1", 1);
    backend *mmq_b = make_gpu("0");
    if (tiles)
        for (int i = 0; i < 3; i++) {
            char v[4];
            snprintf(v, sizeof v, "%d", i + 1);
            setenv("LARDER_CUDA_MMQ_TILE", v, 1);
            g_mmq_tiles[i] = make_gpu("0");
        }
    setenv("LARDER_CUDA_MMQ", "0", 1), unsetenv("LARDER_CUDA_MMQ_TILE");
    if (mmq_only) {
        cudaDeviceProp prop;
        cu(cudaGetDeviceProperties(&prop, 0), "properties");
        printf("device: %s, %d SMs; gemm = cuda_gemm.cu (f16), mmq = cuda_mmq.cu (int8); median of up to %d runs\n",
               prop.name, prop.multiProcessorCount, g_reps);
        bench_mmq_all(new_b, mmq_b);
        for (int i = 0; i < 3; i++)
            if (g_mmq_tiles[i]) backend_free(g_mmq_tiles[i]);
        backend_free(mmq_b), backend_free(old_b), backend_free(new_b);
        return 0;
    }
    if (tiles) {
        const char *v[N_TILES] = {"3", "4", "5", "6", "7", "8"};
        for (int i = 0; i < N_TILES; i++) g_tiles[i] = make_gpu(v[i]);
    }
    cudaDeviceProp prop;
    cu(cudaGetDeviceProperties(&prop, 0), "properties");
    printf("device: %s, %d SMs; old = dequantised f16 slabs + wmma GEMM, new = cuda_gemm.cu; median of up to %d runs\n",
           prop.name, prop.multiProcessorCount, g_reps);
    bench_dense(old_b, new_b, TYPE_Q4_K, 4096, 4096);
    bench_dense(old_b, new_b, TYPE_Q4_K, 1024, 4096);
    bench_dense(old_b, new_b, TYPE_Q4_K, 14336, 4096);
    bench_dense(old_b, new_b, TYPE_Q4_K, 4096, 14336);
    bench_dense(old_b, new_b, TYPE_Q6_K, 4096, 14336);
    bench_dense(old_b, new_b, TYPE_Q6_K, 128256, 4096);
    bench_moe(old_b, new_b);
    bench_mmq_all(new_b, mmq_b);
    for (int i = 0; i < 3; i++)
        if (g_mmq_tiles[i]) backend_free(g_mmq_tiles[i]);
    backend_free(mmq_b);
    for (int i = 0; i < N_TILES; i++)
        if (g_tiles[i]) backend_free(g_tiles[i]);
    backend_free(old_b), backend_free(new_b);
    return 0;
}
