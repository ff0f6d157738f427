/*
 * cuda_backend.cu — the CUDA implementation of backend.h: creation on one
 * device (--gpu), the ops table, memory (weights copied to device memory
 * once, activation buffers, the KV page region as one device allocation),
 * the step's batch (uploaded in one copy), and the cheap ops (RMSNorm,
 * RoPE, SiLU·mul, residual adds, output rows). Matmuls and embedding rows
 * are cuda_matmul.cu; KV store and attention cuda_attention.cu.
 *
 * Everything runs in order on one stream; backend_sync waits for it.
 * Rounding follows the CPU backend where it is cheap (RMSNorm sums squares
 * in double; RoPE's running angle and fma order are the CPU's), so the two
 * backends differ mostly by summation order; tests/cuda/run.sh holds the
 * tolerances.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_act_round.cuh"

#include <time.h>

extern "C" {
#include "base/log.h"
}

/* ---- errors and memory */

int cuda_check(cudaError_t e, const char *what, larder_error *err) {
    if (e == cudaSuccess) return 0;
    return error_set(err, e == cudaErrorMemoryAllocation ? ERR_NOMEM : ERR_IO, "cuda: %s: %s", what,
                     cudaGetErrorString(e));
}

/* LARDER_CUDA_PROFILE=1: every launch is waited for and its wall time
 * (since the last one ended) added to its name's total; the table goes to
 * the log when the backend is freed. A measuring aid: it serialises the
 * host and the GPU. */
#define PROF_SLOTS 32
static struct { const char *what; double ms; long n; } prof[PROF_SLOTS];
static int prof_on = -1;
static double prof_last_ms;

static double prof_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cuda_check_launch(const char *what, larder_error *err) {
    if (prof_on < 0) prof_on = getenv("LARDER_CUDA_PROFILE") && atoi(getenv("LARDER_CUDA_PROFILE")) == 1;
    if (prof_on) {
        cudaDeviceSynchronize();
        double now = prof_now_ms();
        if (prof_last_ms > 0)
            for (int i = 0; i < PROF_SLOTS; i++)
                if (!prof[i].what || !strcmp(prof[i].what, what)) {
                    prof[i].what = what, prof[i].ms += now - prof_last_ms, prof[i].n++;
                    break;
                }
        prof_last_ms = now;
    }
    return cuda_check(cudaGetLastError(), what, err);
}

/* A gap that is not an op (host work between steps) is not charged. */
static void prof_mark(void) {
    if (prof_on > 0) {
        cudaDeviceSynchronize();
        prof_last_ms = prof_now_ms();
    }
}

static void prof_report(void) {
    if (prof_on <= 0) return;
    for (int i = 0; i < PROF_SLOTS && prof[i].what; i++)
        log_info("cuda profile: %-22s %9.3f ms in %6ld launches, %8.1f us each", prof[i].what, prof[i].ms, prof[i].n,
                 1e3 * prof[i].ms / (double)prof[i].n);
}

void *cuda_alloc(cuda_backend *c, size_t bytes, const char *what, larder_error *err) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaSuccess) return p;
    cudaGetLastError(); /* clear the sticky-free error state */
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    error_set(err, ERR_NOMEM,
              "GPU %d out of memory: %s needs %.1f MiB, %.1f MiB free of %.1f MiB (weights hold %.1f MiB)", c->device,
              what, (double)bytes / 1048576.0, (double)free_b / 1048576.0, (double)total_b / 1048576.0,
              (double)c->weight_bytes / 1048576.0);
    return NULL;
}

int cuda_scratch_reserve(cuda_backend *c, void **p, size_t *cap, size_t bytes, const char *what, larder_error *err) {
    if (bytes <= *cap) return 0;
    size_t nb = *cap ? *cap : 1 << 20;
    while (nb < bytes) nb *= 2;
    if (*p) {
        cudaStreamSynchronize(c->stream); /* earlier ops may still read it */
        cudaFree(*p);
    }
    *p = NULL, *cap = 0;
    c->mem_gen++;
    if (!(*p = cuda_alloc(c, nb, what, err))) return -1;
    *cap = nb;
    return 0;
}

static int cu_upload_weight(backend *b, const void *data, size_t bytes, const void **dev, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    if (c->n_weights == c->cap_weights) {
        size_t nc = c->cap_weights ? 2 * c->cap_weights : 256;
        void **w = (void **)realloc(c->weights, nc * sizeof *w);
        if (!w) return error_set(err, ERR_NOMEM, "out of memory");
        c->weights = w, c->cap_weights = nc;
    }
    void *p = cuda_alloc(c, bytes, "a weight tensor", err);
    if (!p) return -1;
    if (cuda_check(cudaMemcpy(p, data, bytes, cudaMemcpyHostToDevice), "weight upload", err)) {
        cudaFree(p);
        return -1;
    }
    c->weights[c->n_weights++] = p;
    c->weight_bytes += bytes;
    *dev = p;
    return 0;
}

static void *cu_buffer_alloc(backend *b, size_t bytes, larder_error *err) {
    ((cuda_backend *)b)->mem_gen++;
    ((cuda_backend *)b)->xil_src = NULL; /* the memo's source may be this memory again */
    return cuda_alloc((cuda_backend *)b, bytes, "an activation buffer", err);
}

static void cu_buffer_free(backend *b, void *buf) {
    ((cuda_backend *)b)->mem_gen++;
    ((cuda_backend *)b)->xil_src = NULL;
    cudaStreamSynchronize(((cuda_backend *)b)->stream);
    cudaFree(buf);
}

static int cu_buffer_read(backend *b, void *host_dst, const void *buf, size_t bytes, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    if (cuda_check(cudaMemcpyAsync(host_dst, buf, bytes, cudaMemcpyDeviceToHost, c->stream), "buffer read", err))
        return -1;
    return cuda_check(cudaStreamSynchronize(c->stream), "buffer read", err);
}

static int cu_buffer_write(backend *b, void *buf, const void *host_src, size_t bytes, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    c->xil_src = NULL; /* it may overwrite the memo's source */
    if (cuda_check(cudaMemcpyAsync(buf, host_src, bytes, cudaMemcpyHostToDevice, c->stream), "buffer write", err))
        return -1;
    return cuda_check(cudaStreamSynchronize(c->stream), "buffer write", err);
}

/* ---- KV page memory: one device allocation, every page committed */

static size_t cu_kv_page_stride(const backend *b, size_t page_bytes) {
    (void)b;
    return (page_bytes + 255) / 256 * 256;
}

static backend_kv *cu_kv_create(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    size_t stride = cu_kv_page_stride(b, layout->page_bytes);
    if (n_pages == 0 || stride == 0 || (size_t)n_pages > SIZE_MAX / stride) {
        error_set(err, ERR_INVALID, "kv memory: %u pages of %zu bytes", n_pages, stride);
        return NULL;
    }
    backend_kv *m = (backend_kv *)calloc(1, sizeof *m);
    if (!m) {
        error_set(err, ERR_NOMEM, "kv memory: out of memory");
        return NULL;
    }
    c->mem_gen++;
    m->base = (uint8_t *)cuda_alloc(c, (size_t)n_pages * stride, "the KV page pool", err);
    if (!m->base) {
        free(m);
        return NULL;
    }
    cudaMemsetAsync(m->base, 0, (size_t)n_pages * stride, c->stream);
    m->layout = *layout;
    m->stride_bytes = stride;
    m->head_bytes = (size_t)layout->page_tokens * layout->row_bytes;
    m->n_pages = n_pages;
    return m;
}

static void cu_kv_free(backend *b, backend_kv *m) {
    ((cuda_backend *)b)->mem_gen++;
    cudaStreamSynchronize(((cuda_backend *)b)->stream);
    cudaFree(m->base);
    free(m);
}

static void cu_kv_page_release(backend *b, backend_kv *m, uint32_t page) {
    (void)b, (void)m, (void)page; /* device memory stays with the pool */
}

static int cu_kv_page_copy(backend *b, backend_kv *m, uint32_t dst, uint32_t src, larder_error *err) {
    if (dst >= m->n_pages || src >= m->n_pages)
        return error_set(err, ERR_INVALID, "kv memory: page copy %u <- %u out of %u pages", dst, src, m->n_pages);
    if (dst == src) return 0;
    return cuda_check(cudaMemcpyAsync(m->base + (size_t)dst * m->stride_bytes, m->base + (size_t)src * m->stride_bytes,
                                      m->layout.page_bytes, cudaMemcpyDeviceToDevice, ((cuda_backend *)b)->stream),
                      "kv page copy", err);
}

static int cu_kv_page_read(backend *b, const backend_kv *m, uint32_t page, void *host_dst, larder_error *err) {
    if (page >= m->n_pages) return error_set(err, ERR_INVALID, "kv memory: page %u out of %u", page, m->n_pages);
    return cu_buffer_read(b, host_dst, m->base + (size_t)page * m->stride_bytes, m->layout.page_bytes, err);
}

static int cu_kv_page_write(backend *b, backend_kv *m, uint32_t page, const void *host_src, larder_error *err) {
    if (page >= m->n_pages) return error_set(err, ERR_INVALID, "kv memory: page %u out of %u", page, m->n_pages);
    return cu_buffer_write(b, m->base + (size_t)page * m->stride_bytes, host_src, m->layout.page_bytes, err);
}

/* ---- CUDA graphs of decode steps
 *
 * Unless LARDER_CUDA_GRAPH=0, a decode step (every token from its own
 * sequence, at most 8) is captured into a graph the second time a step of
 * the same shape (tokens, sequences, page-table width, output rows) comes,
 * and replayed for every later one: the ops return at once and the graph
 * runs at backend_sync. The step's batch is uploaded before the graph
 * runs, so positions and page tables are the step's own. Any change of a
 * device pointer an op uses (buffers, scratch, the batch block) bumps
 * mem_gen and retires the graph. Attention sizes its key splits from the
 * page-table width in a graph step, so the launch shape holds across the
 * steps that share it. */

static int graph_begin_step(cuda_backend *c, const backend_batch *in, larder_error *err) {
    if (!c->graph_enabled || in->n_tokens == 0 || in->n_tokens != in->n_seqs || in->n_tokens > c->graph_max_tokens)
        return 0;
    const int32_t key[4] = {in->n_tokens, in->n_seqs, in->max_pages, in->n_out};
    if (c->graph_exec && !memcmp(key, c->graph_key, sizeof key) && c->graph_mem_gen == c->mem_gen) {
        c->graph_mode = CUDA_GRAPH_REPLAY;
    } else if (c->last_key_valid && !memcmp(key, c->last_key, sizeof key) && c->last_mem_gen == c->mem_gen) {
        if (cuda_check(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeRelaxed), "graph capture", err)) return -1;
        c->graph_mode = CUDA_GRAPH_CAPTURE;
        memcpy(c->graph_key, key, sizeof key);
    }
    memcpy(c->last_key, key, sizeof key);
    c->last_mem_gen = c->mem_gen;
    c->last_key_valid = true;
    return 0;
}

/* At sync: ends a capture (instantiating the graph) and runs the graph. */
static int graph_end_step(cuda_backend *c, larder_error *err) {
    int mode = c->graph_mode;
    c->graph_mode = CUDA_GRAPH_OFF;
    if (mode == CUDA_GRAPH_CAPTURE) {
        cudaGraph_t g = NULL;
        if (cuda_check(cudaStreamEndCapture(c->stream, &g), "graph capture", err)) return -1;
        if (c->graph_exec) cudaGraphExecDestroy(c->graph_exec);
        c->graph_exec = NULL;
        cudaError_t e = cudaGraphInstantiate(&c->graph_exec, g, 0);
        cudaGraphDestroy(g);
        if (cuda_check(e, "graph instantiate", err)) {
            c->graph_exec = NULL;
            return -1;
        }
        c->graph_mem_gen = c->mem_gen;
        mode = CUDA_GRAPH_REPLAY;
    }
    if (mode == CUDA_GRAPH_REPLAY) return cuda_check(cudaGraphLaunch(c->graph_exec, c->stream), "graph launch", err);
    return 0;
}

/* ---- the step's batch */

static int cu_batch_set(backend *b, const backend_batch *in, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    cuda_batch *bt = &c->batch;
    c->xil_src = NULL, c->norm_out = NULL, c->silu_out = NULL; /* a new step: no activation is current */
    if (in->n_tokens < 0 || in->n_seqs < 0 || in->max_pages < 0 || in->n_out < 0 || in->n_out > in->n_tokens)
        return error_set(err, ERR_INVALID, "batch: negative or inconsistent sizes");
    for (int32_t t = 0; t < in->n_tokens; t++)
        if (in->seq[t] < 0 || in->seq[t] >= in->n_seqs || in->pos[t] < 0)
            return error_set(err, ERR_INVALID, "batch: token %d has sequence %d of %d, position %d", t, in->seq[t],
                             in->n_seqs, in->pos[t]);
    for (int32_t i = 0; i < in->n_out; i++)
        if (in->out_rows[i] < 0 || in->out_rows[i] >= in->n_tokens || (i > 0 && in->out_rows[i] <= in->out_rows[i - 1]))
            return error_set(err, ERR_INVALID, "batch: output rows must ascend within the batch");
    if (c->graph_mode == CUDA_GRAPH_CAPTURE) { /* the last step failed mid-capture: drop it */
        cudaGraph_t g = NULL;
        cudaStreamEndCapture(c->stream, &g);
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
    }
    c->graph_mode = CUDA_GRAPH_OFF;
    const size_t n = (size_t)in->n_tokens, cells = (size_t)in->n_seqs * (size_t)in->max_pages;
    const size_t bytes = (3 * n + (size_t)in->n_out + 2 * (size_t)in->n_seqs + cells + 1) * 4;
    /* the staging block may still feed the last step's copy */
    if (cuda_check(cudaStreamSynchronize(c->stream), "batch", err)) return -1;
    prof_mark();
    if (bytes > bt->block_cap_bytes) {
        size_t cap = bt->block_cap_bytes ? bt->block_cap_bytes : 4096;
        while (cap < bytes) cap *= 2;
        c->mem_gen++;
        cudaFree(bt->dev_block), cudaFreeHost(bt->host_block);
        bt->dev_block = bt->host_block = NULL, bt->block_cap_bytes = 0;
        if (!(bt->dev_block = cuda_alloc(c, cap, "the batch descriptor", err))) return -1;
        if (cuda_check(cudaMallocHost(&bt->host_block, cap), "batch staging", err)) return -1;
        bt->block_cap_bytes = cap;
    }
    int32_t *h = (int32_t *)bt->host_block, *d = (int32_t *)bt->dev_block;
    size_t off = 0;
#define CU_PLACE(name, type, count)                                                                                    \
    bt->h_##name = (type *)(h + off), bt->name = (type *)(d + off), off += (count)
    CU_PLACE(tokens, int32_t, n);
    CU_PLACE(pos, int32_t, n);
    CU_PLACE(seq, int32_t, n);
    CU_PLACE(out_rows, int32_t, (size_t)in->n_out);
    CU_PLACE(keep, int32_t, (size_t)in->n_seqs);
    CU_PLACE(window, int32_t, (size_t)in->n_seqs);
    CU_PLACE(page_table, uint32_t, cells);
#undef CU_PLACE
    if (n) {
        memcpy(bt->h_tokens, in->tokens, n * 4);
        memcpy(bt->h_pos, in->pos, n * 4);
        memcpy(bt->h_seq, in->seq, n * 4);
    }
    if (in->n_out) memcpy(bt->h_out_rows, in->out_rows, (size_t)in->n_out * 4);
    if (in->n_seqs) {
        memcpy(bt->h_keep, in->keep_tokens, (size_t)in->n_seqs * 4);
        memcpy(bt->h_window, in->window_tokens, (size_t)in->n_seqs * 4);
    }
    if (cells) memcpy(bt->h_page_table, in->page_table, cells * 4);
    bt->n_tokens = in->n_tokens, bt->n_seqs = in->n_seqs, bt->max_pages = in->max_pages, bt->n_out = in->n_out;
    c->tiles_group = 0; /* attention tiles are cut again for this step */
    c->tiles_cut_this_step = false;
    if (cuda_check(cudaMemcpyAsync(bt->dev_block, bt->host_block, off * 4, cudaMemcpyHostToDevice, c->stream),
                   "batch upload", err))
        return -1;
    return graph_begin_step(c, in, err);
}

/* ---- elementwise ops */

#define EW_THREADS 256
static unsigned ew_blocks(int64_t n) { return (unsigned)((n + EW_THREADS - 1) / EW_THREADS); }

/* The sum over the block (<= 32 warps) of each thread's ss: lanes by
 * shuffles, then warp sums by the first warp; every thread of the block
 * calls it and gets the total. */
__device__ __forceinline__ double rms_block_sum(double ss) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        double t = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (threadIdx.x == 0) part[0] = t;
    }
    __syncthreads();
    return part[0];
}

/* One block per row: squares rounded to f32 and summed in double, the
 * mean rounded to f32 (the CPU's steps). */
/* y = x / sqrt(mean(x²) + eps) · w, one block per row; the squares summed
 * in double, as the CPU. With ROUND the block then rounds its row for act
 * type A, for the product that follows (cuda_act_round.cuh), into x_il. */
template <bool ROUND, int A, int LAYOUT>
__global__ void k_rmsnorm(const float *x, const float *w, float *y, int64_t dim, float eps, void *x_r,
                          int64_t il_stride) {
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *yr = y + (int64_t)blockIdx.x * dim;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)__fmul_rn(xr[i], xr[i]);
    const float mean = (float)(rms_block_sum(ss) / (double)dim);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
    if (!ROUND) return;
    __syncthreads(); /* the row's y is written: each warp rounds its 256-element groups */
    const int64_t groups = (dim + 255) / 256;
    for (int64_t g = threadIdx.x >> 5; g < groups; g += blockDim.x >> 5)
        act_round_group<A, LAYOUT>(yr, dim, g, (int64_t)blockIdx.x * il_stride * 4, x_r);
}

/* The same for rows of dim = 8·blockDim.x (a multiple of 256, at most
 * 8192): thread i owns elements [8i, 8i + 8), loaded in two 16-byte reads
 * issued together (the kernel is one block a row: its time is the latency
 * of its loads, not bandwidth), and warp w's 256 elements are the rounding
 * group w, rounded from registers. */
template <bool ROUND, int A, int LAYOUT>
__global__ void __launch_bounds__(1024)
    k_rmsnorm8(const float *x, const float *w, float *y, int64_t dim, float eps, void *x_r, int64_t il_stride) {
    const float4 *xr = (const float4 *)(x + (int64_t)blockIdx.x * dim) + 2 * threadIdx.x;
    const float4 *wr = (const float4 *)w + 2 * threadIdx.x;
    const float4 x0 = xr[0], x1 = xr[1], w0 = wr[0], w1 = wr[1];
    float v[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
    const float ww[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
    double ss = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) ss += (double)__fmul_rn(v[i], v[i]);
    const float mean = (float)(rms_block_sum(ss) / (double)dim);
    const float scale = 1.0f / sqrtf(mean + eps);
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = __fmul_rn(__fmul_rn(v[i], scale), ww[i]);
    float4 *yr = (float4 *)(y + (int64_t)blockIdx.x * dim) + 2 * threadIdx.x;
    yr[0] = make_float4(v[0], v[1], v[2], v[3]), yr[1] = make_float4(v[4], v[5], v[6], v[7]);
    if (ROUND) act_round_vals<A, LAYOUT>(v, dim, 8 * (int64_t)threadIdx.x, (int64_t)blockIdx.x * il_stride * 4, x_r);
}

/* The same for short rows (dim a multiple of 32, at most 256: Qwen3's
 * per-head q/k norms of 128): a warp per row, 4 rows a block. */
__global__ void __launch_bounds__(128)
    k_rmsnorm_warp(const float *x, const float *w, float *y, int64_t n, int32_t dim, float eps) {
    const int64_t row = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (row >= n) return;
    const int lane = threadIdx.x & 31, per = dim / 32;
    const float *xr = x + row * dim;
    float v[8];
    double ss = 0;
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (i < per) v[i] = xr[i * 32 + lane], ss += (double)__fmul_rn(v[i], v[i]);
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float mean = (float)(ss / (double)dim);
    const float scale = 1.0f / sqrtf(mean + eps);
    float *yr = y + row * dim;
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (i < per) yr[i * 32 + lane] = __fmul_rn(__fmul_rn(v[i], scale), w[i * 32 + lane]);
}

/* rmsnorm; when the product that read this norm's output last time rounded
 * it for act type A (norm_act), the norm rounds it too, into mm_xil, and
 * records that (xil_src): the product then skips its own rounding. */
static int cu_rmsnorm(backend *b, const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps,
                      larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    if (n <= 0) return 0;
    if (n > INT32_MAX) return error_set(err, ERR_INVALID, "rmsnorm: %lld rows", (long long)n);
    const unsigned threads = dim >= 1024 ? 256 : 128;
    const unsigned slot = cuda_norm_slot(w);
    const uint32_t act = c->norm_acts[slot].w == w ? c->norm_acts[slot].act : QUANT_NO_TYPE;
    const bool fuse = (act == TYPE_F32 || act == TYPE_Q8_0 || act == TYPE_Q8_1 || act == TYPE_Q8_K) && dim % 32 == 0 &&
                      (act != TYPE_Q8_K || dim % 256 == 0) && n <= 8; /* products of <= 8 tokens take the GEMV */
    c->norm_out = y, c->norm_w = w;
    /* rows of 256·k floats (k <= 32) at 16-byte aligned addresses: a thread per 8 */
    const bool by8 = dim % 256 == 0 && dim <= 8192 && ((uintptr_t)x | (uintptr_t)y | (uintptr_t)w) % 16 == 0;
    const unsigned threads8 = (unsigned)(dim / 8);
    if (!fuse && dim % 32 == 0 && dim <= 256) {
        k_rmsnorm_warp<<<(unsigned)((n + 3) / 4), 128, 0, c->stream>>>(x, w, y, n, (int32_t)dim, eps);
        return cuda_check_launch("rmsnorm", err);
    }
    if (!fuse) {
        if (by8) k_rmsnorm8<false, TYPE_F32, ACT_LAYOUT_IL><<<(unsigned)n, threads8, 0, c->stream>>>(x, w, y, dim, eps, NULL, 0);
        else k_rmsnorm<false, TYPE_F32, ACT_LAYOUT_IL><<<(unsigned)n, threads, 0, c->stream>>>(x, w, y, dim, eps, NULL, 0);
        return cuda_check_launch("rmsnorm", err);
    }
    const int64_t il_stride = cuda_act_il_stride(dim);
    if (cuda_scratch_reserve(c, &c->mm_xil, &c->mm_xil_bytes, (size_t)n * (size_t)il_stride * sizeof(float),
                             "matmul activation scratch", err))
        return -1;
    void *xr = c->mm_xil;
    const bool q8 = cuda_gemv_layout(c, act) == ACT_LAYOUT_Q8;
#define NORM_LAUNCH(A, L)                                                                                              \
    do {                                                                                                               \
        if (by8) k_rmsnorm8<true, A, L><<<(unsigned)n, threads8, 0, c->stream>>>(x, w, y, dim, eps, xr, il_stride);   \
        else k_rmsnorm<true, A, L><<<(unsigned)n, threads, 0, c->stream>>>(x, w, y, dim, eps, xr, il_stride);         \
    } while (0)
    switch (act) {
    case TYPE_Q8_0: if (q8) NORM_LAUNCH(TYPE_Q8_0, ACT_LAYOUT_Q8); else NORM_LAUNCH(TYPE_Q8_0, ACT_LAYOUT_IL); break;
    case TYPE_Q8_1: if (q8) NORM_LAUNCH(TYPE_Q8_1, ACT_LAYOUT_Q8); else NORM_LAUNCH(TYPE_Q8_1, ACT_LAYOUT_IL); break;
    case TYPE_Q8_K: if (q8) NORM_LAUNCH(TYPE_Q8_K, ACT_LAYOUT_Q8); else NORM_LAUNCH(TYPE_Q8_K, ACT_LAYOUT_IL); break;
    default: NORM_LAUNCH(TYPE_F32, ACT_LAYOUT_IL); break;
    }
#undef NORM_LAUNCH
    c->xil_src = y, c->xil_act = act, c->xil_n = n, c->xil_cols = dim;
    return cuda_check_launch("rmsnorm", err);
}

__global__ void k_add_bias(float *x, const float *bias, int64_t n, int64_t width) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n * width) x[i] += bias[i % width];
}

static int cu_add_bias(backend *b, float *x, const float *bias, int64_t n, int64_t width, larder_error *err) {
    CUDA_OP_BEGIN(b);
    if (n * width <= 0) return 0;
    k_add_bias<<<ew_blocks(n * width), EW_THREADS, 0, ((cuda_backend *)b)->stream>>>(x, bias, n, width);
    return cuda_check_launch("add_bias", err);
}

__global__ void k_add(float *x, const float *y, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

static int cu_add(backend *b, float *x, const float *y, int64_t n, larder_error *err) {
    CUDA_OP_BEGIN(b);
    if (n <= 0) return 0;
    k_add<<<ew_blocks(n), EW_THREADS, 0, ((cuda_backend *)b)->stream>>>(x, y, n);
    return cuda_check_launch("add", err);
}

__global__ void k_silu_mul(float *g, const float *u, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

/* The same for rows of `cols`, each warp then rounding its 256 elements for
 * act type A into x_il (the down product's input, cuda_act_round.cuh). */
template <int A, int LAYOUT>
__global__ void k_silu_mul_round(float *g, const float *u, int64_t rows, int64_t cols, void *x_r,
                                 int64_t il_stride) {
    const int64_t groups = (cols + 255) / 256;
    const int64_t gw = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (gw >= rows * groups) return;
    const int64_t t = gw / groups, grp = gw % groups;
    float *gr = g + t * cols;
    const float *ur = u + t * cols;
    const int64_t k0 = grp * 256 + (threadIdx.x & 31) * 8;
    for (int i = 0; i < 8; i++)
        if (k0 + i < cols) {
            float v = gr[k0 + i];
            gr[k0 + i] = v / (1.0f + expf(-v)) * ur[k0 + i];
        }
    __syncwarp(); /* the warp's own writes are what it rounds */
    act_round_group<A, LAYOUT>(gr, cols, grp, t * il_stride * 4, x_r);
}

/* silu_mul; when the product that read its output last time rounded it for
 * act type A over rows of silu_cols, it rounds it too, into mm_xil, and
 * records that in the memo (as cu_rmsnorm does). */
static int cu_silu_mul(backend *b, float *g, const float *u, int64_t n, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    if (n <= 0) return 0;
    const int64_t cols = c->silu_cols, rows = cols > 0 ? n / cols : 0;
    const uint32_t act = c->silu_act;
    const bool fuse = c->launch_fusions && cols > 0 && n % cols == 0 && rows <= 8 && cols % 32 == 0 &&
                      (act == TYPE_Q8_0 || act == TYPE_Q8_1 || act == TYPE_F32 || (act == TYPE_Q8_K && cols % 256 == 0));
    c->silu_out = g;
    if (!fuse) {
        k_silu_mul<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(g, u, n);
        return cuda_check_launch("silu_mul", err);
    }
    const int64_t il_stride = cuda_act_il_stride(cols);
    if (cuda_scratch_reserve(c, &c->mm_xil, &c->mm_xil_bytes, (size_t)rows * (size_t)il_stride * sizeof(float),
                             "matmul activation scratch", err))
        return -1;
    const int64_t warps = rows * ((cols + 255) / 256);
    const unsigned blocks = (unsigned)((warps + 3) / 4);
    void *xr = c->mm_xil;
    const bool q8 = cuda_gemv_layout(c, act) == ACT_LAYOUT_Q8;
#define SILU_LAUNCH(A, L) k_silu_mul_round<A, L><<<blocks, 128, 0, c->stream>>>(g, u, rows, cols, xr, il_stride)
    switch (act) {
    case TYPE_Q8_0: if (q8) SILU_LAUNCH(TYPE_Q8_0, ACT_LAYOUT_Q8); else SILU_LAUNCH(TYPE_Q8_0, ACT_LAYOUT_IL); break;
    case TYPE_Q8_1: if (q8) SILU_LAUNCH(TYPE_Q8_1, ACT_LAYOUT_Q8); else SILU_LAUNCH(TYPE_Q8_1, ACT_LAYOUT_IL); break;
    case TYPE_Q8_K: if (q8) SILU_LAUNCH(TYPE_Q8_K, ACT_LAYOUT_Q8); else SILU_LAUNCH(TYPE_Q8_K, ACT_LAYOUT_IL); break;
    default: SILU_LAUNCH(TYPE_F32, ACT_LAYOUT_IL); break;
    }
#undef SILU_LAUNCH
    c->xil_src = g, c->xil_act = act, c->xil_n = rows, c->xil_cols = cols;
    return cuda_check_launch("silu_mul", err);
}

/* One block per token: pair i's angle from the running product (the CPU's
 * order: θ_0 = pos, θ_{i+1} = θ_i · theta_scale), cos/sin in shared memory,
 * then every (head, pair) rotated with one rounding per multiply-add. */
#define ROPE_HEADS_PER_BLOCK 4 /* blocks (token, 4 heads): many small blocks, each recomputing the angles */
__global__ void k_rope(float *x, const int32_t *pos, int32_t n_heads, int32_t head_dim, int32_t half,
                       float theta_scale, float freq_scale, const float *factors, int neox) {
    extern __shared__ float cs[]; /* cos (half), sin (half) */
    const int64_t t = blockIdx.x;
    const int32_t h0 = (int32_t)blockIdx.y * ROPE_HEADS_PER_BLOCK;
    const int32_t nh = n_heads - h0 < ROPE_HEADS_PER_BLOCK ? n_heads - h0 : ROPE_HEADS_PER_BLOCK;
    for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
        float theta = (float)pos[t];
        for (int32_t k = 0; k < i; k++) theta = __fmul_rn(theta, theta_scale);
        float angle = __fmul_rn(freq_scale, factors ? __fdiv_rn(theta, factors[i]) : theta);
        cs[i] = cosf(angle);
        cs[half + i] = sinf(angle);
    }
    __syncthreads();
    for (int32_t e = threadIdx.x; e < nh * half; e += blockDim.x) {
        int32_t h = h0 + e / half, i = e % half;
        float *v = x + (t * n_heads + h) * (int64_t)head_dim;
        int32_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
        float a = v[ia], bb = v[ib], c = cs[i], s = cs[half + i];
        v[ia] = fmaf(a, c, -__fmul_rn(bb, s));
        v[ib] = fmaf(a, s, __fmul_rn(bb, c));
    }
}

static int cu_rope(backend *b, float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                   const backend_rope_freqs *freqs, bool neox, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    if (n_rot < 0 || n_rot > head_dim || n_rot % 2)
        return error_set(err, ERR_INVALID, "rope: %d rotated dims of %d", n_rot, head_dim);
    if (c->batch.n_tokens == 0 || n_rot == 0 || n_heads <= 0) return 0;
    int32_t half = n_rot / 2;
    const dim3 grid((unsigned)c->batch.n_tokens, (unsigned)((n_heads + ROPE_HEADS_PER_BLOCK - 1) / ROPE_HEADS_PER_BLOCK));
    k_rope<<<grid, 128, (size_t)2 * half * sizeof(float), c->stream>>>(
        x, c->batch.pos, n_heads, head_dim, half, freqs->theta_scale, freqs->freq_scale, freqs->factors, neox ? 1 : 0);
    return cuda_check_launch("rope", err);
}

__global__ void k_gather_rows(const float *x, float *dst, const int32_t *rows, int32_t n_out, int64_t width) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (int64_t)n_out * width) dst[i] = x[(int64_t)rows[i / width] * width + i % width];
}

static int cu_get_out_rows(backend *b, const float *x, float *dst, int64_t width, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    const int32_t n_out = c->batch.n_out;
    if (n_out == 0 || width <= 0) return 0;
    float *to = dst;
    size_t bytes = (size_t)n_out * (size_t)width * sizeof(float);
    if (dst == x) { /* gather into a scratch, then copy back */
        if (cuda_scratch_reserve(c, (void **)&c->rows_tmp, &c->rows_tmp_bytes, bytes, "output rows", err)) return -1;
        to = c->rows_tmp;
    }
    k_gather_rows<<<ew_blocks((int64_t)n_out * width), EW_THREADS, 0, c->stream>>>(x, to, c->batch.out_rows, n_out, width);
    if (cuda_check_launch("get_out_rows", err)) return -1;
    if (to != dst) return cuda_check(cudaMemcpyAsync(dst, to, bytes, cudaMemcpyDeviceToDevice, c->stream), "get_out_rows", err);
    return 0;
}

static int cu_sync(backend *b, larder_error *err) {
    cuda_backend *c = (cuda_backend *)b;
    if (graph_end_step(c, err)) return -1;
    if (cuda_check(cudaStreamSynchronize(c->stream), "sync", err) || cuda_check_launch("sync", err)) return -1;
    int flags = 0;
    if (cuda_check(cudaMemcpy(&flags, c->dev_flags, sizeof flags, cudaMemcpyDeviceToHost), "sync", err)) return -1;
    if (flags) {
        cudaMemset(c->dev_flags, 0, sizeof(int));
        return error_set(err, ERR_INVALID, "moe ffn: an expert id outside the layer's experts");
    }
    return 0;
}

static int cu_device_memory(const backend *b, size_t *free_bytes, size_t *total_bytes) {
    (void)b;
    return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess ? 0 : -1;
}

/* ---- creation */

static void cu_free(backend *b) {
    cuda_backend *c = (cuda_backend *)b;
    prof_report();
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->graph_exec) cudaGraphExecDestroy(c->graph_exec);
    for (size_t i = 0; i < c->n_weights; i++) cudaFree(c->weights[i]);
    free(c->weights);
    cudaFree(c->batch.dev_block);
    cudaFreeHost(c->batch.host_block);
    cudaFree(c->tiles_dev);
    cudaFreeHost(c->tiles_host);
    cudaFree(c->mm_w16);
    cudaFree(c->mm_x16);
    cudaFree(c->mm_xil);
    cudaFree(c->mm_xq);
    cudaFree(c->moe_xil);
    cudaFree(c->attn_part);
    cudaFree(c->rows_tmp);
    cudaFree(c->moe_scratch);
    cudaFree(c->dev_flags);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static const backend_ops CUDA_OPS = {
    /* .name = */ "cuda",
    /* .free = */ cu_free,
    /* .upload_weight = */ cu_upload_weight,
    /* .buffer_alloc = */ cu_buffer_alloc,
    /* .buffer_free = */ cu_buffer_free,
    /* .buffer_read = */ cu_buffer_read,
    /* .buffer_write = */ cu_buffer_write,
    /* .kv_page_stride = */ cu_kv_page_stride,
    /* .kv_create = */ cu_kv_create,
    /* .kv_free = */ cu_kv_free,
    /* .kv_page_release = */ cu_kv_page_release,
    /* .kv_page_copy = */ cu_kv_page_copy,
    /* .kv_page_read = */ cu_kv_page_read,
    /* .kv_page_write = */ cu_kv_page_write,
    /* .batch_set = */ cu_batch_set,
    /* .get_rows = */ cuda_get_rows,
    /* .matmul_multi = */ cuda_matmul_multi,
    /* .rmsnorm = */ cu_rmsnorm,
    /* .add_bias = */ cu_add_bias,
    /* .add = */ cu_add,
    /* .silu_mul = */ cu_silu_mul,
    /* .rope = */ cu_rope,
    /* .kv_store = */ cuda_kv_store,
    /* .attention = */ cuda_attention,
    /* .get_out_rows = */ cu_get_out_rows,
    /* .sync = */ cu_sync,
    /* .moe_route = */ cuda_moe_route,
    /* .moe_ffn = */ cuda_moe_ffn,
    /* .device_memory = */ cu_device_memory,
};

extern "C" backend *backend_cuda_create(const backend_options *opt, larder_error *err) {
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        cudaGetLastError();
        error_set(err, ERR_UNSUPPORTED, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return NULL;
    }
    int dev = opt ? opt->device : 0;
    if (dev < 0 || dev >= n_dev) {
        error_set(err, ERR_INVALID, "--gpu %d: this machine has %d CUDA device%s", dev, n_dev, n_dev == 1 ? "" : "s");
        return NULL;
    }
    if (cuda_check(cudaSetDevice(dev), "select device", err)) return NULL;
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base.ops = &CUDA_OPS;
    c->device = dev;
    cudaDeviceProp prop;
    if (cuda_check(cudaGetDeviceProperties(&prop, dev), "device properties", err) ||
        cuda_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "stream", err) ||
        !(c->dev_flags = (int *)cuda_alloc(c, sizeof(int), "flags", err)) ||
        cuda_check(cudaMemset(c->dev_flags, 0, sizeof(int)), "flags", err)) {
        cu_free(&c->base);
        return NULL;
    }
    c->n_sm = prop.multiProcessorCount;
    c->smem_optin = (int)prop.sharedMemPerBlockOptin;
    const char *gv = getenv("LARDER_CUDA_GEMM");
    c->gemm_variant = gv ? atoi(gv) : 0;
    const char *gr_rows = getenv("LARDER_CUDA_GEMV_R");
    c->gemv_rows_per_block = gr_rows ? atoi(gr_rows) : 0;
    if (c->gemv_rows_per_block != 1 && c->gemv_rows_per_block != 2 && c->gemv_rows_per_block != 4)
        c->gemv_rows_per_block = 0;
    const char *fuse = getenv("LARDER_CUDA_FUSE"); /* on unless LARDER_CUDA_FUSE=0 */
    c->launch_fusions = !fuse || atoi(fuse) != 0;
    const char *mmq = getenv("LARDER_CUDA_MMQ"); /* the integer MMQ for n > 8 (cuda_mmq.cu): on unless =0 */
    c->mmq_enabled = !mmq || atoi(mmq) != 0;
    const char *mmq_tile = getenv("LARDER_CUDA_MMQ_TILE"); /* 1|2|3 fixes its tile (tests, timing) */
    c->mmq_tile = mmq_tile ? atoi(mmq_tile) : 0;
    const char *gvv = getenv("LARDER_CUDA_GEMV_V");
    c->gemv_variant = gvv ? atoi(gvv) : 0;
    const char *mmvq = getenv("LARDER_CUDA_MMVQ"); /* on unless LARDER_CUDA_MMVQ=0 */
    c->gemv_q8 = !mmvq || atoi(mmvq) != 0;
    const char *fa = getenv("LARDER_CUDA_FA"); /* tensor-core attention (cuda_flash_attn.cu) */
    c->flash_attn = !fa ? 1 : atoi(fa) == 1 || atoi(fa) == 2 ? atoi(fa) : 0;
    c->flash_quant_kv = fa && c->flash_attn != 0; /* named: every KV type the kernel takes */
    const char *gmax = getenv("LARDER_CUDA_GRAPH_MAX"); /* decode steps of up to this many tokens (default 8) */
    c->graph_max_tokens = gmax && atoi(gmax) > 0 && atoi(gmax) <= 256 ? atoi(gmax) : 8;
    const char *gr = getenv("LARDER_CUDA_GRAPH"); /* decode graphs: on unless LARDER_CUDA_GRAPH=0 */
    const char *prof_env = getenv("LARDER_CUDA_PROFILE"); /* profiling waits for each op: no graphs then */
    c->graph_enabled = (!gr || atoi(gr) != 0) && !(prof_env && atoi(prof_env) == 1);
    return &c->base;
}
