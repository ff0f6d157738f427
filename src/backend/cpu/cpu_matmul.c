/*
 * cpu_matmul.c — the matmul driver (see cpu_matmul.h): quantize x once,
 * split the rows of every matrix over the threads, and call the kernels of
 * cpu_kernels.h: the dot kernels on (1 row x up to tile_tokens tokens)
 * tiles, or, in prefill, a type's GEMM kernel on q8 tiles of 8 tokens.
 *
 * Key ideas
 *  - One combined row space: the rows of all matrices of a fused call are
 *    numbered one after another and split evenly (in groups of 4 rows), so
 *    q/k/v (or gate/up) cost one dispatch and every thread gets the same
 *    number of rows.
 *  - Prefill order: for a block of rows that fits in L2 (MATMUL_L2_BLOCK_BYTES
 *    of weights), loop over all token tiles, then over the rows of the block.
 *    The weights come from memory once; the activation tile (a few KiB to a
 *    few tens of KiB) stays in L1/L2 while it meets every row of the block.
 *  - Q8_0 / Q4_0 / Q5_0 prefill packs x into the GEMM kernel's q8 tiles
 *    instead of Q8_0 rows (same quants, laid out for the kernel); the
 *    kernel gets a per-thread scratch (`work`) for per-row precomputation.
 *  - Activation quantization runs in the pool when the batch is large, on
 *    the caller when it is a single row (a dispatch would cost more).
 */
#include "backend/cpu/cpu_matmul.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "tensor/quant.h"

/* Weight bytes per row block in prefill: half of a 1 MiB L2, leaving room
 * for the activation tiles and the output. */
#define MATMUL_L2_BLOCK_BYTES (512 * 1024)

/* Concurrent weight streams per thread in decode (see mm_rows). 1 by
 * default: on the 2-core AMD EPYC (Zen 4) VM, 4 streams took TinyLlama Q8_0
 * decode with the AVX2 kernels from 25-32 to 18-24 tok/s (alternating runs,
 * bench/RESULTS.md, 2026-12-06) and made no difference with AVX-512; one
 * stream is also what the model ran before cpu_matmul became the production
 * driver. Build with -DMATMUL_GEMV_STREAMS=4 to measure more streams on a
 * CPU whose per-core prefetch depth limits one stream (Intel Xeon). */
#ifndef MATMUL_GEMV_STREAMS
#define MATMUL_GEMV_STREAMS 1
#endif

/* Below this much work (weight bytes x tokens) the caller computes alone:
 * waking the other threads would cost more than it saves (~1-2 us). */
#define MATMUL_MIN_PARALLEL_BYTES (64 * 1024)

/* Below this many activation elements, the caller quantizes x itself. */
#define MATMUL_PARALLEL_QUANT_ELEMS 16384

/* Activation types a call may need at once (F32 needs no buffer). */
enum { ACT_Q8_0, ACT_Q8_1, ACT_Q8_K, ACT_SLOTS };

/* Distinct q8 tile layouts a call may need at once (x86: the AVX-512 table
 * has two, broadcast for Q8_0 and sided for Q4_0/Q5_0). */
#define MM_TILE_SLOTS 2

/* One matrix (part) as the workers see it. */
typedef struct mm_mat {
    const uint8_t *w;
    int64_t rows;
    size_t w_row_bytes;
    cpu_dot_fn dot;
    cpu_gemm_fn gemm;       /* prefill on q8 tiles, or NULL */
    int tile_slot;          /* gemm: its tiles in mm_job.tiles */
    int tile;               /* tokens per dot call: the dot's tile_tokens */
    int64_t t0, n_tokens;   /* its run of x's rows */
    const uint8_t *act;     /* its first activation row (or q8 tile) */
    size_t a_row_bytes;
    float *y;               /* (n_tokens, rows) */
    int64_t work_base;      /* work units (4-row groups x tokens) before this part */
} mm_mat;

struct cpu_matmul_ctx {
    void *scratch;          /* quantized x, one region per activation type in use */
    size_t scratch_bytes;
    mm_mat *mats;           /* (mats_cap) the parts of the call being run */
    int mats_cap;
};

cpu_matmul_ctx *cpu_matmul_ctx_create(larder_error *err) {
    cpu_matmul_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) error_set(err, ERR_NOMEM, "out of memory creating the matmul context");
    return ctx;
}

void cpu_matmul_ctx_free(cpu_matmul_ctx *ctx) {
    if (!ctx) return;
    free(ctx->scratch);
    free(ctx->mats);
    free(ctx);
}

static int act_slot(uint32_t atype) {
    switch (atype) {
    case TYPE_Q8_0: return ACT_Q8_0;
    case TYPE_Q8_1: return ACT_Q8_1;
    case TYPE_Q8_K: return ACT_Q8_K;
    default: return -1; /* F32: x itself */
    }
}

typedef struct mm_job {
    mm_mat *mats;
    int n_mats;
    int64_t total_work;     /* work units of all parts */
    int64_t cols, n_tokens; /* n_tokens: rows of x */
    const float *x;         /* (n_tokens, cols) */
    /* quantization phase: each slot in use, its type and row bytes */
    cpu_quantize_fn quant[ACT_SLOTS];
    struct {                /* q8 tile slots in use (pack != NULL) */
        cpu_tile_pack_fn pack;
        int tokens;         /* per tile */
        size_t bytes;       /* of one tile */
        uint8_t *dst;       /* the batch's tiles */
    } tiles[MM_TILE_SLOTS];
    uint8_t *work;          /* the gemm kernels' scratch: work_bytes per thread */
    size_t work_bytes;
    uint8_t *qdst[ACT_SLOTS];
    size_t qrow_bytes[ACT_SLOTS];
} mm_job;

/* Rows of weights per prefill row block (see MATMUL_L2_BLOCK_BYTES), a
 * multiple of 4 (the GEMM kernels' row groups). */
static int64_t mm_block_rows(size_t w_row_bytes) {
    int64_t block = (int64_t)(MATMUL_L2_BLOCK_BYTES / (w_row_bytes ? w_row_bytes : 1)) & ~(int64_t)3;
    return block < 4 ? 4 : block;
}

/* Rows [r0, r1) of one matrix for every token; work: this thread's part of
 * the GEMM kernels' scratch. */
static void mm_rows(const mm_mat *m, int64_t cols, int64_t r0, int64_t r1, void *work) {
    const int64_t n_tokens = m->n_tokens;
    float out[CPU_DOT_MAX_TOKENS];
    if (n_tokens == 1) { /* decode: one pass over the rows (a GEMV) */
        /* MATMUL_GEMV_STREAMS interleaved sequential streams: rows
         * r0 + k*q + i for k < S, i < q. Several memory streams in flight
         * per core reach more of the bandwidth than one on CPUs whose
         * per-core prefetch depth is limited (measured on Intel Xeon). */
        int64_t len = r1 - r0, S = len >= 4 * MATMUL_GEMV_STREAMS ? MATMUL_GEMV_STREAMS : 1;
        int64_t q = len / S;
        for (int64_t i = 0; i < q; i++)
            for (int64_t k = 0; k < S; k++) {
                int64_t r = r0 + k * q + i;
                m->dot(cols, m->w + (size_t)r * m->w_row_bytes, m->act, m->a_row_bytes, 1, out);
                m->y[r] = out[0];
            }
        for (int64_t r = r0 + S * q; r < r1; r++) { /* the len % S rows left */
            m->dot(cols, m->w + (size_t)r * m->w_row_bytes, m->act, m->a_row_bytes, 1, out);
            m->y[r] = out[0];
        }
        return;
    }
    int64_t block = mm_block_rows(m->w_row_bytes);
    if (m->gemm) { /* q8 tiles: the kernel takes a row block and every token */
        for (int64_t rb = r0; rb < r1; rb += block) {
            int64_t re = rb + block < r1 ? rb + block : r1;
            m->gemm(cols, m->w + (size_t)rb * m->w_row_bytes, m->w_row_bytes, re - rb, m->act, n_tokens,
                    m->y + rb, m->rows, work);
        }
        return;
    }
    for (int64_t rb = r0; rb < r1; rb += block) {
        int64_t re = rb + block < r1 ? rb + block : r1;
        for (int64_t t0 = 0; t0 < n_tokens; t0 += m->tile) {
            int nt = n_tokens - t0 < m->tile ? (int)(n_tokens - t0) : m->tile;
            const uint8_t *a = m->act + (size_t)t0 * m->a_row_bytes;
            float *y = m->y + t0 * m->rows;
            for (int64_t r = rb; r < re; r++) {
                m->dot(cols, m->w + (size_t)r * m->w_row_bytes, a, m->a_row_bytes, nt, out);
                for (int t = 0; t < nt; t++) y[t * m->rows + r] = out[t];
            }
        }
    }
}

/* Thread i's share of the work. The rows of every part are cut into
 * groups of 4 (the GEMM kernels' row groups); a group of a part with n
 * tokens weighs n units, and thread i takes the groups whose first unit
 * falls in its even share of all units. Each row's result does not depend on
 * the split. */
static void mm_compute_task(void *arg, int ti, int nt) {
    const mm_job *job = arg;
    int64_t b, e;
    thread_pool_split(job->total_work, ti, nt, &b, &e);
    void *work = job->work ? job->work + (size_t)ti * job->work_bytes : NULL;
    for (int i = 0; i < job->n_mats; i++) {
        const mm_mat *m = &job->mats[i];
        int64_t w = m->n_tokens, groups = (m->rows + 3) / 4;
        if (w < 1 || groups == 0 || m->work_base >= e) continue;
        /* groups g with b <= work_base + g·w < e */
        int64_t g0 = b > m->work_base ? (b - m->work_base + w - 1) / w : 0;
        int64_t g1 = (e - m->work_base + w - 1) / w;
        if (g1 > groups) g1 = groups;
        if (g0 < g1) mm_rows(m, job->cols, 4 * g0, 4 * g1 < m->rows ? 4 * g1 : m->rows, work);
    }
}

/* Quantizes tokens [t0, t1) of x into every slot in use. */
static void mm_quantize_range(const mm_job *job, int64_t t0, int64_t t1) {
    for (int s = 0; s < MM_TILE_SLOTS && job->tiles[s].pack; s++)
        for (int64_t t = t0; t < t1; t++)
            job->tiles[s].pack(job->x + t * job->cols, job->cols, (int)(t % job->tiles[s].tokens),
                               job->tiles[s].dst + (size_t)(t / job->tiles[s].tokens) * job->tiles[s].bytes);
    for (int s = 0; s < ACT_SLOTS; s++) {
        if (!job->quant[s]) continue;
        for (int64_t t = t0; t < t1; t++)
            job->quant[s](job->x + t * job->cols, job->qdst[s] + (size_t)t * job->qrow_bytes[s],
                          job->cols);
    }
}

static void mm_quantize_task(void *arg, int ti, int nt) {
    const mm_job *job = arg;
    int64_t b, e;
    thread_pool_split(job->n_tokens, ti, nt, &b, &e);
    mm_quantize_range(job, b, e);
}

static void pool_run(thread_pool *pool, thread_pool_task fn, void *ctx) {
    if (pool) thread_pool_run(pool, fn, ctx);
    else fn(ctx, 0, 1);
}

/* Grows the scratch to `need` bytes (contents not kept). */
static int scratch_reserve(cpu_matmul_ctx *ctx, size_t need, larder_error *err) {
    if (need <= ctx->scratch_bytes) return 0;
    if (need > CPU_MATMUL_MAX_SCRATCH_BYTES)
        return error_set(err, ERR_LIMIT, "matmul: activation scratch of %zu bytes exceeds the limit of %zu",
                         need, CPU_MATMUL_MAX_SCRATCH_BYTES);
    void *p = aligned_alloc(64, (need + 63) / 64 * 64);
    if (!p) return error_set(err, ERR_NOMEM, "matmul: out of memory for %zu bytes of activations", need);
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_bytes = need;
    return 0;
}

/* Bytes a * b, or SIZE_MAX on overflow. */
static size_t mul_sat(size_t a, size_t b) { return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

/* Room for n parts in ctx->mats. */
static int mats_reserve(cpu_matmul_ctx *ctx, int n, larder_error *err) {
    if (n <= ctx->mats_cap) return 0;
    mm_mat *m = realloc(ctx->mats, (size_t)n * sizeof *m);
    if (!m) return error_set(err, ERR_NOMEM, "matmul: out of memory for %d matrices", n);
    ctx->mats = m;
    ctx->mats_cap = n;
    return 0;
}

int cpu_matmul_parts(cpu_matmul_ctx *ctx, thread_pool *pool, const cpu_matmul_part *parts, int n_parts,
                     int64_t cols, const float *x, int64_t n_x_rows, larder_error *err) {
    if (n_parts < 1) return error_set(err, ERR_INVALID, "matmul: %d matrices", n_parts);
    if (cols < 0 || n_x_rows < 0)
        return error_set(err, ERR_INVALID, "matmul: negative size (cols %lld, tokens %lld)",
                         (long long)cols, (long long)n_x_rows);
    if (mats_reserve(ctx, n_parts, err)) return -1;
    const cpu_kernels *k = cpu_kernels_active();
    mm_job job;
    memset(&job, 0, sizeof job);
    job.mats = ctx->mats;
    job.n_mats = n_parts;
    job.cols = cols;
    job.n_tokens = n_x_rows;
    job.x = x;
    size_t need = 0;
    double work_bytes = 0; /* weight bytes x tokens: whether waking the pool pays */
    for (int i = 0; i < n_parts; i++) {
        const cpu_matmul_part *p = &parts[i];
        uint32_t wt = p->wtype;
        uint32_t at = quant_vec_dot_type(wt);
        const tensor_type_traits *tr = tensor_type_get(wt);
        if (at == QUANT_NO_TYPE || wt >= TYPE_COUNT_MAX || !k->dot[wt] || !tr)
            return error_set(err, ERR_UNSUPPORTED, "matmul: no dot product for weight type %s",
                             tr ? tr->name : "unknown");
        if (p->rows < 0)
            return error_set(err, ERR_INVALID, "matmul: negative row count %lld", (long long)p->rows);
        if (p->t0 < 0 || p->n_tokens < 0 || p->t0 > n_x_rows || p->n_tokens > n_x_rows - p->t0)
            return error_set(err, ERR_INVALID, "matmul: rows [%lld, +%lld) outside the %lld activation rows",
                             (long long)p->t0, (long long)p->n_tokens, (long long)n_x_rows);
        if (cols % tr->block_elems != 0)
            return error_set(err, ERR_INVALID, "matmul: %lld columns is not a multiple of %s's block of %d",
                             (long long)cols, tr->name, tr->block_elems);
        mm_mat *m = &job.mats[i];
        memset(m, 0, sizeof *m);
        m->w = p->w;
        m->rows = p->rows;
        m->w_row_bytes = tensor_row_bytes(wt, cols);
        m->dot = k->dot[wt];
        m->tile = k->tile_tokens[wt];
        m->t0 = p->t0;
        m->n_tokens = p->n_tokens;
        m->y = p->y;
        m->a_row_bytes = tensor_row_bytes(at, cols);
        m->tile_slot = -1;
        m->work_base = job.total_work;
        job.total_work += (m->rows + 3) / 4 * m->n_tokens;
        work_bytes += (double)m->w_row_bytes * (double)m->rows * (double)m->n_tokens;
        const cpu_gemm_kernel *g = &k->gemm[wt];
        int ts = 0; /* g's tile slot: the one with its packer, or the first free */
        while (ts < MM_TILE_SLOTS && job.tiles[ts].pack && job.tiles[ts].pack != g->pack) ts++;
        if (p->n_tokens > 1 && g->gemm && ts < MM_TILE_SLOTS && p->t0 % g->tile_tokens == 0) {
            m->gemm = g->gemm;
            m->tile_slot = ts;
            size_t nb = (size_t)(cols / QK32);
            if (!job.tiles[ts].pack) {
                job.tiles[ts].pack = g->pack;
                job.tiles[ts].tokens = g->tile_tokens;
                job.tiles[ts].bytes = mul_sat(nb, g->tile_block_bytes);
                int64_t n_tiles = (n_x_rows + g->tile_tokens - 1) / g->tile_tokens;
                size_t add = mul_sat(job.tiles[ts].bytes, (size_t)n_tiles);
                add = add > SIZE_MAX - 63 ? SIZE_MAX : (add + 63) / 64 * 64;
                need = need > SIZE_MAX - add ? SIZE_MAX : need + add;
            }
            size_t wb = mul_sat(mul_sat(nb, g->work_bytes_per_row_block), (size_t)mm_block_rows(m->w_row_bytes));
            wb = (wb + 63) / 64 * 64;
            if (wb > job.work_bytes) job.work_bytes = wb;
            continue;
        }
        int s = act_slot(at);
        if (s >= 0 && !job.quant[s]) {
            job.quant[s] = k->quantize[at];
            job.qrow_bytes[s] = m->a_row_bytes;
            size_t add = mul_sat(m->a_row_bytes, (size_t)n_x_rows);
            need = need > SIZE_MAX - add ? SIZE_MAX : need + add;
        }
    }
    if (n_x_rows == 0 || job.total_work == 0 || cols == 0) {
        for (int i = 0; i < n_parts && cols == 0; i++)
            if (parts[i].n_tokens > 0 && parts[i].rows > 0)
                memset(parts[i].y, 0, (size_t)parts[i].n_tokens * (size_t)parts[i].rows * sizeof(float));
        return 0;
    }
    int n_threads = pool ? thread_pool_size(pool) : 1;
    size_t work_all = mul_sat(job.work_bytes, (size_t)n_threads);
    need = need > SIZE_MAX - work_all - 64 ? SIZE_MAX : (need + 63) / 64 * 64 + work_all;
    if (scratch_reserve(ctx, need, err) != 0) return -1;
    size_t off = 0;
    for (int s = 0; s < MM_TILE_SLOTS && job.tiles[s].pack; s++) { /* first, each 64-byte aligned */
        job.tiles[s].dst = (uint8_t *)ctx->scratch + off;
        int64_t n_tiles = (n_x_rows + job.tiles[s].tokens - 1) / job.tiles[s].tokens;
        off += (job.tiles[s].bytes * (size_t)n_tiles + 63) / 64 * 64;
        if (n_x_rows % job.tiles[s].tokens != 0) /* the unused slots of the last tile read as 0 */
            memset(job.tiles[s].dst + (size_t)(n_tiles - 1) * job.tiles[s].bytes, 0, job.tiles[s].bytes);
    }
    for (int s = 0; s < ACT_SLOTS; s++) {
        if (!job.quant[s]) continue;
        job.qdst[s] = (uint8_t *)ctx->scratch + off;
        off += job.qrow_bytes[s] * (size_t)n_x_rows;
    }
    if (job.work_bytes) job.work = (uint8_t *)ctx->scratch + (off + 63) / 64 * 64;
    for (int i = 0; i < n_parts; i++) {
        mm_mat *m = &job.mats[i];
        if (m->gemm) {
            const int tt = job.tiles[m->tile_slot].tokens;
            m->act = job.tiles[m->tile_slot].dst + (size_t)(m->t0 / tt) * job.tiles[m->tile_slot].bytes;
            continue;
        }
        int s = act_slot(quant_vec_dot_type(parts[i].wtype));
        m->act = s >= 0 ? job.qdst[s] + (size_t)m->t0 * m->a_row_bytes
                        : (const uint8_t *)(x + m->t0 * cols);
    }
    /* 1. quantize x (the kernels need every token's whole row) */
    if (n_x_rows == 1 || cols < MATMUL_PARALLEL_QUANT_ELEMS / n_x_rows) mm_quantize_range(&job, 0, n_x_rows);
    else pool_run(pool, mm_quantize_task, &job);
    /* 2. the dot products */
    if (work_bytes < MATMUL_MIN_PARALLEL_BYTES) mm_compute_task(&job, 0, 1);
    else pool_run(pool, mm_compute_task, &job);
    return 0;
}

int cpu_matmul_multi(cpu_matmul_ctx *ctx, thread_pool *pool, const backend_matmul_weight *mats,
                     int n_mats, int64_t cols, const float *x, int64_t n_tokens, larder_error *err) {
    if (n_mats < 1 || n_mats > CPU_MATMUL_MAX_MATS)
        return error_set(err, ERR_INVALID, "matmul: %d matrices (1..%d allowed)", n_mats, CPU_MATMUL_MAX_MATS);
    cpu_matmul_part parts[CPU_MATMUL_MAX_MATS];
    for (int i = 0; i < n_mats; i++)
        parts[i] = (cpu_matmul_part){mats[i].w, mats[i].wtype, mats[i].rows, 0, n_tokens, mats[i].y};
    return cpu_matmul_parts(ctx, pool, parts, n_mats, cols, x, n_tokens, err);
}

int cpu_matmul(cpu_matmul_ctx *ctx, thread_pool *pool, const void *w, uint32_t wtype, int64_t rows,
               int64_t cols, const float *x, int64_t n_tokens, float *y, larder_error *err) {
    backend_matmul_weight m = {w, wtype, rows, y};
    return cpu_matmul_multi(ctx, pool, &m, 1, cols, x, n_tokens, err);
}
