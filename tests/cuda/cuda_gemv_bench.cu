/*
 * cuda_gemv_bench.cu — times the CUDA backend's decode matrix-vector
 * product (cuda_gemv.cuh) in each of its variants, on one GPU, in the same
 * run (built by `make cuda`; not a `make test` program):
 *   f32       activations as f32 values (the default), rows per block chosen
 *   q8        LARDER_CUDA_MMVQ=1: dp4a on the activations' int8 quants
 *   q8 R=1|2|4  the same with the rows per block fixed (LARDER_CUDA_GEMV_R)
 *   q8 warp   LARDER_CUDA_GEMV_V=2: a warp per 1-2 rows, no barrier
 * on the Llama-3-8B Q4_K_M shapes at 1, 4 and 8 tokens. Each figure is the
 * median over repeats of 12 products in a row on the backend's stream
 * (events around them), rotating over 4 weight copies so a product does
 * not find its weights in L2; the activation rounding is done by the first
 * product and reused by the rest (the memo), so the figure is the GEMV.
 * GB/s: the weight's bytes once per product.
 *
 * Usage: cuda_gemv_bench [--quick]
 */
#include <algorithm>

#define BENCH_NAME "cuda_gemv_bench"
#include "cuda_bench_common.h"

static int g_reps = 21;

struct variant {
    const char *name, *env; /* "A=1 B=2" */
    backend *b;
};

static void bench_shape(std::vector<variant> &vs, uint32_t type, int64_t rows, int64_t cols) {
    larder_error err = {};
    enum { COPIES = 4, PER_RUN = 12 };
    size_t wbytes = 0;
    void *w[COPIES];
    for (int i = 0; i < COPIES; i++) w[i] = make_weight(type, rows, cols, &wbytes);
    const int64_t ns[3] = {1, 4, 8};
    for (int j = 0; j < 3; j++) {
        const int64_t n = ns[j];
        std::vector<float> hx((size_t)(n * cols));
        for (auto &v : hx) v = frand();
        float *x, *y;
        cu(cudaMalloc(&x, hx.size() * 4), "x"), cu(cudaMalloc(&y, (size_t)(n * rows) * 4), "y");
        cu(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice), "x upload");
        printf("%-5s %6lldx%-6lld n=%lld %6.1f MB:", tensor_type_get(type)->name, (long long)rows, (long long)cols,
               (long long)n, wbytes / 1e6);
        for (auto &v : vs) {
            cuda_backend *c = (cuda_backend *)v.b;
            cudaEvent_t a, b;
            cu(cudaEventCreate(&a), "event"), cu(cudaEventCreate(&b), "event");
            std::vector<float> us;
            for (int rep = 0; rep < g_reps + 2; rep++) {
                cu(cudaEventRecord(a, c->stream), "record");
                for (int i = 0; i < PER_RUN; i++)
                    if (backend_matmul(v.b, w[(rep * PER_RUN + i) % COPIES], type, rows, cols, x, n, y, &err))
                        die("matmul", &err);
                cu(cudaEventRecord(b, c->stream), "record");
                cu(cudaEventSynchronize(b), "sync");
                float ms;
                cu(cudaEventElapsedTime(&ms, a, b), "elapsed");
                if (rep >= 2) us.push_back(ms * 1000.0f / PER_RUN);
            }
            if (backend_sync(v.b, &err)) die("sync", &err);
            cudaEventDestroy(a), cudaEventDestroy(b);
            std::sort(us.begin(), us.end());
            const double t = us[us.size() / 2];
            printf(" | %s %.1f us %.0f GB/s", v.name, t, wbytes / t * 1e-3);
        }
        printf("\n");
        fflush(stdout);
        cudaFree(x), cudaFree(y);
    }
    for (int i = 0; i < COPIES; i++) cudaFree(w[i]);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_reps = 7;
        else {
            fprintf(stderr, "usage: cuda_gemv_bench [--quick]\n");
            return 2;
        }
    }
    std::vector<variant> vs = {
        {"f32", "", NULL},
        {"q8", "LARDER_CUDA_MMVQ=1", NULL},
        {"q8 R1", "LARDER_CUDA_MMVQ=1 LARDER_CUDA_GEMV_R=1", NULL},
        {"q8 R2", "LARDER_CUDA_MMVQ=1 LARDER_CUDA_GEMV_R=2", NULL},
        {"q8 R4", "LARDER_CUDA_MMVQ=1 LARDER_CUDA_GEMV_R=4", NULL},
        {"q8 warp", "LARDER_CUDA_MMVQ=1 LARDER_CUDA_GEMV_V=2", NULL},
    };
    for (auto &v : vs) v.b = bench_gpu(v.env);
    cudaDeviceProp prop;
    cu(cudaGetDeviceProperties(&prop, 0), "properties");
    printf("device: %s, %d SMs; median of %d runs of 12 products (us a product)\n", prop.name, prop.multiProcessorCount,
           g_reps);
    bench_shape(vs, TYPE_Q4_K, 4096, 4096);
    bench_shape(vs, TYPE_Q4_K, 1024, 4096);
    bench_shape(vs, TYPE_Q4_K, 14336, 4096);
    bench_shape(vs, TYPE_Q4_K, 4096, 14336);
    bench_shape(vs, TYPE_Q6_K, 4096, 14336);
    bench_shape(vs, TYPE_Q6_K, 128256, 4096);
    bench_shape(vs, TYPE_Q8_0, 4096, 4096);
    for (auto &v : vs) backend_free(v.b);
    return 0;
}
