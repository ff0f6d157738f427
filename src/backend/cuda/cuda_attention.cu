/*
 * cuda_attention.cu — the CUDA backend's KV ops: storing K/V rows into their
 * pages (converted to the KV type; q8_0 and q4_0 rows Walsh-Hadamard rotated
 * first, exactly as the CPU backend stores them: same chunk sizes, scale
 * first, same quantizer rounding) and causal attention over the pages.
 *
 * Attention: a block per (tile, KV head, split). A tile is a run of up to
 * 16 / group consecutive tokens of one sequence (cut on the host once per
 * step, as cpu_attention.c cuts them), its rows r = (token i, query head g
 * of the KV head's group); every K/V row read from the pool serves every
 * row of the tile. Keys are walked in chunks of ATTN_KC inside the block's
 * key range with an online softmax (running max and sum per row, f32);
 * keys a row may not see (causal, rotating window, dropped pages) get
 * weight 0 and dropped pages are never read. With few blocks (decode) the
 * key range is split over ATTN splits whose partial (max, sum, output) a
 * second kernel merges (split-KV). As on the CPU, q is rounded to K's
 * precision first (f16, bf16, or q8_0 for q8_0/q4_0 K) and rotated with
 * K's Hadamard chunk; the output is rotated back with V's. Unlike the CPU,
 * the softmax weights are not rounded to V's precision (tolerance:
 * tests/cuda/run.sh).
 *
 * Head sizes 64 and 128 and groups up to 64 take the tensor-core kernel of
 * cuda_flash_attn.cu instead (tiles of 64 / group tokens, chunks of 64
 * keys; by default for f16/bf16/f32 KV, see cuda_internal.h's flash_attn),
 * with the same arguments and the same merge;
 * the helpers both kernels use are in cuda_attn.cuh, the host-side index
 * math in cuda_attn_plan.h.
 */
#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/cuda_attn_plan.h"

#define ATTN_KC 32            /* keys per chunk */
#define ATTN_THREADS 128
#define ATTN_TILE_ROWS 16     /* target rows (tokens x group) of a tile */

/* ---- KV store */

/* One row (D floats in shared memory) to `dst` in the KV type; the block's
 * warps take the 32-element blocks of quantized rows. */
__device__ void store_row(uint32_t type, const float *v, int D, uint8_t *dst) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (type == TYPE_F16) {
        for (int d = threadIdx.x; d < D; d += blockDim.x) ((uint16_t *)dst)[d] = to_f16(v[d]);
    } else if (type == TYPE_F32) {
        for (int d = threadIdx.x; d < D; d += blockDim.x) ((float *)dst)[d] = v[d];
    } else if (type == TYPE_BF16) {
        for (int d = threadIdx.x; d < D; d += blockDim.x) ((uint16_t *)dst)[d] = to_bf16(v[d]);
    } else if (type == TYPE_Q8_0) { /* quant_q8_0: d = amax / 127, id = 1 / d */
        for (int blk = warp; blk < D / 32; blk += nw) {
            float x = v[32 * blk + lane], amax = fabsf(x);
            for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            uint8_t *b = dst + 34 * blk;
            b[2 + lane] = (uint8_t)(int8_t)round_clamp(__fmul_rn(x, id), -127, 127);
            if (lane == 0) *(uint16_t *)b = to_f16(d);
        }
    } else { /* q4_0 (quant_q4_0_fast): d = m / -8, m the value of largest magnitude (first) */
        for (int blk = warp; blk < D / 32; blk += nw) {
            float x = v[32 * blk + lane], amax = fabsf(x);
            for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
            unsigned hit = __ballot_sync(0xffffffffu, fabsf(x) == amax);
            float m = __shfl_sync(0xffffffffu, x, __ffs(hit) - 1);
            float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            int q = (int)__fadd_rn(__fmul_rn(x, id), 8.5f);
            q = q > 15 ? 15 : q < 0 ? 0 : q;
            int hi = __shfl_down_sync(0xffffffffu, q, 16);
            uint8_t *b = dst + 18 * blk;
            if (lane < 16) b[2 + lane] = (uint8_t)(q | hi << 4);
            if (lane == 0) *(uint16_t *)b = to_f16(d);
        }
    }
}

__global__ void k_kv_store(kv_geom g, int32_t layer, const float *k, const float *v, const int32_t *pos,
                           const int32_t *seq, const uint32_t *page_table, int32_t max_pages, int rk, int rv) {
    extern __shared__ float rows[]; /* K (D), V (D) */
    const int64_t t = blockIdx.x;
    const int32_t h = blockIdx.y, D = g.D;
    const int32_t p = pos[t];
    const uint32_t page = page_table[(int64_t)seq[t] * max_pages + p / g.P];
    const size_t off = (size_t)(p % g.P) * g.row_bytes;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        rows[d] = k[(t * g.Hkv + h) * (int64_t)D + d];
        rows[D + d] = v[(t * g.Hkv + h) * (int64_t)D + d];
    }
    __syncthreads();
    fwht_rows(rows, D, 1, D, rk);
    fwht_rows(rows + D, D, 1, D, rv);
    __syncthreads();
    store_row(g.type, rows, D, kv_block(g, page, layer, 0, h) + off);
    store_row(g.type, rows + D, D, kv_block(g, page, layer, 1, h) + off);
}

static kv_geom geom_of(const backend_kv *kv) {
    const backend_kv_layout *l = &kv->layout;
    kv_geom g = {kv->base, kv->stride_bytes, kv->head_bytes, l->row_bytes, l->page_tokens, l->head_dim, l->n_kv_heads,
                 l->kv_type};
    return g;
}

static int check_kv_type(const backend_kv *kv, larder_error *err) {
    uint32_t t = kv->layout.kv_type;
    if (t != TYPE_F16 && t != TYPE_F32 && t != TYPE_BF16 && t != TYPE_Q8_0 && t != TYPE_Q4_0)
        return error_set(err, ERR_UNSUPPORTED, "KV type %u has no CUDA kernel", t);
    if ((t == TYPE_Q8_0 || t == TYPE_Q4_0) && kv->layout.head_dim % 32)
        return error_set(err, ERR_INVALID, "KV type %u needs a head size that is a multiple of 32", t);
    return 0;
}

int cuda_kv_store(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    const cuda_batch *bt = &c->batch;
    if (check_kv_type(kv, err)) return -1;
    if (layer < 0 || layer >= kv->layout.n_layers) return error_set(err, ERR_INVALID, "kv_store: layer %d", layer);
    if (bt->n_tokens == 0) return 0;
    for (int32_t t = 0; t < bt->n_tokens; t++) { /* every position has a page (the host copy is at hand) */
        int32_t pi = bt->h_pos[t] / kv->layout.page_tokens;
        uint32_t pg = pi < bt->max_pages ? bt->h_page_table[(int64_t)bt->h_seq[t] * bt->max_pages + pi] : BACKEND_NO_PAGE;
        if (pg >= kv->n_pages)
            return error_set(err, ERR_INVALID, "kv_store: token %d at position %d has no page", t, bt->h_pos[t]);
    }
    const int32_t D = kv->layout.head_dim;
    dim3 grid((unsigned)bt->n_tokens, (unsigned)kv->layout.n_kv_heads);
    k_kv_store<<<grid, ATTN_THREADS, (size_t)2 * D * sizeof(float), c->stream>>>(
        geom_of(kv), layer, k, v, bt->pos, bt->seq, bt->page_table, bt->max_pages, rot_k(kv->layout.kv_type, D),
        rot_v(kv->layout.kv_type, D));
    return cuda_check_launch("kv_store", err);
}

/* ---- attention */

__global__ void __launch_bounds__(ATTN_THREADS) k_attention(attn_args a) {
    extern __shared__ float sm[];
    const int32_t D = a.g.D, R = a.R, KC = ATTN_KC, ldk = D + 1;
    float *qs = sm, *acc = qs + R * D, *kvs = acc + R * D, *s = kvs + KC * ldk, *mrow = s + R * KC, *lrow = mrow + R,
          *alpha = lrow + R;
    const cuda_attn_tile tile = a.tiles[blockIdx.x];
    const int32_t kvh = blockIdx.y, split = blockIdx.z;
    const int32_t rows = tile.n_tokens * a.group;
    const int32_t sq = a.seq[tile.t0], p_first = a.pos[tile.t0], last = a.pos[tile.t0 + tile.n_tokens - 1];
    const int32_t keep = a.keep[sq], window = a.window[sq];
    const uint32_t *pages = a.page_table + (int64_t)sq * a.max_pages;
    const int32_t k_lo = split * a.split_keys;
    const int32_t k_hi = min(last + 1, k_lo + a.split_keys);
    const int32_t lo_first = window > 0 ? p_first - window + 1 : 0; /* keys in [keep, lo_first) nobody sees */

    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        int r = e / D, d = e % D, i = r / a.group, gq = r % a.group;
        qs[e] = a.q[((int64_t)(tile.t0 + i) * a.n_heads + kvh * a.group + gq) * D + d];
        acc[e] = 0.0f;
    }
    for (int r = threadIdx.x; r < rows; r += blockDim.x) mrow[r] = -INFINITY, lrow[r] = 0.0f;
    __syncthreads();
    fwht_rows(qs, D, rows, D, a.rk);
    round_q(a.g.type, qs, rows, D);

    for (int32_t j0 = k_lo; j0 < k_hi; j0 += KC) {
        if (window > 0 && j0 >= keep && j0 + KC - 1 < lo_first) continue; /* wholly in the gap */
        /* K chunk */
        for (int e = threadIdx.x; e < KC * D; e += blockDim.x) {
            int jj = e / D, d = e % D, j = j0 + jj;
            float val = 0.0f;
            if (j < k_hi) {
                uint32_t pg = pages[j / a.g.P];
                if (pg != BACKEND_NO_PAGE)
                    val = kv_elem(a.g.type, kv_block(a.g, pg, a.layer, 0, kvh) + (size_t)(j % a.g.P) * a.g.row_bytes, d);
            }
            kvs[jj * ldk + d] = val;
        }
        __syncthreads();
        /* scores */
        for (int p = threadIdx.x; p < rows * KC; p += blockDim.x) {
            int r = p / KC, jj = p % KC, j = j0 + jj;
            int32_t pr = a.pos[tile.t0 + r / a.group];
            bool vis = j < k_hi && j <= pr && (window == 0 || j < keep || j > pr - window) &&
                       pages[j / a.g.P] != BACKEND_NO_PAGE;
            float sc = -INFINITY;
            if (vis) {
                const float *qr = qs + r * D, *kr = kvs + jj * ldk;
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot = fmaf(qr[d], kr[d], dot);
                sc = dot * a.scale;
            }
            s[r * KC + jj] = sc;
        }
        __syncthreads();
        /* online softmax */
        for (int r = threadIdx.x; r < rows; r += blockDim.x) {
            float *sr = s + r * KC;
            float mx = -INFINITY;
            for (int jj = 0; jj < KC; jj++) mx = fmaxf(mx, sr[jj]);
            float m_new = fmaxf(mrow[r], mx);
            if (m_new == -INFINITY) {
                alpha[r] = 1.0f;
                for (int jj = 0; jj < KC; jj++) sr[jj] = 0.0f;
                continue;
            }
            float al = mrow[r] == -INFINITY ? 0.0f : expf(mrow[r] - m_new), sum = 0.0f;
            for (int jj = 0; jj < KC; jj++) {
                float pj = sr[jj] == -INFINITY ? 0.0f : expf(sr[jj] - m_new);
                sr[jj] = pj;
                sum += pj;
            }
            lrow[r] = lrow[r] * al + sum;
            mrow[r] = m_new;
            alpha[r] = al;
        }
        __syncthreads();
        /* V chunk */
        for (int e = threadIdx.x; e < KC * D; e += blockDim.x) {
            int jj = e / D, d = e % D, j = j0 + jj;
            float val = 0.0f;
            if (j < k_hi) {
                uint32_t pg = pages[j / a.g.P];
                if (pg != BACKEND_NO_PAGE)
                    val = kv_elem(a.g.type, kv_block(a.g, pg, a.layer, 1, kvh) + (size_t)(j % a.g.P) * a.g.row_bytes, d);
            }
            kvs[jj * ldk + d] = val;
        }
        __syncthreads();
        for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
            int r = e / D, d = e % D;
            const float *pr = s + r * KC;
            float o = acc[e] * alpha[r];
            for (int jj = 0; jj < KC; jj++) o = fmaf(pr[jj], kvs[jj * ldk + d], o);
            acc[e] = o;
        }
        __syncthreads();
    }

    if (a.n_split > 1) {
        const int64_t base = (((int64_t)blockIdx.x * gridDim.y + kvh) * a.n_split + split) * R;
        for (int r = threadIdx.x; r < rows; r += blockDim.x) {
            a.part[(base + r) * (2 + D)] = mrow[r];
            a.part[(base + r) * (2 + D) + 1] = lrow[r];
        }
        for (int e = threadIdx.x; e < rows * D; e += blockDim.x)
            a.part[(base + e / D) * (2 + D) + 2 + e % D] = acc[e];
        return;
    }
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        float l = lrow[e / D];
        acc[e] = l > 0.0f ? acc[e] / l : 0.0f;
    }
    __syncthreads();
    fwht_rows(acc, D, rows, D, a.rv);
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        int r = e / D, d = e % D, i = r / a.group, gq = r % a.group;
        a.out[((int64_t)(tile.t0 + i) * a.n_heads + kvh * a.group + gq) * D + d] = acc[e];
    }
}

/* Merges the splits of one (tile, KV head): out = Σ e^(m_s - M) acc_s / Σ e^(m_s - M) l_s. */
__global__ void __launch_bounds__(ATTN_THREADS) k_attention_merge(attn_args a) {
    extern __shared__ float sm[];
    const int32_t D = a.g.D, R = a.R;
    const cuda_attn_tile tile = a.tiles[blockIdx.x];
    const int32_t kvh = blockIdx.y, rows = tile.n_tokens * a.group;
    const int64_t base = ((int64_t)blockIdx.x * gridDim.y + kvh) * a.n_split * R;
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        int r = e / D, d = e % D;
        float M = -INFINITY;
        for (int sp = 0; sp < a.n_split; sp++) M = fmaxf(M, a.part[(base + (int64_t)sp * R + r) * (2 + D)]);
        float L = 0.0f, o = 0.0f;
        if (M != -INFINITY)
            for (int sp = 0; sp < a.n_split; sp++) {
                const float *pp = a.part + (base + (int64_t)sp * R + r) * (2 + D);
                if (pp[0] == -INFINITY) continue;
                float w = expf(pp[0] - M);
                L += w * pp[1];
                o += w * pp[2 + d];
            }
        sm[e] = L > 0.0f ? o / L : 0.0f;
    }
    __syncthreads();
    fwht_rows(sm, D, rows, D, a.rv);
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        int r = e / D, d = e % D, i = r / a.group, gq = r % a.group;
        a.out[((int64_t)(tile.t0 + i) * a.n_heads + kvh * a.group + gq) * D + d] = sm[e];
    }
}

/* Cuts the step's batch into tiles of at most tile_tokens tokens for this
 * group size (once per step and cut). */
static int cut_tiles(cuda_backend *c, int32_t group, int32_t tile_tokens, larder_error *err) {
    const cuda_batch *bt = &c->batch;
    if (c->tiles_group == group && c->tiles_tokens == tile_tokens) return 0;
    if (bt->n_tokens > c->tiles_cap) {
        int64_t cap = c->tiles_cap ? c->tiles_cap : 64;
        while (cap < bt->n_tokens) cap *= 2;
        cudaStreamSynchronize(c->stream);
        cudaFree(c->tiles_dev), cudaFreeHost(c->tiles_host);
        c->tiles_dev = NULL, c->tiles_host = NULL, c->tiles_cap = 0;
        c->mem_gen++;
        if (!(c->tiles_dev = (cuda_attn_tile *)cuda_alloc(c, (size_t)cap * sizeof(cuda_attn_tile), "attention tiles", err)))
            return -1;
        if (cuda_check(cudaMallocHost((void **)&c->tiles_host, (size_t)cap * sizeof(cuda_attn_tile)), "attention tiles", err))
            return -1;
        c->tiles_cap = cap;
    } else if (c->tiles_cut_this_step) {
        cudaStreamSynchronize(c->stream); /* a second cut in one step: the staging may feed the first's copy */
    } /* else backend_batch_set synchronized at the step's start: the last step's copy is done */
    int32_t n = 0;
    for (int32_t t = 0; t < bt->n_tokens;) {
        int32_t sq = bt->h_seq[t], p0 = bt->h_pos[t], k = 1;
        while (t + k < bt->n_tokens && k < tile_tokens && bt->h_seq[t + k] == sq && bt->h_pos[t + k] == p0 + k) k++;
        c->tiles_host[n].t0 = t, c->tiles_host[n].n_tokens = k;
        n++, t += k;
    }
    c->n_tiles = n;
    c->tiles_group = group;
    c->tiles_tokens = tile_tokens;
    c->tiles_cut_this_step = true;
    return cuda_check(cudaMemcpyAsync(c->tiles_dev, c->tiles_host, (size_t)n * sizeof(cuda_attn_tile),
                                      cudaMemcpyHostToDevice, c->stream),
                      "attention tiles", err);
}

int cuda_attention(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                   float *out, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    const cuda_batch *bt = &c->batch;
    const backend_kv_layout *l = &kv->layout;
    if (check_kv_type(kv, err)) return -1;
    if (n_heads < l->n_kv_heads || n_heads % l->n_kv_heads)
        return error_set(err, ERR_INVALID, "attention: %d query heads do not group over %d KV heads", n_heads, l->n_kv_heads);
    if (layer < 0 || layer >= l->n_layers) return error_set(err, ERR_INVALID, "attention: layer %d", layer);
    if (bt->n_tokens == 0) return 0;
    const int32_t group = n_heads / l->n_kv_heads, D = l->head_dim;
    /* the tensor-core kernel where it takes the shape (and the KV type:
     * cuda_internal.h's flash_attn) */
    const bool quant_kv = l->kv_type == TYPE_Q8_0 || l->kv_type == TYPE_Q4_0;
    const bool flash = c->flash_attn != 0 && (!quant_kv || c->flash_quant_kv) &&
                       cuda_flash_attn_supported(D, group, l->kv_type);
    const int32_t tile_tokens = flash ? cuda_fa_tile_tokens(group) : group >= ATTN_TILE_ROWS ? 1 : ATTN_TILE_ROWS / group;
    if (cut_tiles(c, group, tile_tokens, err)) return -1;
    int32_t R = tile_tokens * group;
    /* the most keys and rows of a tile */
    int32_t max_keys = 0, max_rows = 0;
    for (int32_t i = 0; i < c->n_tiles; i++) {
        const cuda_attn_tile *t = &c->tiles_host[i];
        int32_t k = bt->h_pos[t->t0 + t->n_tokens - 1] + 1;
        if (k > max_keys) max_keys = k;
        if (t->n_tokens * group > max_rows) max_rows = t->n_tokens * group;
    }
    if (c->graph_mode != CUDA_GRAPH_OFF) /* a graph step: the shape must hold for every step of its width */
        max_keys = bt->max_pages * l->page_tokens;
    if (flash) R = max_rows; /* the flash kernel sizes nothing by R: partials of the rows there are */
    const size_t smem = ((size_t)2 * R * D + (size_t)ATTN_KC * (D + 1) + (size_t)R * ATTN_KC + 3 * (size_t)R) * sizeof(float);
    static size_t smem_set; /* the kernel's dynamic shared memory limit raised so far */
    if (!flash && smem > 48 * 1024 && smem > smem_set) {
        if (cuda_check(cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                       "attention shared memory", err))
            return error_prefix(err, "head size %d with %d query rows per tile", D, R);
        cudaFuncSetAttribute(k_attention_merge, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        smem_set = smem;
    }
    /* split the keys when the tiles alone leave most of the GPU idle */
    const int64_t blocks = (int64_t)c->n_tiles * l->n_kv_heads;
    int32_t n_split, split_keys;
    cuda_attn_plan_split(blocks, c->n_sm, max_keys, flash ? CUDA_FA_KC : ATTN_KC, &n_split, &split_keys);
    attn_args a = {geom_of(kv), layer, n_heads, group, R, scale, q, out, bt->pos, bt->seq, bt->keep, bt->window,
                   bt->page_table, bt->max_pages, c->tiles_dev, n_split, split_keys, NULL, rot_k(l->kv_type, D),
                   rot_v(l->kv_type, D)};
    if (n_split > 1) {
        size_t bytes = (size_t)cuda_attn_part_floats(c->n_tiles, l->n_kv_heads, n_split, R, D) * sizeof(float);
        if (cuda_scratch_reserve(c, (void **)&c->attn_part, &c->attn_part_bytes, bytes, "attention partials", err))
            return -1;
        a.part = c->attn_part;
    }
    dim3 grid((unsigned)c->n_tiles, (unsigned)l->n_kv_heads, (unsigned)n_split);
    if (flash) {
        if (cuda_flash_attn_launch(c, &a, c->n_tiles, l->n_kv_heads, max_rows, err)) return -1;
    } else {
        k_attention<<<grid, ATTN_THREADS, smem, c->stream>>>(a);
        if (cuda_check_launch("attention", err)) return -1;
    }
    if (n_split > 1) {
        k_attention_merge<<<dim3((unsigned)c->n_tiles, (unsigned)l->n_kv_heads), ATTN_THREADS,
                            (size_t)R * D * sizeof(float), c->stream>>>(a);
        if (cuda_check_launch("attention merge", err)) return -1;
    }
    return 0;
}
