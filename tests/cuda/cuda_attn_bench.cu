/*
 * cuda_attn_bench.cu — times the CUDA backend's attention op, the scalar
 * kernel (cuda_attention.cu) against the tensor-core kernel
 * (cuda_flash_attn.cu, a backend made with LARDER_CUDA_FA=1) in the same
 * run, on one GPU (built by `make cuda`; not a `make test` program):
 *
 *   prefill: one sequence of 4096 tokens attending causally to itself
 *     (Llama-3-8B: 32 query heads, 8 KV heads, head size 128, f16 KV,
 *     pages of 16 tokens), one layer
 *   decode: a step of 64 sequences, one token each, 640 tokens of context
 *     each (same shape)
 *   and, for reference: prefill of 512 tokens, a one-sequence decode step
 *     at 4096 tokens of context (split-KV), an 8-sequence step at 640
 *
 * Each figure is the median of several runs timed with CUDA events on the
 * backend's stream. Prints µs per call for each kernel, the ratio
 * scalar / flash, TFLOP/s of the prefill (4·rows·keys·D over the causal
 * half) and the largest difference between the two outputs (relative to
 * the output's rms) as a sanity check, and the flash kernel's time without
 * cp.async (LARDER_CUDA_FA=2).
 *
 * Usage: cuda_attn_bench [--quick]
 */
#include <math.h>

#include <algorithm>

#define BENCH_NAME "cuda_attn_bench"
#include "cuda_bench_common.h"

static int g_reps = 9;

/* fa: the LARDER_CUDA_FA setting ("0": the scalar kernel) */
static backend *make_gpu(const char *fa) {
    const std::string env = std::string("LARDER_CUDA_FA=") + fa;
    return bench_gpu(env.c_str());
}

static float *upload(backend *b, const std::vector<float> &h) {
    larder_error err = {};
    float *p = (float *)backend_buffer_alloc(b, h.size() * sizeof(float), &err);
    if (!p || backend_buffer_write(b, p, h.data(), h.size() * sizeof(float), &err)) die("buffer", &err);
    return p;
}

struct bench_case {
    const char *name;
    int32_t n_seqs, ctx, n_new; /* n_seqs sequences with ctx tokens cached, then n_new tokens each */
};

/* One case on one backend: µs per attention call (median), the output in out. */
static double run_case(backend *b, const bench_case &bc, std::vector<float> &out) {
    larder_error err = {};
    const int32_t H = 32, HKV = 8, D = 128, P = 16;
    const int32_t total = bc.ctx + bc.n_new, max_pages = (total + P - 1) / P;
    backend_kv_layout lay = {1, HKV, D, P, TYPE_F16, (size_t)D * 2, 0};
    lay.page_bytes = 2 * (size_t)HKV * P * lay.row_bytes;
    backend_kv *kv = backend_kv_create(b, &lay, (uint32_t)(bc.n_seqs * max_pages), &err);
    if (!kv) die("kv_create", &err);
    std::vector<uint32_t> pt((size_t)bc.n_seqs * max_pages);
    for (size_t i = 0; i < pt.size(); i++) pt[i] = (uint32_t)i;
    std::vector<int32_t> keep(bc.n_seqs, 0), win(bc.n_seqs, 0);
    /* every token of every sequence stored (one batch), then the measured step */
    const int32_t n_all = bc.n_seqs * total;
    std::vector<int32_t> tok(n_all, 0), pos(n_all), seq(n_all);
    for (int32_t s = 0, t = 0; s < bc.n_seqs; s++)
        for (int32_t i = 0; i < total; i++, t++) pos[t] = i, seq[t] = s;
    rng = 0x2545F4914F6CDD1Dull; /* the same values on both backends */
    std::vector<float> k((size_t)n_all * HKV * D), v(k.size());
    for (float &x : k) x = 2.0f * frand();
    for (float &x : v) x = frand();
    backend_batch bt = {};
    bt.n_tokens = n_all, bt.tokens = tok.data(), bt.pos = pos.data(), bt.seq = seq.data(), bt.n_seqs = bc.n_seqs;
    bt.max_pages = max_pages, bt.page_table = pt.data(), bt.keep_tokens = keep.data(), bt.window_tokens = win.data();
    if (backend_batch_set(b, &bt, &err)) die("batch", &err);
    float *kg = upload(b, k), *vg = upload(b, v);
    if (backend_kv_store(b, kv, 0, kg, vg, &err) || backend_sync(b, &err)) die("kv_store", &err);
    backend_buffer_free(b, kg), backend_buffer_free(b, vg);
    /* the step: the last n_new tokens of every sequence */
    const int32_t n = bc.n_seqs * bc.n_new;
    std::vector<int32_t> spos(n), sseq(n);
    for (int32_t s = 0, t = 0; s < bc.n_seqs; s++)
        for (int32_t i = 0; i < bc.n_new; i++, t++) spos[t] = bc.ctx + i, sseq[t] = s;
    bt.n_tokens = n, bt.pos = spos.data(), bt.seq = sseq.data();
    if (backend_batch_set(b, &bt, &err)) die("batch", &err);
    std::vector<float> q((size_t)n * H * D);
    for (float &x : q) x = 2.0f * frand();
    float *qg = upload(b, q), *og = upload(b, std::vector<float>(q.size(), 0.0f));
    cudaStream_t st = ((cuda_backend *)b)->stream;
    const float scale = 1.0f / sqrtf((float)D);
    if (backend_attention(b, kv, 0, qg, H, scale, og, &err) || backend_sync(b, &err)) die("attention", &err); /* warm */
    cudaEvent_t e0, e1;
    cu(cudaEventCreate(&e0), "event"), cu(cudaEventCreate(&e1), "event");
    std::vector<double> us;
    for (int r = 0; r < g_reps; r++) {
        cu(cudaEventRecord(e0, st), "record");
        if (backend_attention(b, kv, 0, qg, H, scale, og, &err)) die("attention", &err);
        cu(cudaEventRecord(e1, st), "record");
        cu(cudaEventSynchronize(e1), "sync");
        float ms = 0;
        cu(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
        us.push_back(ms * 1000.0);
    }
    std::sort(us.begin(), us.end());
    out.resize(q.size());
    if (backend_sync(b, &err) || backend_buffer_read(b, out.data(), og, out.size() * sizeof(float), &err)) die("read", &err);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    backend_buffer_free(b, qg), backend_buffer_free(b, og);
    backend_kv_free(b, kv);
    return us[us.size() / 2];
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) g_reps = 3;
    backend *scalar = make_gpu("0"), *flash = make_gpu("1"), *flash_sync = make_gpu("2");
    cudaDeviceProp prop;
    cu(cudaGetDeviceProperties(&prop, 0), "properties");
    printf("cuda_attn_bench on %s: 32 heads / 8 KV heads, D=128, f16 KV, pages of 16\n", prop.name);
    const bench_case cases[] = {{"prefill 4096 tokens (1 seq, causal)", 1, 0, 4096},
                                {"decode 64 seqs x 1 token, 640 context", 64, 640, 1},
                                {"prefill 512 tokens (1 seq, causal)", 1, 0, 512},
                                {"decode 1 seq x 1 token, 4096 context", 1, 4096, 1},
                                {"decode 8 seqs x 1 token, 640 context", 8, 640, 1}};
    for (const bench_case &bc : cases) {
        std::vector<float> o_s, o_f, o_f2;
        double t_s = run_case(scalar, bc, o_s), t_f = run_case(flash, bc, o_f), t_f2 = run_case(flash_sync, bc, o_f2);
        double mx = 0, ss = 0;
        for (size_t i = 0; i < o_s.size(); i++) {
            mx = std::max(mx, (double)fabsf(o_f[i] - o_s[i]));
            ss += (double)o_s[i] * o_s[i];
        }
        double rms = sqrt(ss / (double)o_s.size());
        /* Q·Kᵀ and P·V over the keys each row sees: 4·D flops a (row, key) pair */
        double pairs = 0;
        for (int32_t i = 0; i < bc.n_new; i++) pairs += (double)(bc.ctx + i + 1);
        double flops = 4.0 * 128 * 32 * bc.n_seqs * pairs;
        printf("%-40s scalar %10.1f us  flash %10.1f us  ratio %6.2fx  (flash %.1f TFLOP/s; max|d|/rms %.2g; "
               "without cp.async %.1f us)\n",
               bc.name, t_s, t_f, t_s / t_f, flops / (t_f * 1e-6) / 1e12, rms > 0 ? mx / rms : mx, t_f2);
    }
    backend_free(scalar), backend_free(flash), backend_free(flash_sync);
    return 0;
}
