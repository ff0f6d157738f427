/*
 * cuda_ops_check.c — every op of the CUDA backend against a reference, on
 * random inputs, in one program (built by `make cuda`; run on a GPU machine
 * by tests/cuda/run.sh). Not a `make test` program: it needs a GPU.
 *
 *   matmul / matmul_multi: every weight type, decode (GEMV) and prefill
 *     (tensor-core GEMM) batch sizes, odd row counts, 1/2/4 rows a warp;
 *     reference: the CPU backend, whose 8-bit activation rounding the GPU
 *     repeats (the error of each against the dequantised weights times x
 *     in double is printed beside it)
 *   get_rows: exact against dequantize_row
 *   rmsnorm, add, add_bias, silu_mul, rope (normal, NEOX, partial, scaled),
 *   get_out_rows (in place): against the CPU backend
 *   kv_store: page bytes against the CPU backend's for every KV type
 *   attention: against the CPU backend for every KV type, prefill and
 *     decode (split-KV), two sequences, a rotating window, GQA
 *   kv_page_copy: bytes
 *   flash attention (cuda_flash_attn.cu, forced on): against the CPU for
 *     every KV type, prefill after a cached prefix (partly filled pages),
 *     rotating windows with dropped pages, GQA groups 1..32, head sizes 64
 *     and 128, 64-sequence decode steps (split-KV and not)
 *   qgemm (cuda_gemm.cu, n > 8): every type but F32, n = 9..512, each tile
 *     shape forced and the automatic one; reference: the dequantised weights
 *     times x rounded as the GPU rounds it (8-bit activation quants, f16)
 *   mmq (cuda_mmq.cu, LARDER_CUDA_MMQ=1, n > 8): Q4_K/Q5_K/Q6_K/Q8_0 at the
 *     Llama-3-8B shapes, n = 9..512, and every MMQ type at odd row counts
 *     with each tile forced; reference: the CPU backend (same 8-bit
 *     activations, exact integer dots: 1e-5), and at least 10x closer to
 *     it than the f16 GEMM
 *   moe_ffn grouped (n_tokens > 8): against the per-pair GPU path and the
 *     CPU, skewed routing, an expert no token chose, 8..128 experts, top 2..8
 * Prints one line per check and "N passed, N failed" last; exit 1 on a failure.
 * Usage: cuda_ops_check [--mmq]   (--mmq: only the mmq checks)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

static int n_pass, n_fail;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

static void check(const char *what, double err, double tol) {
    bool ok = isfinite(err) && err <= tol;
    printf("%-4s %-58s err %.3g (tol %.3g)\n", ok ? "ok" : "FAIL", what, err, tol);
    ok ? n_pass++ : n_fail++;
}

static _Noreturn void die(const char *what, const larder_error *err) {
    fprintf(stderr, "cuda_ops_check: %s: %s\n", what, err->message);
    exit(2);
}

/* ‖a − b‖ / ‖b‖ (b the reference), NaN in a counts as failure */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double rel_errf(const float *a, const float *b, size_t n) {
    double *bd = malloc(n * sizeof *bd);
    for (size_t i = 0; i < n; i++) bd[i] = b[i];
    double e = rel_err(a, bd, n);
    free(bd);
    return e;
}

static backend *cpu, *gpu;
static bool gpu_mmvq = true; /* gpu takes the 8-bit GEMV (dp4a: Q8_1's s term as the CPU's); false under LARDER_CUDA_MMVQ=0 */

/* A backend buffer holding n floats of h (or uninitialised garbage when h is NULL: poisoned with NaN). */
static float *buf_from(backend *b, const float *h, size_t n) {
    larder_error err = {0};
    float *p = backend_buffer_alloc(b, n * sizeof(float), &err);
    if (!p) die("buffer", &err);
    float *tmp = NULL;
    if (!h) {
        tmp = malloc(n * sizeof *tmp);
        for (size_t i = 0; i < n; i++) tmp[i] = NAN;
        h = tmp;
    }
    if (backend_buffer_write(b, p, h, n * sizeof(float), &err)) die("buffer write", &err);
    free(tmp);
    return p;
}

static void buf_to(backend *b, float *h, const float *p, size_t n) {
    larder_error err = {0};
    if (backend_sync(b, &err) || backend_buffer_read(b, h, p, n * sizeof(float), &err)) die("buffer read", &err);
}

/* Sets the same batch on both backends. */
static void set_batch(const backend_batch *bt) {
    larder_error err = {0};
    if (backend_batch_set(cpu, bt, &err) || backend_batch_set(gpu, bt, &err)) die("batch", &err);
}

/* ---- matmul */

static void check_matmul(uint32_t type, int64_t rows, int64_t cols, int64_t n) {
    larder_error err = {0};
    size_t rb = tensor_row_bytes(type, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *wf = malloc((size_t)(rows * cols) * sizeof *wf), *x = malloc((size_t)(n * cols) * sizeof *x);
    fill(wf, (size_t)(rows * cols), 1.0f);
    fill(x, (size_t)(n * cols), 1.0f);
    for (int64_t r = 0; r < rows; r++)
        if (quantize_row(type, wf + r * cols, w + (size_t)r * rb, cols)) {
            printf("skip %s: cannot quantize\n", tensor_type_get(type)->name);
            return;
        }
    for (int64_t r = 0; r < rows; r++) dequantize_row(type, w + (size_t)r * rb, wf + r * cols, cols);
    double *ref = malloc((size_t)(n * rows) * sizeof *ref);
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0;
            for (int64_t k = 0; k < cols; k++) s += (double)wf[r * cols + k] * x[t * cols + k];
            ref[t * rows + r] = s;
        }
    const void *wd;
    if (backend_upload_weight(gpu, w, rb * (size_t)rows, &wd, &err)) die("upload", &err);
    float *xg = buf_from(gpu, x, (size_t)(n * cols)), *yg = buf_from(gpu, NULL, (size_t)(n * rows));
    float *yc = malloc((size_t)(n * rows) * sizeof *yc), *yh = malloc((size_t)(n * rows) * sizeof *yh);
    if (backend_matmul(gpu, wd, type, rows, cols, xg, n, yg, &err)) die("matmul", &err);
    buf_to(gpu, yh, yg, (size_t)(n * rows));
    if (backend_matmul(cpu, w, type, rows, cols, x, n, yc, &err)) die("cpu matmul", &err);
    char what[200];
    bool gemm = n > 8 && type != TYPE_F32 && cols % 32 == 0;
    /* Both devices round x as the CPU's activation quantizer does (8-bit for
     * quantized weights): the GEMV then differs from the CPU only by the
     * order of float additions; the f16 tensor-core GEMM by f16 rounding. */
    snprintf(what, sizeof what, "matmul %-5s %lldx%lld n=%lld (%s) vs cpu; cpu vs exact %.2g, gpu vs exact %.2g",
             tensor_type_get(type)->name, (long long)rows, (long long)cols, (long long)n, gemm ? "gemm f16" : "gemv",
             rel_err(yc, ref, (size_t)(n * rows)), rel_err(yh, ref, (size_t)(n * rows)));
    /* Q4_1/Q5_1: the CPU adds the weight's min times Q8_1's s = f16(d·Σq),
     * the GPU's elements carry f16(d)·q: the two differ by one f16 rounding
     * of that term (measured 1.7e-4..5.8e-4 on an H100) */
    const bool q8_1 = quant_vec_dot_type(type) == TYPE_Q8_1;
    check(what, rel_errf(yh, yc, (size_t)(n * rows)), gemm ? 3e-3 : q8_1 && !gpu_mmvq ? 1.5e-3 : 1e-5);
    backend_buffer_free(gpu, xg), backend_buffer_free(gpu, yg);
    free(w), free(wf), free(x), free(ref), free(yc), free(yh);
}

/* x rounded to f16 (nearest, ties to even; the GPU's __float2half_rn for
 * the magnitudes used here: no overflow). */
static float round_f16(float f) {
    if (f == 0.0f || !isfinite(f)) return f;
    int e;
    frexpf(fabsf(f), &e);             /* |f| = m·2^e, m in [0.5, 1) */
    int qexp = e - 11 < -24 ? -24 : e - 11; /* 11 significant bits; subnormal quantum 2^-24 */
    float q = ldexpf(1.0f, qexp);
    return nearbyintf(f / q) * q;
}

/* The quantized tensor-core product (cuda_gemm.cu) on every backend of
 * `gs` (automatic tile and forced tiles): against the dequantised weights
 * times x rounded as the GPU rounds it (the CPU's activation quantizer for
 * the weight's type, cuda_act_round.cu, then f16) in double; outputs
 * poisoned with NaN first. */
static void check_qgemm(backend **gs, const char *const *names, int n_gs, uint32_t type, int64_t rows, int64_t cols,
                        int64_t n) {
    larder_error err = {0};
    size_t rb = tensor_row_bytes(type, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *wf = malloc((size_t)(rows * cols) * sizeof *wf), *x = malloc((size_t)(n * cols) * sizeof *x);
    fill(wf, (size_t)(rows * cols), 1.0f);
    fill(x, (size_t)(n * cols), 1.0f);
    for (int64_t r = 0; r < rows; r++)
        if (quantize_row(type, wf + r * cols, w + (size_t)r * rb, cols)) die("quantize", &err);
    for (int64_t r = 0; r < rows; r++) dequantize_row(type, w + (size_t)r * rb, wf + r * cols, cols);
    double *ref = malloc((size_t)(n * rows) * sizeof *ref);
    const uint32_t act = quant_vec_dot_type(type); /* x as the GPU rounds it: the CPU's activation quants, then f16 */
    void *xq = malloc(act == TYPE_F32 ? 4 : tensor_row_bytes(act, cols));
    float *xr = malloc((size_t)cols * sizeof *xr);
    for (int64_t t = 0; t < n; t++) {
        double *xd = malloc((size_t)cols * sizeof *xd);
        if (act == TYPE_F32) memcpy(xr, x + t * cols, (size_t)cols * sizeof *xr);
        else quantize_row_activation(act, x + t * cols, xq, cols), dequantize_row(act, xq, xr, cols);
        for (int64_t k = 0; k < cols; k++) xd[k] = round_f16(xr[k]);
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            const float *wr = wf + r * cols;
            for (int64_t k = 0; k < cols; k++) acc += (double)wr[k] * xd[k];
            ref[t * rows + r] = acc;
        }
        free(xd);
    }
    free(xq), free(xr);
    float *yh = malloc((size_t)(n * rows) * sizeof *yh);
    for (int g = 0; g < n_gs; g++) {
        const void *wd;
        if (backend_upload_weight(gs[g], w, rb * (size_t)rows, &wd, &err)) die("upload", &err);
        float *xg = buf_from(gs[g], x, (size_t)(n * cols)), *yg = buf_from(gs[g], NULL, (size_t)(n * rows));
        if (backend_matmul(gs[g], wd, type, rows, cols, xg, n, yg, &err)) die("matmul", &err);
        buf_to(gs[g], yh, yg, (size_t)(n * rows));
        char what[160];
        snprintf(what, sizeof what, "qgemm %-5s %lldx%lld n=%lld tile %s", tensor_type_get(type)->name,
                 (long long)rows, (long long)cols, (long long)n, names[g]);
        check(what, rel_err(yh, ref, (size_t)(n * rows)), 3e-3);
        backend_buffer_free(gs[g], xg), backend_buffer_free(gs[g], yg);
    }
    free(w), free(wf), free(x), free(ref), free(yh);
}

/* q, k, v as one fused call against three single calls. */
static void check_matmul_multi(uint32_t type, int64_t n) {
    larder_error err = {0};
    const int64_t cols = 256, rows[3] = {256, 64, 64};
    size_t rb = tensor_row_bytes(type, cols);
    float *x = malloc((size_t)(n * cols) * sizeof *x);
    fill(x, (size_t)(n * cols), 1.0f);
    float *xg = buf_from(gpu, x, (size_t)(n * cols));
    backend_matmul_weight mats[3];
    float *single[3];
    for (int i = 0; i < 3; i++) {
        float *wf = malloc((size_t)(rows[i] * cols) * sizeof *wf);
        uint8_t *w = malloc(rb * (size_t)rows[i]);
        fill(wf, (size_t)(rows[i] * cols), 1.0f);
        for (int64_t r = 0; r < rows[i]; r++) quantize_row(type, wf + r * cols, w + (size_t)r * rb, cols);
        const void *wd;
        if (backend_upload_weight(gpu, w, rb * (size_t)rows[i], &wd, &err)) die("upload", &err);
        mats[i] = (backend_matmul_weight){wd, type, rows[i], buf_from(gpu, NULL, (size_t)(n * rows[i]))};
        single[i] = buf_from(gpu, NULL, (size_t)(n * rows[i]));
        if (backend_matmul(gpu, wd, type, rows[i], cols, xg, n, single[i], &err)) die("matmul", &err);
        free(wf), free(w);
    }
    if (backend_matmul_multi(gpu, mats, 3, cols, xg, n, &err)) die("matmul_multi", &err);
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        size_t m = (size_t)(n * rows[i]);
        float *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b);
        buf_to(gpu, a, mats[i].y, m);
        buf_to(gpu, b, single[i], m);
        double e = rel_errf(a, b, m);
        if (e > worst) worst = e;
        free(a), free(b);
        backend_buffer_free(gpu, mats[i].y), backend_buffer_free(gpu, single[i]);
    }
    char what[128];
    snprintf(what, sizeof what, "matmul_multi %s n=%lld = 3 single calls", tensor_type_get(type)->name, (long long)n);
    check(what, worst, 0);
    backend_buffer_free(gpu, xg);
    free(x);
}

static void check_get_rows(uint32_t type, int64_t cols) {
    larder_error err = {0};
    const int64_t vocab = 50, n = 7;
    size_t rb = tensor_row_bytes(type, cols);
    uint8_t *w = malloc(rb * (size_t)vocab);
    float *wf = malloc((size_t)(vocab * cols) * sizeof *wf);
    fill(wf, (size_t)(vocab * cols), 2.0f);
    for (int64_t r = 0; r < vocab; r++) quantize_row(type, wf + r * cols, w + (size_t)r * rb, cols);
    int32_t tokens[7] = {3, 49, 0, 3, 17, 25, 1}, pos[7] = {0}, seq[7] = {0};
    uint32_t pt[1] = {0};
    int32_t keep[1] = {0}, win[1] = {0};
    set_batch(&(backend_batch){.n_tokens = (int32_t)n, .tokens = tokens, .pos = pos, .seq = seq, .n_seqs = 1,
                               .max_pages = 1, .page_table = pt, .keep_tokens = keep, .window_tokens = win});
    const void *wd;
    if (backend_upload_weight(gpu, w, rb * (size_t)vocab, &wd, &err)) die("upload", &err);
    float *xg = buf_from(gpu, NULL, (size_t)(n * cols)), *xh = malloc((size_t)(n * cols) * sizeof *xh),
          *ref = malloc((size_t)(n * cols) * sizeof *ref);
    if (backend_get_rows(gpu, wd, type, cols, xg, &err)) die("get_rows", &err);
    buf_to(gpu, xh, xg, (size_t)(n * cols));
    for (int64_t t = 0; t < n; t++) dequantize_row(type, w + (size_t)tokens[t] * rb, ref + t * cols, cols);
    char what[96];
    snprintf(what, sizeof what, "get_rows %s cols=%lld (exact)", tensor_type_get(type)->name, (long long)cols);
    check(what, rel_errf(xh, ref, (size_t)(n * cols)), 0);
    backend_buffer_free(gpu, xg);
    free(w), free(wf), free(xh), free(ref);
}

/* ---- small ops, CPU vs GPU */

static void check_small_ops(void) {
    larder_error err = {0};
    enum { N = 5, DIM = 384, H = 6, HD = 64 };
    int32_t tokens[N] = {0}, pos[N] = {0, 1, 2, 700, 31999}, seq[N] = {0};
    uint32_t pt[1] = {0};
    int32_t keep[1] = {0}, win[1] = {0}, out_rows[3] = {1, 3, 4};
    set_batch(&(backend_batch){.n_tokens = N, .tokens = tokens, .pos = pos, .seq = seq, .n_seqs = 1, .max_pages = 1,
                               .page_table = pt, .keep_tokens = keep, .window_tokens = win, .n_out = 3,
                               .out_rows = out_rows});
    float x[N * DIM], w[DIM], y[N * DIM], c_out[N * DIM], g_out[N * DIM];
    fill(x, N * DIM, 3.0f), fill(w, DIM, 1.0f), fill(y, N * DIM, 2.0f);
    float *xg = buf_from(gpu, x, N * DIM), *wg = buf_from(gpu, w, DIM), *yg = buf_from(gpu, y, N * DIM);
    float *og = buf_from(gpu, NULL, N * DIM);
    /* rmsnorm (rows of DIM, and per-head rows of HD) */
    memcpy(c_out, x, sizeof x);
    backend_rmsnorm(cpu, x, w, c_out, N, DIM, 1e-5f, &err);
    if (backend_rmsnorm(gpu, xg, wg, og, N, DIM, 1e-5f, &err)) die("rmsnorm", &err);
    buf_to(gpu, g_out, og, N * DIM);
    check("rmsnorm (n=5, dim=384)", rel_errf(g_out, c_out, N * DIM), 1e-6);
    backend_rmsnorm(cpu, x, w, c_out, N * DIM / HD, HD, 1e-6f, &err);
    if (backend_rmsnorm(gpu, xg, wg, og, N * DIM / HD, HD, 1e-6f, &err)) die("rmsnorm", &err);
    buf_to(gpu, g_out, og, N * DIM);
    check("rmsnorm per head (30 rows of 64)", rel_errf(g_out, c_out, N * DIM), 1e-6);
    /* add, add_bias, silu_mul */
    memcpy(c_out, x, sizeof x);
    backend_add(cpu, c_out, y, N * DIM, &err);
    float *tg = buf_from(gpu, x, N * DIM);
    if (backend_add(gpu, tg, yg, N * DIM, &err)) die("add", &err);
    buf_to(gpu, g_out, tg, N * DIM);
    check("add", rel_errf(g_out, c_out, N * DIM), 0);
    memcpy(c_out, x, sizeof x);
    backend_add_bias(cpu, c_out, w, N, DIM, &err);
    backend_buffer_write(gpu, tg, x, sizeof x, &err);
    if (backend_add_bias(gpu, tg, wg, N, DIM, &err)) die("add_bias", &err);
    buf_to(gpu, g_out, tg, N * DIM);
    check("add_bias", rel_errf(g_out, c_out, N * DIM), 0);
    memcpy(c_out, x, sizeof x);
    backend_silu_mul(cpu, c_out, y, N * DIM, &err);
    backend_buffer_write(gpu, tg, x, sizeof x, &err);
    if (backend_silu_mul(gpu, tg, yg, N * DIM, &err)) die("silu_mul", &err);
    buf_to(gpu, g_out, tg, N * DIM);
    check("silu_mul", rel_errf(g_out, c_out, N * DIM), 1e-6);
    /* rope: normal, neox, partial, with factors */
    float factors[HD / 2];
    for (int i = 0; i < HD / 2; i++) factors[i] = 1.0f + (float)i / 8.0f;
    float *fg = buf_from(gpu, factors, HD / 2);
    struct { bool neox; int n_rot; bool fac; float fscale; } cases[] = {
        {false, HD, false, 1.0f}, {true, HD, false, 1.0f}, {true, HD / 2, false, 0.25f}, {false, HD, true, 1.0f}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        float ts = powf(10000.0f, -2.0f / (float)cases[ci].n_rot);
        backend_rope_freqs fc = {ts, cases[ci].fscale, cases[ci].fac ? factors : NULL};
        backend_rope_freqs fgq = {ts, cases[ci].fscale, cases[ci].fac ? fg : NULL};
        memcpy(c_out, x, sizeof x);
        backend_rope(cpu, c_out, H, HD, cases[ci].n_rot, &fc, cases[ci].neox, &err);
        backend_buffer_write(gpu, tg, x, sizeof x, &err);
        if (backend_rope(gpu, tg, H, HD, cases[ci].n_rot, &fgq, cases[ci].neox, &err)) die("rope", &err);
        buf_to(gpu, g_out, tg, N * DIM);
        char what[96];
        snprintf(what, sizeof what, "rope %s n_rot=%d%s%s (positions to 31999)", cases[ci].neox ? "neox" : "normal",
                 cases[ci].n_rot, cases[ci].fac ? " factors" : "", cases[ci].fscale != 1.0f ? " freq_scale" : "");
        check(what, rel_errf(g_out, c_out, N * DIM), 2e-6);
    }
    /* get_out_rows in place and to another buffer */
    memcpy(c_out, x, sizeof x);
    backend_get_out_rows(cpu, c_out, c_out, DIM, &err);
    backend_buffer_write(gpu, tg, x, sizeof x, &err);
    if (backend_get_out_rows(gpu, tg, tg, DIM, &err)) die("get_out_rows", &err);
    buf_to(gpu, g_out, tg, 3 * DIM);
    check("get_out_rows in place", rel_errf(g_out, c_out, 3 * DIM), 0);
    if (backend_get_out_rows(gpu, xg, og, DIM, &err)) die("get_out_rows", &err);
    buf_to(gpu, g_out, og, 3 * DIM);
    check("get_out_rows", rel_errf(g_out, c_out, 3 * DIM), 0);
    backend_buffer_free(gpu, xg), backend_buffer_free(gpu, wg), backend_buffer_free(gpu, yg);
    backend_buffer_free(gpu, og), backend_buffer_free(gpu, tg), backend_buffer_free(gpu, fg);
}

/* ---- KV store and attention */

static void check_attention(uint32_t kv_type, int32_t D, int32_t n_heads, int32_t n_kv, int32_t long_ctx) {
    larder_error err = {0};
    const int32_t P = 16, L = 2;
    const uint32_t n_pages = (uint32_t)(2 * ((long_ctx + P) / P + 1) + 8);
    backend_kv_layout lay = {L, n_kv, D, P, kv_type, tensor_row_bytes(kv_type, D), 0};
    lay.page_bytes = 2 * (size_t)L * n_kv * P * lay.row_bytes;
    backend_kv *kc = backend_kv_create(cpu, &lay, n_pages, &err), *kg = backend_kv_create(gpu, &lay, n_pages, &err);
    if (!kc || !kg) die("kv_create", &err);
    /* sequence 0: long_ctx tokens, no window; sequence 1: 40 tokens with keep 4, window 12
     * (its pages 1.. partly dropped in the decode step) */
    const int32_t n0 = long_ctx, n1 = 40, max_pages = (n0 + P) / P + 1;
    uint32_t *pt = malloc((size_t)2 * max_pages * sizeof *pt);
    for (int32_t i = 0; i < 2 * max_pages; i++) pt[i] = (uint32_t)((i * 37 + 5) % n_pages); /* scattered pages */
    /* make them distinct */
    for (int32_t i = 0; i < 2 * max_pages; i++) pt[i] = (uint32_t)(n_pages - 1 - i);
    int32_t keep[2] = {0, 4}, win[2] = {0, 12};
    const int32_t n = n0 + n1, qw = n_heads * D, kw = n_kv * D;
    int32_t *tok = calloc((size_t)n + 2, 4), *pos = malloc(((size_t)n + 2) * 4), *seq = malloc(((size_t)n + 2) * 4);
    for (int32_t t = 0; t < n0; t++) pos[t] = t, seq[t] = 0;
    for (int32_t t = 0; t < n1; t++) pos[n0 + t] = t, seq[n0 + t] = 1;
    float *q = malloc((size_t)n * qw * 4), *k = malloc((size_t)n * kw * 4), *v = malloc((size_t)n * kw * 4);
    float *oc = malloc((size_t)n * qw * 4), *oh = malloc((size_t)n * qw * 4);
    const float scale = 1.0f / sqrtf((float)D);
    for (int layer = 0; layer < L; layer++) {
        fill(q, (size_t)n * qw, 2.0f), fill(k, (size_t)n * kw, 2.0f), fill(v, (size_t)n * kw, 1.0f);
        /* prefill in one batch (both sequences; sequence 1 without its window yet) */
        int32_t w1[2] = {0, 0};
        set_batch(&(backend_batch){.n_tokens = n, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = 2,
                                   .max_pages = max_pages, .page_table = pt, .keep_tokens = keep, .window_tokens = w1});
        float *qg = buf_from(gpu, q, (size_t)n * qw), *kg_ = buf_from(gpu, k, (size_t)n * kw),
              *vg = buf_from(gpu, v, (size_t)n * kw), *og = buf_from(gpu, NULL, (size_t)n * qw);
        if (backend_kv_store(cpu, kc, layer, k, v, &err) || backend_attention(cpu, kc, layer, q, n_heads, scale, oc, &err))
            die("cpu attention", &err);
        if (backend_kv_store(gpu, kg, layer, kg_, vg, &err) || backend_attention(gpu, kg, layer, qg, n_heads, scale, og, &err))
            die("attention", &err);
        buf_to(gpu, oh, og, (size_t)n * qw);
        /* page bytes: compare the pages of layer `layer` */
        size_t diff = 0, total = 0;
        uint8_t *pc = malloc(lay.page_bytes), *pg = malloc(lay.page_bytes);
        for (int32_t i = 0; i < 2 * max_pages; i++) {
            if (backend_kv_page_read(cpu, kc, pt[i], pc, &err) || backend_kv_page_read(gpu, kg, pt[i], pg, &err))
                die("page read", &err);
            for (size_t bidx = 0; bidx < lay.page_bytes; bidx++) diff += pc[bidx] != pg[bidx], total++;
        }
        free(pc), free(pg);
        const char *tn = tensor_type_get(kv_type)->name;
        char what[160];
        snprintf(what, sizeof what, "kv_store %s D=%d layer %d: bytes differing from cpu", tn, D, layer);
        check(what, (double)diff / (double)total, kv_type == TYPE_Q8_0 || kv_type == TYPE_Q4_0 ? 1e-3 : 0);
        double tol = kv_type == TYPE_F32 ? 1e-5 : kv_type == TYPE_F16 ? 2e-3 : kv_type == TYPE_BF16 ? 1e-2 : 1e-2;
        snprintf(what, sizeof what, "attention %s D=%d heads %d/%d prefill %d+%d tokens", tn, D, n_heads, n_kv, n0, n1);
        check(what, rel_errf(oh, oc, (size_t)n * qw), tol);
        /* decode: one token per sequence, sequence 1 with its window (a gap after keep) */
        int32_t dpos[2] = {n0, n1}, dseq[2] = {0, 1}, dtok[2] = {0, 0};
        set_batch(&(backend_batch){.n_tokens = 2, .tokens = dtok, .pos = dpos, .seq = dseq, .n_seqs = 2,
                                   .max_pages = max_pages, .page_table = pt, .keep_tokens = keep, .window_tokens = win});
        if (backend_kv_store(cpu, kc, layer, k, v, &err) || backend_attention(cpu, kc, layer, q, n_heads, scale, oc, &err))
            die("cpu attention", &err);
        if (backend_kv_store(gpu, kg, layer, kg_, vg, &err) || backend_attention(gpu, kg, layer, qg, n_heads, scale, og, &err))
            die("attention", &err);
        buf_to(gpu, oh, og, (size_t)2 * qw);
        snprintf(what, sizeof what, "attention %s D=%d decode at %d and %d (window)", tn, D, n0, n1);
        check(what, rel_errf(oh, oc, (size_t)2 * qw), tol);
        backend_buffer_free(gpu, qg), backend_buffer_free(gpu, kg_), backend_buffer_free(gpu, vg), backend_buffer_free(gpu, og);
    }
    /* page copy */
    uint8_t *a = malloc(lay.page_bytes), *b = malloc(lay.page_bytes);
    if (backend_kv_page_copy(gpu, kg, 0, pt[0], &err) || backend_kv_page_read(gpu, kg, 0, a, &err) ||
        backend_kv_page_read(gpu, kg, pt[0], b, &err))
        die("page copy", &err);
    check("kv_page_copy", memcmp(a, b, lay.page_bytes) ? 1.0 : 0.0, 0);
    free(a), free(b);
    backend_kv_free(cpu, kc), backend_kv_free(gpu, kg);
    free(pt), free(tok), free(pos), free(seq), free(q), free(k), free(v), free(oc), free(oh);
}

/* ---- flash attention (cuda_flash_attn.cu), forced on in a backend made
 * with LARDER_CUDA_FA=1, against the CPU backend (and, to prove the path
 * ran, against the scalar kernel: the two must differ somewhere).
 *
 * Tolerances. With f16 KV, q is f16 on both devices and K, V are the same
 * f16 values; the flash kernel rounds the unnormalised weights p = 2^(s - m)
 * to f16 before P·V (the CPU rounds the normalised ones to f16, the scalar
 * kernel not at all): each weight carries a relative error up to 2^-11,
 * independent from key to key, so an output row o = Σ p_j v_j / Σ p_j moves
 * by about 2^-12·sqrt(Σ p_j² v_j²) / Σ p_j — a few 1e-4 of the output's own
 * size (and the CPU's rounding as much again): 2e-3 on ‖Δ‖/‖ref‖ (the
 * scalar kernel's f16 tolerance) and 1e-2 on max |Δ| / rms(ref) (the
 * largest of ~1e5 such errors, ~4.5 sigma). f32 KV: K, V and q are
 * rounded to f16 here (2^-12 relative each, in the scores and in V): the
 * same bounds. bf16 KV: values exact in f16, but the CPU rounds the
 * weights to bf16 (2^-9): 1e-2 and 5e-2, as the scalar kernel's bf16
 * check. q8_0 / q4_0: the int·scale products rounded to f16 add 2^-12 to
 * what the scalar kernel's 1e-2 covers: 1e-2 and 5e-2. */
static backend *gfa;

static void fa_set_batch(const backend_batch *bt) {
    larder_error err = {0};
    if (backend_batch_set(cpu, bt, &err) || backend_batch_set(gpu, bt, &err) || backend_batch_set(gfa, bt, &err))
        die("batch", &err);
}

/* The three pools (cpu, gpu scalar, gpu flash) of one layout. */
static void fa_pools(const backend_kv_layout *lay, uint32_t n_pages, backend_kv **kv) {
    larder_error err = {0};
    backend *bs[3] = {cpu, gpu, gfa};
    for (int i = 0; i < 3; i++)
        if (!(kv[i] = backend_kv_create(bs[i], lay, n_pages, &err))) die("kv_create", &err);
}

/* K and V of the batch set (n_kw floats each) stored at `layer` in every pool. */
static void fa_store(backend_kv **kv, int32_t layer, const float *k, const float *v, size_t n_kw) {
    larder_error err = {0};
    if (backend_kv_store(cpu, kv[0], layer, k, v, &err)) die("cpu kv_store", &err);
    backend *bs[2] = {gpu, gfa};
    for (int i = 0; i < 2; i++) {
        float *kg = buf_from(bs[i], k, n_kw), *vg = buf_from(bs[i], v, n_kw);
        if (backend_kv_store(bs[i], kv[i + 1], layer, kg, vg, &err)) die("kv_store", &err);
        if (backend_sync(bs[i], &err)) die("kv_store sync", &err);
        backend_buffer_free(bs[i], kg), backend_buffer_free(bs[i], vg);
    }
}

/* Attention of the batch set on the three backends: out[0] cpu, out[1] scalar, out[2] flash (nq floats each). */
static void fa_attend(backend_kv **kv, int32_t layer, const float *q, size_t nq, int32_t n_heads, float scale, float **out) {
    larder_error err = {0};
    if (backend_attention(cpu, kv[0], layer, q, n_heads, scale, out[0], &err)) die("cpu attention", &err);
    backend *bs[2] = {gpu, gfa};
    for (int i = 0; i < 2; i++) {
        float *qg = buf_from(bs[i], q, nq), *og = buf_from(bs[i], NULL, nq);
        if (backend_attention(bs[i], kv[i + 1], layer, qg, n_heads, scale, og, &err)) die("attention", &err);
        buf_to(bs[i], out[i + 1], og, nq);
        backend_buffer_free(bs[i], qg), backend_buffer_free(bs[i], og);
    }
}

/* max |a - b| / rms(b); non-finite a: infinity */
static double max_err_rms(const float *a, const float *b, size_t n) {
    double mx = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]);
        if (d > mx) mx = d;
        ss += (double)b[i] * b[i];
    }
    double rms = sqrt(ss / (double)(n ? n : 1));
    return rms > 0 ? mx / rms : mx;
}

static void fa_compare(const char *what, uint32_t type, float **out, size_t n) {
    const bool tight = type == TYPE_F16 || type == TYPE_F32;
    char line[200];
    snprintf(line, sizeof line, "%s: flash vs cpu (scalar vs cpu %.2g)", what, rel_errf(out[1], out[0], n));
    check(line, rel_errf(out[2], out[0], n), tight ? 2e-3 : 1e-2);
    snprintf(line, sizeof line, "%s: flash vs cpu, max|d|/rms", what);
    check(line, max_err_rms(out[2], out[0], n), tight ? 1e-2 : 5e-2);
    snprintf(line, sizeof line, "%s: flash path ran (differs from scalar)", what);
    check(line, memcmp(out[1], out[2], n * sizeof(float)) ? 0.0 : 1.0, 0);
}

/* One sequence: `prefix` tokens already in the cache (their pages partly
 * filled: P does not divide prefix), then a prefill of n_new tokens with
 * rotating window (keep, window; 0, 0: none) whose gap's whole pages are
 * dropped; at layer 1 of 2. */
static void check_flash_prefill(uint32_t type, int32_t D, int32_t n_heads, int32_t n_kv, int32_t P, int32_t prefix,
                                int32_t n_new, int32_t keep, int32_t window) {
    const int32_t L = 2, layer = 1, total = prefix + n_new, max_pages = (total + P - 1) / P + 1;
    const uint32_t n_pages = (uint32_t)(max_pages + 5);
    backend_kv_layout lay = {L, n_kv, D, P, type, tensor_row_bytes(type, D), 0};
    lay.page_bytes = 2 * (size_t)L * n_kv * P * lay.row_bytes;
    backend_kv *kv[3];
    fa_pools(&lay, n_pages, kv);
    uint32_t *pt = malloc((size_t)max_pages * sizeof *pt);
    for (int32_t i = 0; i < max_pages; i++) /* distinct, alternating between the pool's two ends */
        pt[i] = i % 2 ? (uint32_t)(i / 2) : n_pages - 1 - (uint32_t)(i / 2);
    const int32_t qw = n_heads * D, kw = n_kv * D;
    int32_t *tok = calloc((size_t)total, 4), *pos = malloc((size_t)total * 4), *seq = calloc((size_t)total, 4);
    float *q = malloc((size_t)n_new * qw * 4), *k = malloc((size_t)total * kw * 4), *v = malloc((size_t)total * kw * 4);
    float *out[3];
    for (int i = 0; i < 3; i++) out[i] = malloc((size_t)n_new * qw * 4);
    fill(q, (size_t)n_new * qw, 2.0f), fill(k, (size_t)total * kw, 2.0f), fill(v, (size_t)total * kw, 1.0f);
    for (int32_t t = 0; t < total; t++) pos[t] = t;
    int32_t keep0[1] = {0}, win0[1] = {0}, keep1[1] = {keep}, win1[1] = {window};
    if (prefix > 0) { /* the cached prefix: stored only */
        fa_set_batch(&(backend_batch){.n_tokens = prefix, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = 1,
                                      .max_pages = max_pages, .page_table = pt, .keep_tokens = keep0, .window_tokens = win0});
        fa_store(kv, layer, k, v, (size_t)prefix * kw);
    }
    /* pages wholly in the gap [keep, first new token's window start) are dropped */
    uint32_t *pt1 = malloc((size_t)max_pages * sizeof *pt1);
    memcpy(pt1, pt, (size_t)max_pages * sizeof *pt1);
    int32_t dropped = 0;
    if (window > 0)
        for (int32_t i = 0; i < max_pages; i++)
            if (i * P >= keep && (i + 1) * P <= prefix - window + 1) pt1[i] = BACKEND_NO_PAGE, dropped++;
    fa_set_batch(&(backend_batch){.n_tokens = n_new, .tokens = tok, .pos = pos + prefix, .seq = seq, .n_seqs = 1,
                                  .max_pages = max_pages, .page_table = pt1, .keep_tokens = keep1, .window_tokens = win1});
    fa_store(kv, layer, k + (size_t)prefix * kw, v + (size_t)prefix * kw, (size_t)n_new * kw);
    fa_attend(kv, layer, q, (size_t)n_new * qw, n_heads, 1.0f / sqrtf((float)D), out);
    char what[160];
    snprintf(what, sizeof what, "flash %s D=%d heads %d/%d P=%d prefill %d+%d window %d/%d (%d pages dropped)",
             tensor_type_get(type)->name, D, n_heads, n_kv, P, prefix, n_new, keep, window, dropped);
    fa_compare(what, type, out, (size_t)n_new * qw);
    for (int i = 0; i < 3; i++) free(out[i]);
    backend_kv_free(cpu, kv[0]), backend_kv_free(gpu, kv[1]), backend_kv_free(gfa, kv[2]);
    free(pt), free(pt1), free(tok), free(pos), free(seq), free(q), free(k), free(v);
}

/* A decode step of n_seqs sequences, one token each, contexts of different
 * lengths (the first max_ctx, the second 1, some a multiple of P); every
 * third sequence from the third on with a rotating window (keep 4) whose
 * gap's whole pages are dropped. */
static void check_flash_decode(uint32_t type, int32_t D, int32_t n_heads, int32_t n_kv, int32_t P, int32_t n_seqs,
                               int32_t max_ctx) {
    const int32_t L = 1, layer = 0, qw = n_heads * D, kw = n_kv * D;
    int32_t *ctx = malloc((size_t)n_seqs * 4), *keep = malloc((size_t)n_seqs * 4), *win = malloc((size_t)n_seqs * 4);
    int32_t *zero = calloc((size_t)n_seqs, 4), max_pages = 0, n_ctx = 0, dropped = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        ctx[s] = s == 0 ? max_ctx : s == 1 ? 1 : s % 7 == 0 ? P * (1 + s % 5) : 1 + (s * 131 + 7) % max_ctx;
        keep[s] = s % 3 == 2 ? 4 : 0, win[s] = s % 3 == 2 ? 48 + s : 0;
        int32_t mp = (ctx[s] + 1 + P - 1) / P;
        if (mp > max_pages) max_pages = mp;
        n_ctx += ctx[s];
    }
    const uint32_t n_pages = (uint32_t)(n_seqs * max_pages + 3);
    backend_kv_layout lay = {L, n_kv, D, P, type, tensor_row_bytes(type, D), 0};
    lay.page_bytes = 2 * (size_t)L * n_kv * P * lay.row_bytes;
    backend_kv *kv[3];
    fa_pools(&lay, n_pages, kv);
    uint32_t *pt = malloc((size_t)n_seqs * max_pages * sizeof *pt);
    for (int32_t sq = 0; sq < n_seqs; sq++) /* distinct pages, a sequence's n_seqs apart */
        for (int32_t i = 0; i < max_pages; i++) pt[sq * max_pages + i] = (uint32_t)(2 + i * n_seqs + sq);
    /* every context token stored in one batch */
    int32_t *tok = calloc((size_t)n_ctx, 4), *pos = malloc((size_t)n_ctx * 4), *seq = malloc((size_t)n_ctx * 4);
    for (int32_t s = 0, t = 0; s < n_seqs; s++)
        for (int32_t i = 0; i < ctx[s]; i++, t++) pos[t] = i, seq[t] = s;
    float *k = malloc((size_t)n_ctx * kw * 4), *v = malloc((size_t)n_ctx * kw * 4);
    fill(k, (size_t)n_ctx * kw, 2.0f), fill(v, (size_t)n_ctx * kw, 1.0f);
    fa_set_batch(&(backend_batch){.n_tokens = n_ctx, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = n_seqs,
                                  .max_pages = max_pages, .page_table = pt, .keep_tokens = zero, .window_tokens = zero});
    fa_store(kv, layer, k, v, (size_t)n_ctx * kw);
    /* the step: token of sequence s at position ctx[s]; windowed sequences' gap pages dropped */
    for (int32_t s = 0; s < n_seqs; s++) {
        pos[s] = ctx[s], seq[s] = s;
        if (win[s] > 0)
            for (int32_t i = 0; i < max_pages; i++)
                if (i * P >= keep[s] && (i + 1) * P <= ctx[s] - win[s] + 1) pt[s * max_pages + i] = BACKEND_NO_PAGE, dropped++;
    }
    float *q = malloc((size_t)n_seqs * qw * 4), *out[3];
    for (int i = 0; i < 3; i++) out[i] = malloc((size_t)n_seqs * qw * 4);
    fill(q, (size_t)n_seqs * qw, 2.0f), fill(k, (size_t)n_seqs * kw, 2.0f), fill(v, (size_t)n_seqs * kw, 1.0f);
    fa_set_batch(&(backend_batch){.n_tokens = n_seqs, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = n_seqs,
                                  .max_pages = max_pages, .page_table = pt, .keep_tokens = keep, .window_tokens = win});
    fa_store(kv, layer, k, v, (size_t)n_seqs * kw);
    fa_attend(kv, layer, q, (size_t)n_seqs * qw, n_heads, 1.0f / sqrtf((float)D), out);
    char what[160];
    snprintf(what, sizeof what, "flash %s D=%d heads %d/%d P=%d decode %d seqs, ctx to %d (%d pages dropped)",
             tensor_type_get(type)->name, D, n_heads, n_kv, P, n_seqs, max_ctx, dropped);
    fa_compare(what, type, out, (size_t)n_seqs * qw);
    for (int i = 0; i < 3; i++) free(out[i]);
    backend_kv_free(cpu, kv[0]), backend_kv_free(gpu, kv[1]), backend_kv_free(gfa, kv[2]);
    free(ctx), free(keep), free(win), free(zero), free(pt), free(tok), free(pos), free(seq), free(k), free(v), free(q);
}

/* Every flash case on a backend made with LARDER_CUDA_FA=1 (f16 rows by
 * cp.async), and f16 cases with LARDER_CUDA_FA=2 (through registers). */
static void check_flash_all(const backend_options *opt) {
    larder_error err = {0};
    fflush(stdout); /* the lines so far survive a fault below */
    setenv("LARDER_CUDA_FA", "1", 1);
    gfa = backend_create("cuda", opt, &err);
    setenv("LARDER_CUDA_FA", "0", 1); /* back to the checks' baseline (main) */
    if (!gfa) die("cuda backend (LARDER_CUDA_FA=1)", &err);
    printf("-- flash attention (LARDER_CUDA_FA=1)\n");
    const uint32_t kv_types[] = {TYPE_F16, TYPE_F32, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0};
    for (size_t i = 0; i < sizeof kv_types / sizeof kv_types[0]; i++) {
        const uint32_t t = kv_types[i];
        check_flash_prefill(t, 128, 16, 4, 16, 37, 200, 0, 0);      /* group 4: 16-token tiles, a partial last */
        check_flash_prefill(t, 64, 16, 2, 16, 21, 130, 0, 0);       /* group 8, D 64 */
        check_flash_decode(t, 128, 8, 2, 16, 64, 700);              /* 128 blocks: split-KV */
    }
    check_flash_prefill(TYPE_F16, 128, 32, 8, 16, 0, 1024, 0, 0);   /* llama-3 shape, no prefix */
    check_flash_prefill(TYPE_F16, 128, 32, 8, 32, 100, 1000, 0, 0);
    check_flash_prefill(TYPE_F16, 128, 32, 4, 16, 300, 64, 0, 0);   /* group 8: 8-token tiles */
    check_flash_prefill(TYPE_F16, 128, 16, 4, 16, 600, 300, 4, 200); /* rotating window: gap pages dropped */
    check_flash_prefill(TYPE_Q8_0, 128, 16, 4, 16, 500, 100, 8, 96);
    check_flash_prefill(TYPE_F16, 64, 8, 8, 16, 50, 333, 0, 0);     /* no GQA: 64-token tiles */
    check_flash_prefill(TYPE_F16, 128, 64, 2, 16, 40, 70, 0, 0);    /* group 32: 2-token tiles */
    check_flash_prefill(TYPE_F16, 128, 8, 1, 16, 0, 7, 0, 0);       /* 7 tokens, group 8: 56 rows */
    check_flash_decode(TYPE_F16, 128, 32, 8, 16, 64, 700);          /* 512 blocks: no split */
    check_flash_decode(TYPE_F16, 128, 32, 8, 16, 1, 3000);          /* one sequence: split-KV (24 splits of 128 keys) */
    check_flash_decode(TYPE_Q4_0, 64, 32, 4, 32, 64, 900);          /* group 8, D 64 */
    check_flash_decode(TYPE_F16, 128, 32, 4, 16, 5, 1500);          /* group 8, a few sequences */
    backend_free(gfa);
    /* LARDER_CUDA_FA=2: f16 rows through registers instead of cp.async */
    setenv("LARDER_CUDA_FA", "2", 1);
    gfa = backend_create("cuda", opt, &err);
    setenv("LARDER_CUDA_FA", "0", 1); /* back to the checks' baseline (main) */
    if (!gfa) die("cuda backend (LARDER_CUDA_FA=2)", &err);
    printf("-- flash attention without cp.async (LARDER_CUDA_FA=2)\n");
    check_flash_prefill(TYPE_F16, 128, 32, 8, 16, 37, 500, 0, 0);
    check_flash_prefill(TYPE_F16, 128, 16, 4, 16, 600, 300, 4, 200);
    check_flash_decode(TYPE_F16, 128, 8, 2, 16, 64, 700);
    backend_free(gfa);
}

/* rmsnorm then a product of its output, three times: the first product
 * teaches the norm its activation type, after which the norm rounds x for
 * the product itself (cuda_backend.cu's memo); every result as the CPU's. */
static void check_norm_then_matmul(uint32_t type, int64_t n) {
    larder_error err = {0};
    const int64_t dim = 512, rows = 384;
    size_t rb = tensor_row_bytes(type, dim);
    uint8_t *wq = malloc(rb * (size_t)rows);
    float *wf = malloc((size_t)(rows * dim) * 4), *x = malloc((size_t)(n * dim) * 4), *nw = malloc((size_t)dim * 4);
    float *xn = malloc((size_t)(n * dim) * 4), *yc = malloc((size_t)(n * rows) * 4), *yh = malloc((size_t)(n * rows) * 4);
    fill(wf, (size_t)(rows * dim), 1.0f), fill(nw, (size_t)dim, 1.0f);
    for (int64_t r = 0; r < rows; r++) quantize_row(type, wf + r * dim, wq + (size_t)r * rb, dim);
    const void *wd;
    if (backend_upload_weight(gpu, wq, rb * (size_t)rows, &wd, &err)) die("upload", &err);
    float *nwg = buf_from(gpu, nw, (size_t)dim), *xg = buf_from(gpu, NULL, (size_t)(n * dim));
    float *xng = buf_from(gpu, NULL, (size_t)(n * dim)), *yg = buf_from(gpu, NULL, (size_t)(n * rows));
    double worst = 0;
    for (int round = 0; round < 3; round++) {
        fill(x, (size_t)(n * dim), 2.0f);
        if (backend_buffer_write(gpu, xg, x, (size_t)(n * dim) * 4, &err)) die("write", &err);
        backend_rmsnorm(cpu, x, nw, xn, n, dim, 1e-5f, &err);
        if (backend_matmul(cpu, wq, type, rows, dim, xn, n, yc, &err)) die("cpu matmul", &err);
        if (backend_rmsnorm(gpu, xg, nwg, xng, n, dim, 1e-5f, &err) ||
            backend_matmul(gpu, wd, type, rows, dim, xng, n, yg, &err))
            die("rmsnorm + matmul", &err);
        buf_to(gpu, yh, yg, (size_t)(n * rows));
        double e = rel_errf(yh, yc, (size_t)(n * rows));
        if (!(e <= worst)) worst = e;
    }
    char what[128];
    snprintf(what, sizeof what, "rmsnorm -> matmul %s n=%lld x3 (norm rounds for the product) vs cpu",
             tensor_type_get(type)->name, (long long)n);
    check(what, worst, quant_vec_dot_type(type) == TYPE_Q8_1 && !gpu_mmvq ? 1.5e-3 : 1e-5);
    backend_buffer_free(gpu, nwg), backend_buffer_free(gpu, xg), backend_buffer_free(gpu, xng), backend_buffer_free(gpu, yg);
    free(wq), free(wf), free(x), free(nw), free(xn), free(yc), free(yh);
}

/* silu_mul then the down product of its output, three times: after the
 * first, silu_mul rounds its output for the product itself (the memo). */
static void check_silu_then_matmul(uint32_t type, int64_t n) {
    larder_error err = {0};
    const int64_t ff = 768, rows = 256;
    size_t rb = tensor_row_bytes(type, ff);
    uint8_t *wq = malloc(rb * (size_t)rows);
    float *wf = malloc((size_t)(rows * ff) * 4), *g = malloc((size_t)(n * ff) * 4), *u = malloc((size_t)(n * ff) * 4);
    float *yc = malloc((size_t)(n * rows) * 4), *yh = malloc((size_t)(n * rows) * 4);
    fill(wf, (size_t)(rows * ff), 1.0f);
    for (int64_t r = 0; r < rows; r++) quantize_row(type, wf + r * ff, wq + (size_t)r * rb, ff);
    const void *wd;
    if (backend_upload_weight(gpu, wq, rb * (size_t)rows, &wd, &err)) die("upload", &err);
    float *gg = buf_from(gpu, NULL, (size_t)(n * ff)), *ug = buf_from(gpu, NULL, (size_t)(n * ff));
    float *yg = buf_from(gpu, NULL, (size_t)(n * rows));
    /* the same g, u each round: the fused rounds must equal the first
     * (unfused) bit for bit; against the CPU, whose silu may differ in a
     * last bit that moves a quant, 2e-3 */
    fill(g, (size_t)(n * ff), 3.0f), fill(u, (size_t)(n * ff), 1.0f);
    float *g0 = malloc((size_t)(n * ff) * 4), *y0 = malloc((size_t)(n * rows) * 4);
    memcpy(g0, g, (size_t)(n * ff) * 4);
    backend_silu_mul(cpu, g, u, n * ff, &err);
    if (backend_matmul(cpu, wq, type, rows, ff, g, n, yc, &err)) die("cpu matmul", &err);
    double worst = 0;
    bool same = true;
    for (int round = 0; round < 3; round++) {
        if (backend_buffer_write(gpu, gg, g0, (size_t)(n * ff) * 4, &err) ||
            backend_buffer_write(gpu, ug, u, (size_t)(n * ff) * 4, &err))
            die("write", &err);
        if (backend_silu_mul(gpu, gg, ug, n * ff, &err) || backend_matmul(gpu, wd, type, rows, ff, gg, n, yg, &err))
            die("silu_mul + matmul", &err);
        buf_to(gpu, yh, yg, (size_t)(n * rows));
        double e = rel_errf(yh, yc, (size_t)(n * rows));
        if (!(e <= worst)) worst = e;
        if (round == 0) memcpy(y0, yh, (size_t)(n * rows) * 4);
        else same = same && !memcmp(y0, yh, (size_t)(n * rows) * 4);
    }
    char what[128];
    snprintf(what, sizeof what, "silu_mul -> matmul %s n=%lld x3: fused rounds = unfused, bitwise",
             tensor_type_get(type)->name, (long long)n);
    check(what, same ? 0.0 : 1.0, 0);
    snprintf(what, sizeof what, "silu_mul -> matmul %s n=%lld vs cpu", tensor_type_get(type)->name, (long long)n);
    check(what, worst, 2e-3);
    free(g0), free(y0);
    backend_buffer_free(gpu, gg), backend_buffer_free(gpu, ug), backend_buffer_free(gpu, yg);
    free(wq), free(wf), free(g), free(u), free(yc), free(yh);
}

/* ---- mixture of experts: routing and the expert feed-forward, against the CPU */

/* up_type: the up matrices' type (the GPU fuses gate and up when it equals wtype) */
static void check_moe(uint32_t wtype, uint32_t up_type, int32_t n_expert, int32_t k, int64_t n_tokens, bool sigmoid) {
    larder_error err = {0};
    const int64_t dim = 256, ff = 512;
    float *logits = malloc((size_t)(n_tokens * n_expert) * 4), *bias = malloc((size_t)n_expert * 4);
    fill(logits, (size_t)(n_tokens * n_expert), 4.0f), fill(bias, (size_t)n_expert, 0.5f);
    int32_t *ids_c = malloc((size_t)(n_tokens * k) * 4), *ids_h = malloc((size_t)(n_tokens * k) * 4);
    float *w_c = malloc((size_t)(n_tokens * k) * 4), *w_h = malloc((size_t)(n_tokens * k) * 4);
    backend_moe_gating gating = sigmoid ? BACKEND_MOE_SIGMOID : BACKEND_MOE_SOFTMAX;
    if (backend_moe_route(cpu, logits, sigmoid ? bias : NULL, n_tokens, n_expert, k, gating, ids_c, w_c, &err))
        die("cpu moe_route", &err);
    float *lg = buf_from(gpu, logits, (size_t)(n_tokens * n_expert)), *bg = buf_from(gpu, bias, (size_t)n_expert);
    int32_t *idg = (int32_t *)buf_from(gpu, NULL, (size_t)(n_tokens * k));
    float *wg = buf_from(gpu, NULL, (size_t)(n_tokens * k));
    if (backend_moe_route(gpu, lg, sigmoid ? bg : NULL, n_tokens, n_expert, k, gating, idg, wg, &err)) die("moe_route", &err);
    buf_to(gpu, (float *)ids_h, (float *)idg, (size_t)(n_tokens * k));
    buf_to(gpu, w_h, wg, (size_t)(n_tokens * k));
    char what[128];
    snprintf(what, sizeof what, "moe_route %s %d experts top %d, %lld tokens: ids equal", sigmoid ? "sigmoid+bias" : "softmax",
             n_expert, k, (long long)n_tokens);
    check(what, memcmp(ids_c, ids_h, (size_t)(n_tokens * k) * 4) ? 1.0 : 0.0, 0);
    snprintf(what, sizeof what, "moe_route weights");
    check(what, rel_errf(w_h, w_c, (size_t)(n_tokens * k)), 1e-6);
    /* experts */
    size_t rb_gate = tensor_row_bytes(wtype, dim), rb_up = tensor_row_bytes(up_type, dim), rb_dn = tensor_row_bytes(wtype, ff);
    size_t gate_bytes = rb_gate * (size_t)(ff * n_expert), up_bytes = rb_up * (size_t)(ff * n_expert),
           dn_bytes = rb_dn * (size_t)(dim * n_expert);
    uint8_t *gate = malloc(gate_bytes), *up = malloc(up_bytes), *down = malloc(dn_bytes);
    float *row = malloc((size_t)ff * 4);
    for (int64_t r = 0; r < ff * n_expert; r++) {
        fill(row, (size_t)dim, 1.0f), quantize_row(wtype, row, gate + (size_t)r * rb_gate, dim);
        fill(row, (size_t)dim, 1.0f), quantize_row(up_type, row, up + (size_t)r * rb_up, dim);
    }
    for (int64_t r = 0; r < dim * n_expert; r++) fill(row, (size_t)ff, 0.5f), quantize_row(wtype, row, down + (size_t)r * rb_dn, ff);
    const void *gd, *ud, *dd;
    if (backend_upload_weight(gpu, gate, gate_bytes, &gd, &err) || backend_upload_weight(gpu, up, up_bytes, &ud, &err) ||
        backend_upload_weight(gpu, down, dn_bytes, &dd, &err))
        die("upload", &err);
    backend_moe_experts ec = {gate, up, down, wtype, up_type, wtype, n_expert, dim, ff};
    backend_moe_experts eg = {gd, ud, dd, wtype, up_type, wtype, n_expert, dim, ff};
    float *x = malloc((size_t)(n_tokens * dim) * 4), *oc = malloc((size_t)(n_tokens * dim) * 4),
          *oh = malloc((size_t)(n_tokens * dim) * 4);
    fill(x, (size_t)(n_tokens * dim), 1.0f);
    float *xg = buf_from(gpu, x, (size_t)(n_tokens * dim)), *og = buf_from(gpu, NULL, (size_t)(n_tokens * dim));
    if (backend_moe_ffn(cpu, &ec, x, ids_c, w_c, n_tokens, k, oc, &err)) die("cpu moe_ffn", &err);
    if (backend_moe_ffn(gpu, &eg, xg, idg, wg, n_tokens, k, og, &err)) die("moe_ffn", &err);
    buf_to(gpu, oh, og, (size_t)(n_tokens * dim));
    snprintf(what, sizeof what, "moe_ffn %s (up %s) %d experts top %d, %lld tokens (vs cpu)",
             tensor_type_get(wtype)->name, tensor_type_get(up_type)->name, n_expert, k, (long long)n_tokens);
    /* same rounded activations as the CPU; h = silu(g)·u is rounded again
     * before the down product, where a last-bit difference in h can move a
     * quant by one step */
    /* more than 8 tokens take the grouped f16 tensor-core products: their
     * 5e-4 on gate and up moves some quants of the re-rounded h by a step
     * (measured 2.3e-3..3.2e-3 against the per-pair path on an H100) */
    check(what, rel_errf(oh, oc, (size_t)(n_tokens * dim)), wtype == TYPE_F32 ? 1e-5 : n_tokens > 8 ? 6e-3 : 2e-3);
    backend_buffer_free(gpu, lg), backend_buffer_free(gpu, bg), backend_buffer_free(gpu, idg), backend_buffer_free(gpu, wg);
    backend_buffer_free(gpu, xg), backend_buffer_free(gpu, og);
    free(logits), free(bias), free(ids_c), free(ids_h), free(w_c), free(w_h), free(gate), free(up), free(down), free(row);
    free(x), free(oc), free(oh);
}

/* The grouped expert feed-forward (n_tokens > 8: cuda_moe_gemm.cu) against
 * the per-pair GEMV path (`per_pair`: a backend made with LARDER_CUDA_GEMM=1)
 * and the CPU, on ids chosen here: skewed routing (expert 0 takes most
 * tokens, so it spans several token tiles), and the last expert chosen by
 * no token. */
static void check_moe_grouped(backend *per_pair, uint32_t gate_t, uint32_t down_t, int32_t n_expert, int32_t k,
                              int64_t n_tokens) {
    larder_error err = {0};
    const int64_t dim = 256, ff = 512, n_pairs = n_tokens * k;
    int32_t *ids = malloc((size_t)n_pairs * 4);
    float *wts = malloc((size_t)n_pairs * 4);
    for (int64_t t = 0; t < n_tokens; t++) {
        float sum = 0;
        for (int32_t j = 0; j < k; j++) {
            int32_t e;
            bool dup;
            do { /* distinct experts per token, in [0, n_expert - 1): the last is never chosen */
                float u = (frand() + 1.0f) * 0.5f;
                e = j == 0 && u < 0.7f ? 0 : (int32_t)(u * u * (float)(n_expert - 1));
                if (e >= n_expert - 1) e = n_expert - 2;
                dup = false;
                for (int32_t i = 0; i < j; i++) dup |= ids[t * k + i] == e;
                if (dup) e = (e + 1 + (int32_t)(t % 3)) % (n_expert - 1);
                dup = false;
                for (int32_t i = 0; i < j; i++) dup |= ids[t * k + i] == e;
            } while (dup);
            ids[t * k + j] = e;
            wts[t * k + j] = (frand() + 1.5f);
            sum += wts[t * k + j];
        }
        for (int32_t j = 0; j < k; j++) wts[t * k + j] /= sum;
    }
    size_t rb_up = tensor_row_bytes(gate_t, dim), rb_dn = tensor_row_bytes(down_t, ff);
    size_t up_bytes = rb_up * (size_t)(ff * n_expert), dn_bytes = rb_dn * (size_t)(dim * n_expert);
    uint8_t *gate = malloc(up_bytes), *up = malloc(up_bytes), *down = malloc(dn_bytes);
    float *row = malloc((size_t)ff * 4);
    for (int64_t r = 0; r < ff * n_expert; r++) {
        fill(row, (size_t)dim, 1.0f), quantize_row(gate_t, row, gate + (size_t)r * rb_up, dim);
        fill(row, (size_t)dim, 1.0f), quantize_row(gate_t, row, up + (size_t)r * rb_up, dim);
    }
    for (int64_t r = 0; r < dim * n_expert; r++) fill(row, (size_t)ff, 0.5f), quantize_row(down_t, row, down + (size_t)r * rb_dn, ff);
    float *x = malloc((size_t)(n_tokens * dim) * 4), *oc = malloc((size_t)(n_tokens * dim) * 4),
          *oh = malloc((size_t)(n_tokens * dim) * 4), *op = malloc((size_t)(n_tokens * dim) * 4);
    fill(x, (size_t)(n_tokens * dim), 1.0f);
    backend_moe_experts ec = {gate, up, down, gate_t, gate_t, down_t, n_expert, dim, ff};
    if (backend_moe_ffn(cpu, &ec, x, ids, wts, n_tokens, k, oc, &err)) die("cpu moe_ffn", &err);
    backend *bs[2] = {gpu, per_pair};
    float *outs[2] = {oh, op};
    for (int i = 0; i < 2; i++) {
        const void *gd, *ud, *dd;
        if (backend_upload_weight(bs[i], gate, up_bytes, &gd, &err) || backend_upload_weight(bs[i], up, up_bytes, &ud, &err) ||
            backend_upload_weight(bs[i], down, dn_bytes, &dd, &err))
            die("upload", &err);
        backend_moe_experts eg = {gd, ud, dd, gate_t, gate_t, down_t, n_expert, dim, ff};
        int32_t *idg = (int32_t *)buf_from(bs[i], (const float *)ids, (size_t)n_pairs);
        float *wg = buf_from(bs[i], wts, (size_t)n_pairs), *xg = buf_from(bs[i], x, (size_t)(n_tokens * dim)),
              *og = buf_from(bs[i], NULL, (size_t)(n_tokens * dim));
        if (backend_moe_ffn(bs[i], &eg, xg, idg, wg, n_tokens, k, og, &err)) die("moe_ffn", &err);
        buf_to(bs[i], outs[i], og, (size_t)(n_tokens * dim));
        backend_buffer_free(bs[i], idg), backend_buffer_free(bs[i], wg), backend_buffer_free(bs[i], xg),
            backend_buffer_free(bs[i], og);
    }
    char what[160];
    snprintf(what, sizeof what, "moe_ffn grouped %s/%s %d experts top %d, %lld tokens vs per-pair",
             tensor_type_get(gate_t)->name, tensor_type_get(down_t)->name, n_expert, k, (long long)n_tokens);
    /* f16 weights and x move gate and up by ~5e-4; where the down's type
     * re-rounds h to 8 bits (every quantized type) that moves some quants by
     * a whole step: 2.3e-3..3.2e-3 measured on an H100, 3.4e-4 for f16/bf16 */
    const bool h_rounded = quant_vec_dot_type(down_t) != TYPE_F32;
    check(what, rel_errf(oh, op, (size_t)(n_tokens * dim)), h_rounded ? 6e-3 : 1e-3);
    snprintf(what, sizeof what, "moe_ffn grouped %s/%s %d experts top %d, %lld tokens vs cpu",
             tensor_type_get(gate_t)->name, tensor_type_get(down_t)->name, n_expert, k, (long long)n_tokens);
    check(what, rel_errf(oh, oc, (size_t)(n_tokens * dim)), h_rounded ? 6e-3 : 1e-3);
    free(ids), free(wts), free(gate), free(up), free(down), free(row), free(x), free(oc), free(oh), free(op);
}

/* A CUDA backend made with the environment setting "NAME=value". */
static backend *gpu_with_env(const char *setting, const backend_options *opt) {
    larder_error err = {0};
    char name[64];
    const char *eq = strchr(setting, '=');
    if (!eq || (size_t)(eq - setting) >= sizeof name) die("gpu_with_env", &err);
    memcpy(name, setting, (size_t)(eq - setting));
    name[eq - setting] = 0;
    const char *prev = getenv(name);
    char saved[64] = "";
    if (prev) snprintf(saved, sizeof saved, "%s", prev);
    setenv(name, eq + 1, 1);
    backend *b = backend_create("cuda", opt, &err);
    if (prev) setenv(name, saved, 1);
    else unsetenv(name);
    if (!b) die("cuda backend", &err);
    return b;
}

/* ---- MMQ (cuda_mmq.cu: 8-bit activations times int8 weight quants on the
 * integer tensor cores, LARDER_CUDA_MMQ=1) */

static uint32_t urand(uint32_t bound) { /* uniform in [0, bound) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)((rng >> 32) % bound);
}

/* A rows x cols weight of `type` whose every block is drawn at random from a
 * pool of quantized blocks of random scale (quantizing 60M elements row by
 * row would take minutes): each (row, block) position holds its own draw,
 * so a wrong row or block index shows. */
static uint8_t *make_pool_weight(uint32_t type, int64_t rows, int64_t cols) {
    enum { POOL = 1021 };
    const tensor_type_traits *tt = tensor_type_get(type);
    const int64_t be = tt->block_elems, nb = cols / be;
    const size_t bb = tt->block_bytes, rb = tensor_row_bytes(type, cols);
    float *f = malloc((size_t)(POOL * be) * sizeof *f);
    uint8_t *pool = malloc((size_t)POOL * bb), *w = malloc(rb * (size_t)rows);
    if (!f || !pool || !w) {
        fprintf(stderr, "cuda_ops_check: out of memory\n");
        exit(2);
    }
    for (int p = 0; p < POOL; p++) {
        const float scale = 0.05f + 2.0f * (frand() + 1.0f);
        fill(f + p * be, (size_t)be, scale);
    }
    larder_error err = {0};
    if (quantize_row(type, f, pool, POOL * be)) die("quantize", &err);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) memcpy(w + (size_t)r * rb + (size_t)b * bb, pool + (size_t)urand(POOL) * bb, bb);
    free(f), free(pool);
    return w;
}

/* The MMQ product (backend `mq`, LARDER_CUDA_MMQ=1) of one weight with x of
 * each n in ns against the CPU backend's product (`ref`): equal up to the
 * order of float additions (the integer dots are exact), so 1e-5; outputs
 * poisoned with NaN first. With `f16` (the f16 tensor-core path) the error
 * of that path against the CPU is printed beside it, and the MMQ's must be
 * at most a tenth of it. */
static void check_mmq(backend *mq, backend *ref, backend *f16, uint32_t type, int64_t rows, int64_t cols,
                      const int64_t *ns, int n_ns) {
    larder_error err = {0};
    const size_t rb = tensor_row_bytes(type, cols);
    uint8_t *w = make_pool_weight(type, rows, cols);
    const void *wd, *wf16 = NULL;
    if (backend_upload_weight(mq, w, rb * (size_t)rows, &wd, &err)) die("upload", &err);
    if (f16 && backend_upload_weight(f16, w, rb * (size_t)rows, &wf16, &err)) die("upload", &err);
    for (int j = 0; j < n_ns; j++) {
        const int64_t n = ns[j];
        const size_t nx = (size_t)(n * cols), ny = (size_t)(n * rows);
        float *x = malloc(nx * sizeof *x), *yc = malloc(ny * sizeof *yc), *yh = malloc(ny * sizeof *yh);
        fill(x, nx, 1.0f);
        if (backend_matmul(ref, w, type, rows, cols, x, n, yc, &err)) die("cpu matmul", &err);
        float *xg = buf_from(mq, x, nx), *yg = buf_from(mq, NULL, ny);
        if (backend_matmul(mq, wd, type, rows, cols, xg, n, yg, &err)) die("mmq matmul", &err);
        buf_to(mq, yh, yg, ny);
        const double e = rel_errf(yh, yc, ny);
        char what[200];
        if (f16) {
            float *xf = buf_from(f16, x, nx), *yf = buf_from(f16, NULL, ny);
            if (backend_matmul(f16, wf16, type, rows, cols, xf, n, yf, &err)) die("f16 matmul", &err);
            buf_to(f16, yh, yf, ny);
            const double ef = rel_errf(yh, yc, ny);
            snprintf(what, sizeof what, "mmq %-5s %lldx%lld n=%lld vs cpu (f16 gemm vs cpu %.2g; mmq < f16/10)",
                     tensor_type_get(type)->name, (long long)rows, (long long)cols, (long long)n, ef);
            check(what, e, ef / 10 < 1e-5 ? ef / 10 : 1e-5);
            backend_buffer_free(f16, xf), backend_buffer_free(f16, yf);
        } else {
            snprintf(what, sizeof what, "mmq %-5s %lldx%lld n=%lld vs cpu", tensor_type_get(type)->name,
                     (long long)rows, (long long)cols, (long long)n);
            check(what, e, 1e-5);
        }
        backend_buffer_free(mq, xg), backend_buffer_free(mq, yg);
        free(x), free(yc), free(yh);
    }
    free(w);
}

/* Matrices of different types times one x in one backend_matmul_multi call
 * (the MMQ quantizes x once per activation type) against the CPU. */
static void check_mmq_multi(backend *mq, backend *ref, int64_t n) {
    larder_error err = {0};
    enum { NM = 4 };
    const uint32_t types[NM] = {TYPE_Q4_K, TYPE_Q6_K, TYPE_Q8_0, TYPE_Q4_1};
    const int64_t cols = 512, rows[NM] = {300, 64, 129, 77};
    float *x = malloc((size_t)(n * cols) * sizeof *x);
    fill(x, (size_t)(n * cols), 1.0f);
    float *xg = buf_from(mq, x, (size_t)(n * cols));
    backend_matmul_weight mats[NM];
    uint8_t *w[NM];
    for (int i = 0; i < NM; i++) {
        w[i] = make_pool_weight(types[i], rows[i], cols);
        const void *wd;
        if (backend_upload_weight(mq, w[i], tensor_row_bytes(types[i], cols) * (size_t)rows[i], &wd, &err))
            die("upload", &err);
        mats[i] = (backend_matmul_weight){wd, types[i], rows[i], buf_from(mq, NULL, (size_t)(n * rows[i]))};
    }
    if (backend_matmul_multi(mq, mats, NM, cols, xg, n, &err)) die("matmul_multi", &err);
    double worst = 0;
    for (int i = 0; i < NM; i++) {
        const size_t m = (size_t)(n * rows[i]);
        float *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b);
        buf_to(mq, a, mats[i].y, m);
        if (backend_matmul(ref, w[i], types[i], rows[i], cols, x, n, b, &err)) die("cpu matmul", &err);
        const double e = rel_errf(a, b, m);
        if (e > worst) worst = e;
        free(a), free(b), free(w[i]);
        backend_buffer_free(mq, mats[i].y);
    }
    char what[128];
    snprintf(what, sizeof what, "mmq matmul_multi q4_k+q6_k+q8_0+q4_1 n=%lld vs cpu", (long long)n);
    check(what, worst, 1e-5);
    backend_buffer_free(mq, xg);
    free(x);
}

/* A CUDA backend with the MMQ on (LARDER_CUDA_MMQ=1), its tile forced
 * (LARDER_CUDA_MMQ_TILE=tile: 1 64x128, 2 64x64, 3 128x128) when tile is
 * not NULL. */
static backend *gpu_with_mmq(const char *tile, const backend_options *opt) {
    larder_error err = {0};
    setenv("LARDER_CUDA_MMQ", "1", 1);
    if (tile) setenv("LARDER_CUDA_MMQ_TILE", tile, 1);
    backend *b = backend_create("cuda", opt, &err);
    setenv("LARDER_CUDA_MMQ", "0", 1), unsetenv("LARDER_CUDA_MMQ_TILE"); /* the baseline (main) */
    if (!b) die("cuda backend", &err);
    return b;
}

static void check_mmq_all(const backend_options *opt) {
    larder_error err = {0};
    backend_options ref_opt = *opt;
    ref_opt.n_threads = 16; /* the CPU reference of the large shapes */
    backend *ref = backend_create("cpu", &ref_opt, &err);
    if (!ref) die("cpu backend", &err);
    backend *mq = gpu_with_mmq(NULL, opt), *forced[3] = {gpu_with_mmq("1", opt), gpu_with_mmq("2", opt),
                                                          gpu_with_mmq("3", opt)};
    printf("-- mmq (LARDER_CUDA_MMQ=1)\n");
    const int64_t ns[5] = {9, 16, 64, 100, 512};
    /* the Q4_K_M types at the Llama-3-8B shapes; against the f16 GEMM too */
    const uint32_t main_types[4] = {TYPE_Q4_K, TYPE_Q6_K, TYPE_Q5_K, TYPE_Q8_0};
    for (int i = 0; i < 4; i++) {
        check_mmq(mq, ref, gpu, main_types[i], 4096, 4096, ns, 5);
        check_mmq(mq, ref, NULL, main_types[i], 14336, 4096, ns, 5);
        check_mmq(mq, ref, NULL, main_types[i], 4096, 14336, ns, 5);
    }
    /* every MMQ type: rows not a multiple of the tile (333: K split at small
     * n; 4097: a last row alone), legacy rows of 544 columns (a part step of
     * one block); automatic tile, then 64x128, 64x64, 128x128 forced */
    const uint32_t all[9] = {TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1, TYPE_Q8_0,
                             TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K};
    const int64_t ns_small[4] = {9, 33, 77, 300};
    for (int i = 0; i < 9; i++) {
        const int64_t cols = tensor_type_get(all[i])->block_elems == 256 ? 768 : 544;
        check_mmq(mq, ref, gpu, all[i], 333, cols, ns_small, 4);
        for (int f = 0; f < 3; f++) check_mmq(forced[f], ref, NULL, all[i], 333, cols, ns_small, 4);
        const int64_t n130[1] = {130};
        check_mmq(mq, ref, NULL, all[i], 4097, 512, n130, 1);
    }
    check_mmq_multi(mq, ref, 40);
    check_mmq_multi(mq, ref, 200);
    for (int f = 0; f < 3; f++) backend_free(forced[f]);
    backend_free(mq), backend_free(ref);
}

/* A CUDA backend made with LARDER_CUDA_GEMM=value (the matmul path it takes). */
static backend *gpu_with_gemm(const char *value, const backend_options *opt) {
    larder_error err = {0};
    setenv("LARDER_CUDA_GEMM", value, 1);
    backend *b = backend_create("cuda", opt, &err);
    unsetenv("LARDER_CUDA_GEMM");
    if (!b) die("cuda backend", &err);
    return b;
}

int main(int argc, char **argv) {
    larder_error err = {0};
    backend_options opt = {.n_threads = 4, .device = 0};
    const bool mmq_only = argc == 2 && !strcmp(argv[1], "--mmq"); /* only the MMQ checks */
    if (argc > 1 && !mmq_only) {
        fprintf(stderr, "usage: cuda_ops_check [--mmq]\n");
        return 2;
    }
    if (!(cpu = backend_create("cpu", &opt, &err))) die("cpu backend", &err);
    /* The baseline of every backend made here: the scalar attention kernel
     * and the f16 tensor-core product for n > 8 (the paths most checks were
     * written for); the flash attention and the MMQ, the runtime's
     * defaults, have their own sections, which name them. */
    setenv("LARDER_CUDA_FA", "0", 1), setenv("LARDER_CUDA_MMQ", "0", 1);
    if (!(gpu = backend_create("cuda", &opt, &err))) die("cuda backend", &err);
    if (mmq_only) {
        check_mmq_all(&opt);
        backend_free(cpu), backend_free(gpu);
        printf("%d passed, %d failed\n", n_pass, n_fail);
        return n_fail ? 1 : 0;
    }
    const uint32_t types[] = {TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q4_0, TYPE_Q4_1, TYPE_Q5_0, TYPE_Q5_1,
                              TYPE_Q8_0, TYPE_Q2_K, TYPE_Q3_K, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_matmul(types[i], 300, 512, 1);
        check_matmul(types[i], 300, 512, 5);
        check_matmul(types[i], 300, 512, 77);
        check_get_rows(types[i], 512);
    }
    check_matmul(TYPE_Q4_K, 1000, 1024, 300);
    check_matmul(TYPE_Q4_K, 8190, 512, 1);  /* enough rows for 4 rows a warp, and a ragged last warp */
    check_matmul(TYPE_Q6_K, 4094, 512, 3);  /* 2 rows a warp */
    check_matmul(TYPE_Q8_0, 8192, 256, 8);
    /* quantized tensor-core product: every type, the automatic tile and each forced tile */
    {
        enum { NG = 7 };
        backend *gs[NG] = {gpu};
        const char *names[NG] = {"auto", "64x128", "64x64", "64x32", "128x64", "128x128/k128", "64x128/k128"};
        for (int g = 1; g < NG; g++) {
            char v[8];
            snprintf(v, sizeof v, "%d", g + 2); /* LARDER_CUDA_GEMM=3..8: tile g - 1 forced */
            gs[g] = gpu_with_gemm(v, &opt);
        }
        const int64_t ns[5] = {9, 64, 77, 300, 512};
        for (size_t i = 1; i < sizeof types / sizeof types[0]; i++) { /* not F32 (GEMV) */
            /* 544 columns: 2 slices and a part slice of one chunk (odd steps of 128 too); 333 rows:
             * few tiles, so K is split */
            int64_t cols = tensor_type_get(types[i])->block_elems == 256 ? 768 : 544;
            for (int j = 0; j < 5; j++) check_qgemm(gs, names, NG, types[i], 333, cols, ns[j]);
        }
        check_qgemm(gs, names, NG, TYPE_Q6_K, 4097, 512, 130);  /* many row tiles, a last row alone */
        check_qgemm(gs, names, NG, TYPE_Q4_K, 8191, 4096, 64);  /* 16 slices, K split or not */
        check_qgemm(gs, names, NG, TYPE_Q4_0, 1000, 4096, 600); /* 600 tokens: 5 token tiles of 128 */
        for (int g = 1; g < NG; g++) backend_free(gs[g]);
    }
    check_mmq_all(&opt);
    check_matmul(TYPE_F32, 33, 72, 3);   /* widths not a multiple of 32: scalar kernel */
    check_matmul(TYPE_F16, 33, 72, 20);
    check_get_rows(TYPE_F16, 72);
    check_matmul_multi(TYPE_Q4_K, 1);
    check_matmul_multi(TYPE_Q8_0, 40);
    /* The default backend takes the 8-bit GEMV (dp4a on the activations'
     * quants) and the launch fusions; the other forms, each on its own
     * backend made with the switch that selects it: */
    {
        backend *plain = gpu;
        gpu = gpu_with_env("LARDER_CUDA_MMVQ=0", &opt), gpu_mmvq = false;
        printf("-- LARDER_CUDA_MMVQ=0 (f32 activations in the GEMV)\n");
        for (size_t i = 3; i < sizeof types / sizeof types[0]; i++) { /* the quantized ones */
            check_matmul(types[i], 300, 512, 1);
            check_matmul(types[i], 300, 512, 5);
        }
        check_matmul(TYPE_Q4_K, 8190, 512, 1); /* 4 rows a block, a ragged last block */
        check_matmul(TYPE_Q6_K, 4094, 512, 3);
        check_matmul_multi(TYPE_Q4_K, 1);
        check_matmul_multi(TYPE_Q6_K, 3);
        check_norm_then_matmul(TYPE_Q4_K, 1);
        check_norm_then_matmul(TYPE_Q4_1, 2);
        check_silu_then_matmul(TYPE_Q6_K, 1);
        check_silu_then_matmul(TYPE_Q4_0, 4);
        check_moe(TYPE_Q4_K, TYPE_Q4_K, 128, 8, 1, false);
        check_moe(TYPE_Q4_K, TYPE_Q6_K, 32, 4, 3, false);
        backend_free(gpu);
        gpu = gpu_with_env("LARDER_CUDA_FUSE=0", &opt), gpu_mmvq = true;
        printf("-- LARDER_CUDA_FUSE=0 (a launch per matrix, silu_mul not rounding)\n");
        check_matmul_multi(TYPE_Q4_K, 1);
        check_matmul_multi(TYPE_Q8_0, 6);
        check_silu_then_matmul(TYPE_Q6_K, 1);
        check_silu_then_matmul(TYPE_F32, 2);
        check_norm_then_matmul(TYPE_Q4_K, 1);
        backend_free(gpu);
        gpu = gpu_with_env("LARDER_CUDA_GEMV_V=2", &opt);
        printf("-- LARDER_CUDA_GEMV_V=2 (a warp per rows)\n");
        for (size_t i = 3; i < sizeof types / sizeof types[0]; i++) {
            check_matmul(types[i], 300, 512, 1);
            check_matmul(types[i], 301, 1536, 5);
        }
        check_matmul(TYPE_Q4_K, 8190, 512, 1);  /* 2 rows a warp, a ragged last block */
        check_matmul(TYPE_Q6_K, 4094, 4096, 8);
        check_matmul_multi(TYPE_Q4_K, 1);
        check_norm_then_matmul(TYPE_Q4_K, 1);
        backend_free(gpu);
        gpu = plain;
    }
    /* the default backend: the 8-bit GEMV at 1..8 tokens and the shapes
     * that pick each of its forms (2 rows a block; a warp per rows for the
     * output matrix) */
    for (size_t i = 3; i < sizeof types / sizeof types[0]; i++) {
        check_matmul(types[i], 300, 512, 3);
        check_matmul(types[i], 300, 512, 8);
        check_matmul(types[i], 77, 1536, 2);
    }
    check_matmul(TYPE_Q4_K, 4096, 4096, 1);
    check_matmul(TYPE_Q6_K, 1024, 14336, 1);
    check_matmul(TYPE_Q6_K, 70001, 256, 1); /* > 65536 rows, one token: the warp form */
    check_matmul(TYPE_Q6_K, 70001, 256, 2);
    check_matmul_multi(TYPE_Q6_K, 3);
    check_norm_then_matmul(TYPE_Q4_1, 2);
    check_silu_then_matmul(TYPE_Q5_1, 2);
    check_moe(TYPE_Q8_0, TYPE_Q8_0, 128, 8, 2, true);
    check_small_ops();
    check_norm_then_matmul(TYPE_Q4_K, 1);
    check_norm_then_matmul(TYPE_Q8_0, 3);
    check_norm_then_matmul(TYPE_F16, 8);
    check_silu_then_matmul(TYPE_Q6_K, 1);
    check_silu_then_matmul(TYPE_Q4_0, 4);
    check_silu_then_matmul(TYPE_F32, 2);
    const uint32_t kv_types[] = {TYPE_F16, TYPE_F32, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0};
    for (size_t i = 0; i < sizeof kv_types / sizeof kv_types[0]; i++) {
        check_attention(kv_types[i], 128, 8, 2, 100);
        check_attention(kv_types[i], 64, 4, 4, 50);
    }
    check_attention(TYPE_F16, 128, 32, 8, 1500);  /* llama-3 grouping, split-KV decode */
    check_attention(TYPE_Q8_0, 256, 16, 2, 300);  /* K rotation chunk 256 */
    check_attention(TYPE_F16, 96, 12, 4, 70);     /* head size not a multiple of 64 */
    check_moe(TYPE_F32, TYPE_F32, 16, 4, 1, false);
    check_moe(TYPE_F32, TYPE_F32, 16, 4, 37, true);
    check_moe(TYPE_Q4_K, TYPE_Q4_K, 64, 8, 5, false);
    check_moe(TYPE_Q4_K, TYPE_Q4_K, 128, 8, 1, false); /* a decode step */
    check_moe(TYPE_Q4_K, TYPE_Q6_K, 32, 4, 3, false);  /* gate and up of different types: not fused */
    check_moe(TYPE_Q8_0, TYPE_Q8_0, 128, 8, 20, true);
    /* grouped expert products (n_tokens > 8) against the per-pair path and the cpu */
    {
        backend *per_pair = gpu_with_gemm("1", &opt);
        check_moe_grouped(per_pair, TYPE_Q4_K, TYPE_Q6_K, 8, 2, 600);    /* ~150 pairs an expert: 128-token tiles */
        check_moe_grouped(per_pair, TYPE_Q4_K, TYPE_Q4_K, 16, 4, 9);
        check_moe_grouped(per_pair, TYPE_Q8_0, TYPE_Q8_0, 32, 4, 77);
        check_moe_grouped(per_pair, TYPE_Q4_0, TYPE_Q5_1, 64, 6, 130);
        check_moe_grouped(per_pair, TYPE_Q5_K, TYPE_Q6_K, 128, 8, 300);
        check_moe_grouped(per_pair, TYPE_Q2_K, TYPE_Q3_K, 128, 8, 33);
        check_moe_grouped(per_pair, TYPE_F16, TYPE_BF16, 8, 2, 64);
        backend_free(per_pair);
    }
    check_flash_all(&opt); /* last: new, unverified kernels (a fault here leaves the lines above printed) */
    backend_free(cpu), backend_free(gpu);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
