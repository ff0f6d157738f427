/*
 * cuda_flash_attn.cu — paged causal attention on the tensor cores (mma.sync
 * m16n8k16, f16 operands, f32 accumulators; sm_80 and later), the fast
 * path of cuda_attention.cu's op for head sizes 64 and 128 and groups up
 * to 64: by default for f16, bf16 and f32 KV; for q8_0/q4_0 KV too with
 * LARDER_CUDA_FA=1 (the f16 rounding of their int·scale products moved a
 * top token of the Q4_K_M test model: cuda_internal.h); LARDER_CUDA_FA=2:
 * the same without cp.async (A/B timing), =0: the scalar kernel always.
 * The scalar kernel takes every other shape.
 *
 * A block of 4 warps per (tile, KV head, split), as the scalar kernel: a
 * tile is a run of up to 64 / group consecutive tokens of one sequence, its
 * rows r = (token r / group, query head r % group) — at most 64. q is
 * rotated and rounded to K's precision as today (cuda_attn.cuh), then held
 * as f16 A fragments in registers. Keys are walked in chunks of 64 (chunks
 * wholly in a rotating window's gap skipped): K and V rows come from their
 * pages into shared memory as f16, two stages deep (f16 rows by cp.async,
 * the next chunk in flight while this one is computed; every other KV type
 * unpacked through registers); keys past the range or on dropped pages are
 * zeros. Then
 *   S = Q·Kᵀ (mma), scaled into log2 units, masked (causal, rotating
 *   window, dropped pages: -inf); online softmax per row in registers (f32
 *   running max and sum); P rounded to f16 (the sum takes the rounded
 *   weights, so the output is an exact convex combination of the f16 V
 *   rows); O += P·V (mma, V's B fragments by ldmatrix .trans).
 * The warps are laid over the tile as row_warps x (4 / row_warps): with at
 * most 16 rows (decode: one token's group) all four share the rows and each
 * takes 16 of a chunk's 64 keys; with 17..32 rows two by two; with more,
 * each warp its 16 rows and every key. At the end the warps' partial (max,
 * sum, O) are merged in shared memory; then, as the scalar kernel does,
 * either O / sum rotated back with V's Hadamard chunk and written out, or
 * (split-KV) the unnormalised partial written for k_attention_merge, with
 * the max in natural-log units as that kernel expects.
 *
 * Measured on an H100 (8B Q4_K_M, f16 KV, end to end, same run as the
 * scalar kernel): prefill 4096 2,777 -> 10,897 tok/s, prefill 512 5,987 ->
 * 9,766 (with the MMQ product), decode 203 -> 269 tok/s.
 *
 * Tolerance against the CPU: q and K are both f16 in the product where the
 * CPU has f32·f16 (f16 KV: q is already f16, so no loss there); P is f16
 * before P·V (the CPU rounds the normalised weights to V's precision too).
 * f32 and bf16 K/V lose their extra bits to f16 here, q8_0/q4_0 rows'
 * products int·scale are rounded to f16. Values beyond f16's range (65504)
 * are not supported by this path. Next for quantized KV: K as its int8
 * values (exact in f16) with the block scales applied per 32-element k
 * step in f32 (q·k then as exact as the CPU's integer dot), and V's
 * scales folded into P per 32-column block.
 */
#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/cuda_attn_plan.h"

#define FA_THREADS (CUDA_FA_WARPS * 32)
/* blocks an SM: 3 of 70.8 KB shared memory fit an sm_90's 227 KB (168
 * registers a thread, no spills); an sm_80 holds 2 */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define FA_MIN_BLOCKS 2
#else
#define FA_MIN_BLOCKS 3
#endif
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

__device__ __forceinline__ uint32_t fa_pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi); /* lo in the low 16 bits: the lower column */
    return *(uint32_t *)&h;
}

/* The tensor-core and async-copy instructions. A host emulation of the
 * kernel (tests/cuda/fa_emu.cpp, built with LARDER_FA_EMU) supplies its own
 * versions of these six. */
#ifndef LARDER_FA_EMU
__device__ __forceinline__ void fa_mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void fa_ldmatrix_x4_trans(uint32_t (&r)[4], const __half *p) {
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

/* 16 bytes global -> shared without registers (src_bytes 0: zeros). */
__device__ __forceinline__ void fa_cp16(void *smem, const void *gmem, int src_bytes) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void fa_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void fa_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

#endif

__device__ __forceinline__ uint4 fa_pack8(const float (&f)[8]) {
    return make_uint4(fa_pack(f[0], f[1]), fa_pack(f[2], f[3]), fa_pack(f[4], f[5]), fa_pack(f[6], f[7]));
}

/* Elements d0..d0+7 of a KV row of `type` as 8 f16 (d0 a multiple of 8). */
__device__ __forceinline__ uint4 fa_load8(uint32_t type, const uint8_t *row, int d0) {
    float f[8];
    switch (type) {
    case TYPE_F16: return *(const uint4 *)(row + 2 * d0);
    case TYPE_F32: {
        float4 x = *(const float4 *)(row + 4 * d0), y = *(const float4 *)(row + 4 * d0 + 16);
        f[0] = x.x, f[1] = x.y, f[2] = x.z, f[3] = x.w, f[4] = y.x, f[5] = y.y, f[6] = y.z, f[7] = y.w;
        break;
    }
    case TYPE_BF16: {
        uint4 u = *(const uint4 *)(row + 2 * d0);
        uint32_t w[4] = {u.x, u.y, u.z, u.w};
        for (int i = 0; i < 4; i++) f[2 * i] = __uint_as_float(w[i] << 16), f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
        break;
    }
    case TYPE_Q8_0: {
        const uint8_t *b = row + 34 * (d0 / 32);
        const float d = cq_f16(b);
        const uint16_t *qs = (const uint16_t *)(b + 2 + d0 % 32); /* 2-byte aligned */
        for (int i = 0; i < 4; i++) {
            uint16_t w = qs[i];
            f[2 * i] = (float)(int8_t)(w & 0xff) * d, f[2 * i + 1] = (float)(int8_t)(w >> 8) * d;
        }
        break;
    }
    default: { /* q4_0: element i < 16 in the low nibble of byte i, i >= 16 in the high nibble of byte i - 16 */
        const uint8_t *b = row + 18 * (d0 / 32);
        const float d = cq_f16(b);
        const int i0 = d0 % 32, sh = i0 < 16 ? 0 : 4;
        const uint16_t *qs = (const uint16_t *)(b + 2 + i0 % 16);
        for (int i = 0; i < 4; i++) {
            uint16_t w = qs[i];
            f[2 * i] = (float)((int)((w >> sh) & 0x0F) - 8) * d;
            f[2 * i + 1] = (float)((int)((w >> (8 + sh)) & 0x0F) - 8) * d;
        }
        break;
    }
    }
    return fa_pack8(f);
}

/* Shared memory of the kernel for head size D (bytes): region A (two
 * stages of the K and V chunks as f16, rows of D + 8; before the loop q as
 * f32; after it the warps' partial outputs as f32), then per-row arrays and
 * the two stages' key masks (bit jj: key j0 + jj is in range, its page
 * present). */
template <int D> struct fa_layout {
    static const int LDS = D + 8; /* halves per K/V row in shared memory (16 bytes of padding: no bank conflicts) */
    static const int STAGE_HALVES = 2 * CUDA_FA_KC * LDS; /* K then V */
    static const int KV_BYTES = 2 * STAGE_HALVES * 2;
    static const int F32_BYTES = CUDA_FA_WARPS * 16 * D * 4; /* q (64 rows) or the partial outputs */
    static const int A_BYTES = KV_BYTES > F32_BYTES ? KV_BYTES : F32_BYTES;
    static const int ROW_FLOATS = 4 * CUDA_FA_WARPS * 16; /* mw, lw (per warp, row), mfin, lfin */
    static const int BYTES = A_BYTES + ROW_FLOATS * 4 + 2 * CUDA_FA_KC / 8;
};

/* ASYNC (f16 KV): the next chunk's rows are copied by cp.async while the
 * current one is computed; other types are unpacked through registers. */
template <int D, int WR, bool ASYNC>
__global__ void __launch_bounds__(FA_THREADS, FA_MIN_BLOCKS) k_flash_attn(attn_args a) {
    constexpr int WK = CUDA_FA_WARPS / WR; /* warps over a chunk's keys */
    constexpr int KW = CUDA_FA_KC / WK;    /* keys per warp per chunk: 64, 32, 16 */
    constexpr int NT = KW / 8;             /* S tiles (n8) per warp */
    constexpr int KS = D / 16;             /* k16 steps over D */
    constexpr int DT = D / 8;              /* O tiles (n8) */
    constexpr int RC = WR * 16;            /* row capacity */
    typedef fa_layout<D> L;
    extern __shared__ __align__(16) unsigned char fa_sm[];
    float *f32a = (float *)fa_sm;
    float *mw = (float *)(fa_sm + L::A_BYTES), *lw = mw + CUDA_FA_WARPS * 16, *mfin = lw + CUDA_FA_WARPS * 16,
          *lfin = mfin + CUDA_FA_WARPS * 16;
    uint32_t *kmask2 = (uint32_t *)(lfin + CUDA_FA_WARPS * 16); /* per stage, 2 words: key j0 + jj present */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wr = warp / WK, wk = warp % WK;
    const int g = lane >> 2, t4 = lane & 3;
    const int32_t ti = (int32_t)gridDim.x - 1 - (int32_t)blockIdx.x; /* longest (latest) tiles first */
    const cuda_attn_tile tile = a.tiles[ti];
    const int32_t kvh = blockIdx.y, split = blockIdx.z, group = a.group;
    const int32_t rows = tile.n_tokens * group;
    const int32_t sq = a.seq[tile.t0], p_first = a.pos[tile.t0], last = a.pos[tile.t0 + tile.n_tokens - 1];
    const int32_t keep = a.keep[sq], window = a.window[sq];
    const uint32_t *pages = a.page_table + (int64_t)sq * a.max_pages;
    const int32_t k_lo = split * a.split_keys;
    const int32_t k_hi = min(last + 1, k_lo + a.split_keys);
    const kv_geom &G = a.g;

    /* q: f32 rows in region A, rotated and rounded, then f16 A fragments */
    for (int e = tid; e < RC * D; e += FA_THREADS) {
        int r = e / D, d = e % D;
        f32a[e] = r < rows ? a.q[((int64_t)(tile.t0 + r / group) * a.n_heads + kvh * group + r % group) * D + d] : 0.0f;
    }
    __syncthreads();
    fwht_rows(f32a, D, rows, D, a.rk);
    round_q(G.type, f32a, rows, D);
    uint32_t qa[KS][4];
#pragma unroll
    for (int s = 0; s < KS; s++) {
        const float *r0 = f32a + (wr * 16 + g) * D + s * 16 + 2 * t4, *r1 = r0 + 8 * D;
        qa[s][0] = fa_pack(r0[0], r0[1]);
        qa[s][1] = fa_pack(r1[0], r1[1]);
        qa[s][2] = fa_pack(r0[8], r0[9]);
        qa[s][3] = fa_pack(r1[8], r1[9]);
    }
    __syncthreads(); /* region A becomes the K/V chunk */

    /* this thread's rows wr·16 + g and + 8: their positions (padding rows take the last's) */
    int32_t prow[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int r = min(wr * 16 + g + 8 * h, rows - 1);
        prow[h] = p_first + r / group;
    }
    const float sl2 = a.scale * FA_LOG2E;
    float m2[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.0f, 0.0f};
    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

    constexpr int U8 = D / 8; /* 8-element units per row */
    /* chunk j0's K and V rows -> stage st (f16; keys past the range or on dropped pages: zeros) */
    auto load_chunk = [&](int st, int32_t j0) {
        __half *ks = (__half *)fa_sm + st * L::STAGE_HALVES, *vs = ks + CUDA_FA_KC * L::LDS;
        for (int u = tid; u < CUDA_FA_KC * U8; u += FA_THREADS) {
            const int jj = u / U8, c8 = u % U8;
            const int32_t j = j0 + jj;
            const uint8_t *kp = NULL, *vp = NULL;
            if (j < k_hi) {
                const uint32_t pg = pages[j / G.P];
                if (pg != BACKEND_NO_PAGE) {
                    const size_t off = (size_t)(j % G.P) * G.row_bytes;
                    kp = kv_block(G, pg, a.layer, 0, kvh) + off, vp = kv_block(G, pg, a.layer, 1, kvh) + off;
                }
            }
            if (ASYNC) {
                fa_cp16(ks + jj * L::LDS + c8 * 8, kp ? kp + c8 * 16 : G.base, kp ? 16 : 0);
                fa_cp16(vs + jj * L::LDS + c8 * 8, vp ? vp + c8 * 16 : G.base, vp ? 16 : 0);
            } else {
                const uint4 z = make_uint4(0, 0, 0, 0);
                *(uint4 *)(ks + jj * L::LDS + c8 * 8) = kp ? fa_load8(G.type, kp, c8 * 8) : z;
                *(uint4 *)(vs + jj * L::LDS + c8 * 8) = vp ? fa_load8(G.type, vp, c8 * 8) : z;
            }
        }
        if (tid < CUDA_FA_KC) { /* warps 0 and 1, whole */
            const int32_t j = j0 + tid;
            const unsigned m = __ballot_sync(0xffffffffu, j < k_hi && pages[j / G.P] != BACKEND_NO_PAGE);
            if ((tid & 31) == 0) kmask2[st * 2 + (tid >> 5)] = m;
        }
        if (ASYNC) fa_cp_commit();
    };
    /* the first chunk at or after j that some row sees part of (chunks wholly in a window's gap skipped) */
    auto next_chunk = [&](int32_t j) {
        while (j < k_hi && cuda_attn_chunk_in_gap(j, CUDA_FA_KC, keep, window, p_first)) j += CUDA_FA_KC;
        return j;
    };
    int32_t j0 = next_chunk(k_lo);
    if (j0 < k_hi) load_chunk(0, j0);
    for (int st = 0; j0 < k_hi; st ^= 1) {
        const int32_t jn = next_chunk(j0 + CUDA_FA_KC);
        if (jn < k_hi) { /* the next chunk into the other stage (its last readers passed the previous barrier) */
            load_chunk(st ^ 1, jn);
            if (ASYNC) fa_cp_wait<1>();
        } else if (ASYNC) {
            fa_cp_wait<0>();
        }
        __syncthreads();
        const __half *ks = (const __half *)fa_sm + st * L::STAGE_HALVES, *vs = ks + CUDA_FA_KC * L::LDS;
        const uint64_t kmask = kmask2[st * 2] | (uint64_t)kmask2[st * 2 + 1] << 32;

        /* S = Q·Kᵀ over this warp's keys wk·KW .. +KW */
        float sc[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
        for (int s = 0; s < KS; s++)
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const __half *kr = ks + (wk * KW + n * 8 + g) * L::LDS + s * 16 + 2 * t4;
                fa_mma(sc[n], qa[s], *(const uint32_t *)kr, *(const uint32_t *)(kr + 8));
            }
        /* scale (log2 units), mask, online softmax: element e of tile n is row g + 8·(e / 2), key 8n + 2·t4 + e % 2 */
        float mx[2] = {-INFINITY, -INFINITY};
        if (kmask == ~0ull && cuda_attn_chunk_all_visible(j0, CUDA_FA_KC, keep, window, p_first, last)) {
#pragma unroll
            for (int n = 0; n < NT; n++) /* every row sees every key: no mask */
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    sc[n][e] *= sl2;
                    mx[e >> 1] = fmaxf(mx[e >> 1], sc[n][e]);
                }
        } else {
#pragma unroll
            for (int n = 0; n < NT; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int jj = wk * KW + n * 8 + 2 * t4 + (e & 1), h = e >> 1;
                    const int32_t j = j0 + jj;
                    const bool vis = (kmask >> jj & 1) && cuda_attn_key_visible(j, prow[h], keep, window);
                    sc[n][e] = vis ? sc[n][e] * sl2 : -INFINITY;
                    mx[h] = fmaxf(mx[h], sc[n][e]);
                }
        }
        float alpha[2], muse[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            const float mn = fmaxf(m2[h], mx[h]);
            muse[h] = mn == -INFINITY ? 0.0f : mn;
            alpha[h] = exp2f(m2[h] - muse[h]); /* m2 = -inf: 0 */
            m2[h] = mn;
            lsum[h] *= alpha[h];
        }
#pragma unroll
        for (int i = 0; i < DT; i++) {
            o[i][0] *= alpha[0], o[i][1] *= alpha[0];
            o[i][2] *= alpha[1], o[i][3] *= alpha[1];
        }
        uint32_t pp[NT][2]; /* f16 weights: (row g, keys 2t4, +1), (row g + 8, ...) */
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                __half2 p2 = __floats2half2_rn(exp2f(sc[n][2 * h] - muse[h]), exp2f(sc[n][2 * h + 1] - muse[h]));
                float2 pf = __half22float2(p2);
                lsum[h] += pf.x + pf.y;
                pp[n][h] = *(uint32_t *)&p2;
            }
        /* O += P·V: k16 steps over this warp's keys */
#pragma unroll
        for (int kk = 0; kk < KW / 16; kk++) {
            const uint32_t pa[4] = {pp[2 * kk][0], pp[2 * kk][1], pp[2 * kk + 1][0], pp[2 * kk + 1][1]};
            const __half *vb = vs + (wk * KW + kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * L::LDS + (lane >> 4) * 8;
#pragma unroll
            for (int i = 0; i < DT / 2; i++) {
                uint32_t b[4];
                fa_ldmatrix_x4_trans(b, vb + i * 16);
                fa_mma(o[2 * i], pa, b[0], b[1]);
                fa_mma(o[2 * i + 1], pa, b[2], b[3]);
            }
        }
        __syncthreads(); /* this stage is loaded again next iteration */
        j0 = jn;
    }

    /* merge the warps sharing rows: M = max m, L = Σ e^(m - M)·l, O = Σ e^(m - M)·O */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        lsum[h] += __shfl_xor_sync(0xffffffffu, lsum[h], 1);
        lsum[h] += __shfl_xor_sync(0xffffffffu, lsum[h], 2);
        if (t4 == 0) {
            const int r = wr * 16 + g + 8 * h;
            mw[wk * RC + r] = m2[h];
            lw[wk * RC + r] = lsum[h];
        }
    }
    __syncthreads();
    if (tid < RC) {
        float M = -INFINITY, Ls = 0.0f;
        for (int w = 0; w < WK; w++) M = fmaxf(M, mw[w * RC + tid]);
        if (M != -INFINITY)
            for (int w = 0; w < WK; w++)
                if (mw[w * RC + tid] != -INFINITY) Ls += exp2f(mw[w * RC + tid] - M) * lw[w * RC + tid];
        mfin[tid] = M, lfin[tid] = Ls;
    }
    __syncthreads();
    float *slab = f32a + wk * RC * D; /* this warp's partial outputs, rows of D */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = wr * 16 + g + 8 * h;
        const float M = mfin[r];
        const float f = M == -INFINITY || m2[h] == -INFINITY ? 0.0f : exp2f(m2[h] - M);
#pragma unroll
        for (int i = 0; i < DT; i++) {
            float2 v = make_float2(o[i][2 * h] * f, o[i][2 * h + 1] * f);
            *(float2 *)(slab + r * D + i * 8 + 2 * t4) = v;
        }
    }
    __syncthreads();
    for (int e = tid; e < rows * D; e += FA_THREADS) { /* sum the slabs into slab 0 (each element by one thread) */
        float s = f32a[e];
#pragma unroll
        for (int w = 1; w < WK; w++) s += f32a[w * RC * D + e];
        f32a[e] = s;
    }
    if (a.n_split > 1) {
        __syncthreads();
        for (int r = tid; r < rows; r += FA_THREADS) {
            float *pp = a.part + cuda_attn_part_offset(ti, gridDim.y, kvh, a.n_split, split, a.R, r, D);
            pp[0] = mfin[r] == -INFINITY ? -INFINITY : mfin[r] * FA_LN2;
            pp[1] = lfin[r];
        }
        for (int e = tid; e < rows * D; e += FA_THREADS)
            a.part[cuda_attn_part_offset(ti, gridDim.y, kvh, a.n_split, split, a.R, e / D, D) + 2 + e % D] = f32a[e];
        return;
    }
    for (int e = tid; e < rows * D; e += FA_THREADS) {
        const float Ls = lfin[e / D];
        f32a[e] = Ls > 0.0f ? f32a[e] / Ls : 0.0f;
    }
    __syncthreads();
    fwht_rows(f32a, D, rows, D, a.rv);
    for (int e = tid; e < rows * D; e += FA_THREADS) {
        int r = e / D, d = e % D;
        a.out[((int64_t)(tile.t0 + r / group) * a.n_heads + kvh * group + r % group) * D + d] = f32a[e];
    }
}

bool cuda_flash_attn_supported(int32_t head_dim, int32_t group, uint32_t kv_type) {
    (void)kv_type; /* every KV type the scalar kernel takes */
    return (head_dim == 64 || head_dim == 128) && cuda_fa_tile_tokens(group) > 0;
}

#ifndef LARDER_FA_EMU
template <int D, int WR, bool ASYNC> static int fa_launch(const attn_args *a, dim3 grid, cudaStream_t s, larder_error *err) {
    static bool smem_set; /* the dynamic shared memory limit raised for this kernel */
    const int bytes = fa_layout<D>::BYTES;
    if (bytes > 48 * 1024 && !smem_set) {
        if (cuda_check(cudaFuncSetAttribute(k_flash_attn<D, WR, ASYNC>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
                       "flash attention shared memory", err))
            return -1;
        smem_set = true;
    }
    k_flash_attn<D, WR, ASYNC><<<grid, FA_THREADS, bytes, s>>>(*a);
    return cuda_check_launch("flash attention", err);
}

template <int D, bool ASYNC> static int fa_launch_d(const attn_args *a, int32_t wr, dim3 grid, cudaStream_t s, larder_error *err) {
    return wr == 1 ? fa_launch<D, 1, ASYNC>(a, grid, s, err)
         : wr == 2 ? fa_launch<D, 2, ASYNC>(a, grid, s, err)
                   : fa_launch<D, 4, ASYNC>(a, grid, s, err);
}

int cuda_flash_attn_launch(cuda_backend *c, const attn_args *a, int32_t n_tiles, int32_t n_kv_heads, int32_t max_rows,
                           larder_error *err) {
    const int32_t wr = cuda_fa_row_warps(max_rows), D = a->g.D;
    if (!wr || (D != 64 && D != 128) || a->R > CUDA_FA_ROWS)
        return error_set(err, ERR_UNSUPPORTED, "flash attention: head size %d, %d rows per tile", D, max_rows);
    dim3 grid((unsigned)n_tiles, (unsigned)n_kv_heads, (unsigned)a->n_split);
    /* f16 rows are copied as they are (cp.async) unless LARDER_CUDA_FA=2 */
    const bool async = a->g.type == TYPE_F16 && c->flash_attn == 1;
    if (D == 128)
        return async ? fa_launch_d<128, true>(a, wr, grid, c->stream, err) : fa_launch_d<128, false>(a, wr, grid, c->stream, err);
    return async ? fa_launch_d<64, true>(a, wr, grid, c->stream, err) : fa_launch_d<64, false>(a, wr, grid, c->stream, err);
}
#endif
