/*
 * cuda_gemm.cu — the tensor-core matrix product on quantized weights that
 * never writes dequantised weights to device memory:
 *
 *     y (n, rows; row stride ldy) = x16 (n, ldk) · Wᵀ
 *
 * for every weight type of cuda_quant.cuh but F32, and its grouped form for
 * the mixture-of-experts feed-forward (x rows gathered through a pair list,
 * one weight matrix per expert; cuda_moe_gemm.cu builds the list).
 *
 * One block computes a BM (tokens) x BN (weight rows) tile, walking K in
 * slices of 256 elements (one K-quant super-block, or 8 legacy blocks: in
 * every type a contiguous byte run of each row). Per slice: the raw weight
 * bytes and the f16 x tile are copied into shared memory by cp.async (two
 * stages: step k+1 streams in while step k is computed), the raw bytes
 * are unpacked to an f16 tile in shared memory (the float steps of
 * cuda_quant.cuh, rounded to f16 once), and 8 warps multiply with
 * mma.sync m16n8k16 (f16 in, f32 accumulators, operands by ldmatrix).
 * Weight rows need not be 16-byte aligned (Q6_K rows are 210·k bytes): each
 * row's run is copied from its 16-byte aligned start and read at its offset;
 * the copy never reads past `w_end`.
 *
 * Tiles: n <= 64 (batched decode, small prefills): 64 x 128, so every
 * weight byte is read once per call, with K split over blockIdx.z when the
 * tiles alone leave SMs idle (partial sums added in a fixed order: the
 * result does not depend on timing); n > 64: 128 x 128 (16-bit weights,
 * whose raw slices are larger: 64 x 128). Both step K by 128 (x and f16
 * tiles of 128 columns; the raw 256-element slice serves two steps).
 * Older shapes (BK 256: 64x128, 64x64, 64x32, 128x64) stay selectable for
 * timing. x16 is zero beyond the real columns (ldk = cols rounded up to
 * 32); rows of x past n are zero.
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_quant.cuh"
#include "backend/cuda/cuda_ptx.cuh"

#define GQ_BK 256            /* K elements per slice */
#define GQ_THREADS 256

/* ---- unpacking one 32-element chunk from shared memory (plain loads) */

template <int T> struct gq_traits {
    static const int per = chunk_traits<T>::per;
    static const int block_bytes = chunk_traits<T>::bytes;
    static const int slice_bytes = block_bytes * 8 / per;               /* bytes of 256 elements of a row */
    static const int slot = (slice_bytes + 15 + 15) / 16 * 16;         /* + up to 15 bytes of alignment */
};

__device__ __forceinline__ uint32_t gq_u16(const uint8_t *p) { return *(const uint16_t *)p; } /* 2-byte aligned */

/* out[0..32) = chunk c (0..7) of the 256-element slice at s (shared memory). */
template <int T> __device__ __forceinline__ void gq_chunk(const uint8_t *s, int c, float *out);

template <> __device__ __forceinline__ void gq_chunk<TYPE_F16>(const uint8_t *s, int c, float *out) {
    const uint4 *p = (const uint4 *)(s + c * 64); /* slices of 16-bit rows are 64-byte aligned */
#pragma unroll
    for (int i = 0; i < 4; i++) cq_f16x8(p[i], out + 8 * i);
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_BF16>(const uint8_t *s, int c, float *out) {
    const uint4 *p = (const uint4 *)(s + c * 64);
#pragma unroll
    for (int i = 0; i < 4; i++) cq_bf16x8(p[i], out + 8 * i);
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q4_0>(const uint8_t *s, int c, float *out) {
    const uint8_t *b = s + c * 18;
    const float d = cq_h((uint16_t)gq_u16(b));
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t q2 = gq_u16(b + 2 + 2 * i);
#pragma unroll
        for (int by = 0; by < 2; by++) {
            uint32_t q = (q2 >> (8 * by)) & 0xff;
            out[2 * i + by] = (float)((int)(q & 0x0F) - 8) * d;
            out[2 * i + by + 16] = (float)((int)(q >> 4) - 8) * d;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q4_1>(const uint8_t *s, int c, float *out) {
    const uint8_t *b = s + c * 20;
    const float d = cq_h((uint16_t)gq_u16(b)), m = cq_h((uint16_t)gq_u16(b + 2));
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t q2 = gq_u16(b + 4 + 2 * i);
#pragma unroll
        for (int by = 0; by < 2; by++) {
            uint32_t q = (q2 >> (8 * by)) & 0xff;
            out[2 * i + by] = (float)(q & 0x0F) * d + m;
            out[2 * i + by + 16] = (float)(q >> 4) * d + m;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q5_0>(const uint8_t *s, int c, float *out) {
    const uint8_t *b = s + c * 22;
    const float d = cq_h((uint16_t)gq_u16(b));
    const uint32_t qh = gq_u16(b + 2) | gq_u16(b + 4) << 16;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t q2 = gq_u16(b + 6 + 2 * i);
#pragma unroll
        for (int by = 0; by < 2; by++) {
            const int e = 2 * i + by;
            uint32_t q = (q2 >> (8 * by)) & 0xff;
            out[e] = (float)((int)((q & 0x0F) | ((qh >> e) & 1) << 4) - 16) * d;
            out[e + 16] = (float)((int)((q >> 4) | ((qh >> (e + 16)) & 1) << 4) - 16) * d;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q5_1>(const uint8_t *s, int c, float *out) {
    const uint8_t *b = s + c * 24;
    const float d = cq_h((uint16_t)gq_u16(b)), m = cq_h((uint16_t)gq_u16(b + 2));
    const uint32_t qh = gq_u16(b + 4) | gq_u16(b + 6) << 16;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t q2 = gq_u16(b + 8 + 2 * i);
#pragma unroll
        for (int by = 0; by < 2; by++) {
            const int e = 2 * i + by;
            uint32_t q = (q2 >> (8 * by)) & 0xff;
            out[e] = (float)((q & 0x0F) | ((qh >> e) & 1) << 4) * d + m;
            out[e + 16] = (float)((q >> 4) | ((qh >> (e + 16)) & 1) << 4) * d + m;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q8_0>(const uint8_t *s, int c, float *out) {
    const uint8_t *b = s + c * 34;
    const float d = cq_h((uint16_t)gq_u16(b));
#pragma unroll
    for (int i = 0; i < 16; i++) {
        uint32_t v = gq_u16(b + 2 + 2 * i);
        out[2 * i] = (float)(int8_t)(v & 0xff) * d;
        out[2 * i + 1] = (float)(int8_t)(v >> 8) * d;
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q2_K>(const uint8_t *b, int j, float *out) {
    const float d = cq_h((uint16_t)gq_u16(b + 80)), dmin = cq_h((uint16_t)gq_u16(b + 82));
    const uint8_t *qs = b + 16 + 32 * (j / 4);
    const int sh = 2 * (j % 4);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const uint32_t sc = b[2 * j + h];
        const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t q2 = gq_u16(qs + 16 * h + 2 * i);
            out[16 * h + 2 * i] = dl * (float)((q2 >> sh) & 3) - ml;
            out[16 * h + 2 * i + 1] = dl * (float)((q2 >> (8 + sh)) & 3) - ml;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q3_K>(const uint8_t *b, int j, float *out) {
    const float d = cq_h((uint16_t)gq_u16(b + 108));
    const uint8_t *hm = b, *qs = b + 32 + 32 * (j / 4), *sc = b + 96;
    const int sh = 2 * (j % 4);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int s = 2 * j + h;
        const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
        const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        const float dl = d * (float)((low | high << 4) - 32);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int e = 16 * h + 2 * i;
            uint32_t q2 = gq_u16(qs + e), h2 = gq_u16(hm + e);
#pragma unroll
            for (int by = 0; by < 2; by++) {
                int q = (int)((q2 >> (8 * by + sh)) & 3) - (((h2 >> (8 * by + j)) & 1) ? 0 : 4);
                out[e + by] = dl * (float)q;
            }
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q4_K>(const uint8_t *b, int j, float *out) {
    const float d = cq_h((uint16_t)gq_u16(b)), dmin = cq_h((uint16_t)gq_u16(b + 2));
    float sc, m;
    cq_q4k_scale_min(b + 4, j, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    const uint4 *qs = (const uint4 *)(b + 16 + 32 * (j / 2)); /* Q4_K slices are 16-byte aligned (144 = 9 x 16) */
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 v = qs[k];
        uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int by = 0; by < 4; by++) out[16 * k + 4 * u + by] = dl * (float)((w[u] >> (8 * by + sh)) & 0x0F) - ml;
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q5_K>(const uint8_t *b, int j, float *out) {
    const float d = cq_h((uint16_t)gq_u16(b)), dmin = cq_h((uint16_t)gq_u16(b + 2));
    float sc, m;
    cq_q4k_scale_min(b + 4, j, &sc, &m);
    const float dl = d * sc, ml = dmin * m;
    const uint4 *qh = (const uint4 *)(b + 16); /* 176 = 11 x 16 */
    const uint4 *qs = (const uint4 *)(b + 48 + 32 * (j / 2));
    const int sh = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 v = qs[k], h = qh[k];
        uint32_t w[4] = {v.x, v.y, v.z, v.w}, hw[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int by = 0; by < 4; by++) {
                int q = ((w[u] >> (8 * by + sh)) & 0x0F) | ((hw[u] >> (8 * by + j)) & 1) << 4;
                out[16 * k + 4 * u + by] = dl * (float)q - ml;
            }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_Q6_K>(const uint8_t *b, int j, float *out) {
    const int h = j / 4, g = j % 4;
    const float d = cq_h((uint16_t)gq_u16(b + 208));
    const uint8_t *ql = b + 64 * h + 32 * (g & 1);
    const uint8_t *qh = b + 128 + 32 * h;
    const int8_t *scales = (const int8_t *)(b + 192);
    const int lsh = g < 2 ? 0 : 4, hsh = 2 * g;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const float dl = d * (float)scales[2 * j + half];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t l2 = gq_u16(ql + 16 * half + 2 * i), h2 = gq_u16(qh + 16 * half + 2 * i);
#pragma unroll
            for (int by = 0; by < 2; by++) {
                int q = (int)(((l2 >> (8 * by + lsh)) & 0x0F) | ((h2 >> (8 * by + hsh)) & 3) << 4) - 32;
                out[16 * half + 2 * i + by] = dl * (float)q;
            }
        }
    }
}

/* ---- PTX helpers (sm_80+) */

__device__ __forceinline__ void gq_mma(float *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* ---- the kernel */

/* Grouped mode: block x takes tile x of `tiles` ((expert, start, count)
 * triples, *n_tiles of them); its x rows are plist[start + i] / x_div and
 * its y rows plist[start + i]; the weights of expert e start at
 * w + e · expert_bytes. Dense mode: block x takes tokens [x·BM, x·BM + BM).
 * Split K (dense): block z takes slices [z·slices_per_split, ...) and
 * writes its partial sums to y + z·split_stride (k_gemm_split_sum adds them
 * in z order). */
struct gq_args {
    const uint8_t *w;
    const uint8_t *w_end;     /* end of the readable weight bytes */
    size_t row_bytes, expert_bytes;
    int64_t rows, n_chunks;   /* weight rows, 32-element chunks per row */
    const __half *x;
    int64_t ldk, n;           /* x row stride (halves); tokens (dense) */
    float *y;
    int64_t ldy;
    int64_t slices_per_split;
    size_t split_stride;      /* floats between split partials */
    const int32_t *tiles, *n_tiles, *plist;
    int32_t x_div;
};

template <int T, int BM, int BN, int BKX>
static constexpr size_t gq_smem_bytes() {
    return (size_t)(2 * BM + BN) * (BKX + 8) * 2 + (size_t)2 * BN * gq_traits<T>::slot;
}

/* One block: BM x BN outputs, 8 warps of (BM/WM) x (BN/(8/WM)). K advances
 * in steps of BKX (256 or 128) elements: x tiles are staged per step, the
 * raw weight slice (256 elements) per slice, and the slice's f16 tile is
 * unpacked a step at a time (BKX = 128 halves the x and f16 tiles, so a
 * 128x128 tile fits shared memory). */
template <int T, int BM, int BN, int WM, int BKX, bool GROUPED>
__global__ void __launch_bounds__(GQ_THREADS) k_qgemm(const gq_args a) {
    constexpr int WN = 8 / WM, WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NI = WTN / 8;
    static_assert(MI >= 1 && NI >= 2 && NI % 2 == 0, "warp tile");
    constexpr int LDS = BKX + 8, SPS = GQ_BK / BKX, CPS = BKX / 32, XV = BKX / 8;
    constexpr int SLOT = gq_traits<T>::slot, SLICE = gq_traits<T>::slice_bytes, WORDS = SLOT / 16;
    constexpr int PER = gq_traits<T>::per, BLOCK = gq_traits<T>::block_bytes;
    extern __shared__ __align__(16) uint8_t gq_smem[];
    __half *xs = (__half *)gq_smem;                         /* [2][BM][LDS] */
    __half *ws = xs + 2 * BM * LDS;                         /* [BN][LDS] */
    uint8_t *raw = (uint8_t *)(ws + BN * LDS);              /* [2][BN][SLOT] */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wm = warp / WN, wn = warp % WN;
    const int64_t r0 = (int64_t)blockIdx.y * BN;

    const uint8_t *w = a.w;
    int64_t m0;
    int mcount;
    const int32_t *map = nullptr;
    if (GROUPED) {
        if ((int)blockIdx.x >= *a.n_tiles) return;
        const int32_t *ti = a.tiles + 3 * blockIdx.x;
        w += (size_t)ti[0] * a.expert_bytes;
        m0 = ti[1];
        mcount = ti[2];
        map = a.plist + m0;
    } else {
        m0 = (int64_t)blockIdx.x * BM;
        mcount = (int)(a.n - m0 < BM ? a.n - m0 : BM);
    }
    float *const y = a.y + (size_t)blockIdx.z * a.split_stride;
    const int64_t nk = (a.n_chunks + 7) / 8;
    const int64_t slice0 = (int64_t)blockIdx.z * a.slices_per_split;
    const int64_t slice1 = slice0 + a.slices_per_split < nk ? slice0 + a.slices_per_split : nk;
    const int64_t steps_all = (a.n_chunks + CPS - 1) / CPS;
    const int64_t step0 = slice0 * SPS, step1 = slice1 * SPS < steps_all ? slice1 * SPS : steps_all;

    auto load_x = [&](int st, int64_t step) {
        const int64_t k0 = step * BKX;
#pragma unroll
        for (int v = tid; v < BM * XV; v += GQ_THREADS) {
            const int i = v / XV, kv = (v % XV) * 8;
            const bool ok = i < mcount && k0 + kv < a.ldk;
            int64_t xr = 0;
            if (ok) xr = GROUPED ? (int64_t)(map[i] / a.x_div) : m0 + i;
            ptx_cp_async16(&xs[(st * BM + i) * LDS + kv], a.x + (ok ? xr * a.ldk + k0 + kv : 0), ok ? 16 : 0);
        }
    };
    auto load_raw = [&](int64_t kt) {
        const int st = (int)(kt & 1);
        const int64_t chunks_left = a.n_chunks - kt * 8;
        const int bytes = PER == 1 ? (int)(chunks_left < 8 ? chunks_left : 8) * BLOCK : SLICE;
        for (int v = tid; v < BN * WORDS; v += GQ_THREADS) {
            const int rr = v / WORDS, wd = v % WORDS;
            const int64_t r = r0 + rr;
            if (r >= a.rows) continue;
            const uint8_t *start = w + (size_t)r * a.row_bytes + (size_t)kt * SLICE;
            const int off = (int)((uintptr_t)start & 15);
            if (wd * 16 >= off + bytes) continue;
            const uint8_t *src = start - off + wd * 16;
            const int64_t left = a.w_end - src;
            ptx_cp_async16(raw + (st * BN + rr) * SLOT + wd * 16, src, left < 16 ? (int)left : 16);
        }
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    const bool warp_busy = wm * WTM < mcount; /* small batches: warps past the last token skip the products */
    if (step0 < step1) {
        load_x(0, step0);
        load_raw(slice0);
        ptx_cp_async_commit();
    }
    for (int64_t s = step0; s < step1; s++) {
        const int xst = (int)((s - step0) & 1);
        const int64_t kt = s / SPS;
        const int part = (int)(s % SPS);
        ptx_cp_async_wait_all();
        __syncthreads(); /* step s landed; every warp is done with step s-1 */
        if (s + 1 < step1) {
            load_x(xst ^ 1, s + 1);
            if ((s + 1) % SPS == 0) load_raw((s + 1) / SPS);
            ptx_cp_async_commit();
        }
        /* unpack this step's chunks of slice kt: BN rows x CPS chunks */
        for (int v = tid; v < BN * CPS; v += GQ_THREADS) {
            const int rr = v / CPS, cl = v % CPS, c = part * CPS + cl;
            uint4 *o = (uint4 *)&ws[rr * LDS + cl * 32];
            const int64_t r = r0 + rr;
            if (r >= a.rows || kt * 8 + c >= a.n_chunks) {
#pragma unroll
                for (int q = 0; q < 4; q++) o[q] = make_uint4(0, 0, 0, 0);
                continue;
            }
            const uint8_t *start = w + (size_t)r * a.row_bytes + (size_t)kt * SLICE;
            const uint8_t *sp = raw + ((kt & 1) * BN + rr) * SLOT + ((uintptr_t)start & 15);
            float f[32];
            gq_chunk<T>(sp, c, f);
#pragma unroll
            for (int q = 0; q < 4; q++) {
                __half2 h[4];
#pragma unroll
                for (int e = 0; e < 4; e++) h[e] = __floats2half2_rn(f[8 * q + 2 * e], f[8 * q + 2 * e + 1]);
                o[q] = *(const uint4 *)h;
            }
        }
        __syncthreads();
        if (warp_busy) {
            const __half *xa = xs + (xst * BM + wm * WTM) * LDS;
            const __half *wb = ws + (wn * WTN) * LDS;
#pragma unroll
            for (int kk = 0; kk < BKX; kk += 16) {
                uint32_t af[MI][4], bf[NI][2];
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
                    ptx_ldmatrix_x4(af[mi], xa + (mi * 16 + (lane & 15)) * LDS + kk + (lane >> 4) * 8);
#pragma unroll
                for (int nj = 0; nj < NI / 2; nj++) {
                    uint32_t r[4];
                    ptx_ldmatrix_x4(r, wb + (nj * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + kk + ((lane >> 3) & 1) * 8);
                    bf[2 * nj][0] = r[0], bf[2 * nj][1] = r[1], bf[2 * nj + 1][0] = r[2], bf[2 * nj + 1][1] = r[3];
                }
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < NI; ni++) gq_mma(acc[mi][ni], af[mi], bf[ni]);
            }
        }
    }
    if (!warp_busy) return;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int i = wm * WTM + mi * 16 + (lane >> 2) + hh * 8;
            if (i >= mcount) continue;
            const int64_t yr = GROUPED ? (int64_t)map[i] : m0 + i;
            float *yrow = y + yr * a.ldy;
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int64_t r = r0 + wn * WTN + ni * 8 + (lane & 3) * 2;
                if (r < a.rows) yrow[r] = acc[mi][ni][2 * hh];
                if (r + 1 < a.rows) yrow[r + 1] = acc[mi][ni][2 * hh + 1];
            }
        }
}

/* y[t·ldy + r] = Σ_z part[z][t·rows + r], z in order (deterministic). */
__global__ void k_gemm_split_sum(const float *__restrict__ part, int splits, int64_t n, int64_t rows,
                                 float *__restrict__ y, int64_t ldy) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * rows) return;
    float s = part[i];
    for (int z = 1; z < splits; z++) s += part[(size_t)z * (size_t)(n * rows) + i];
    y[(i / rows) * ldy + i % rows] = s;
}

/* ---- host side */

/* Tile configurations (BM tokens x BN rows, K step): cuda_gemm_q picks
 * one, LARDER_CUDA_GEMM=3.. forces cfg - 3 (tests, timing). */
enum { GQ_64x128, GQ_64x64, GQ_64x32, GQ_128x64, GQ_128x128_K128, GQ_64x128_K128, GQ_N_CFG };
static const int gq_bm[GQ_N_CFG] = {64, 64, 64, 128, 128, 64}, gq_bn[GQ_N_CFG] = {128, 64, 32, 64, 128, 128},
                 gq_bkx[GQ_N_CFG] = {256, 256, 256, 256, 128, 128};

static size_t gq_slot_bytes(uint32_t t) {
    size_t slice = t == TYPE_F16 || t == TYPE_BF16 ? 512 : 0;
    switch (t) {
    case TYPE_Q4_0: slice = 18 * 8; break;
    case TYPE_Q4_1: slice = 20 * 8; break;
    case TYPE_Q5_0: slice = 22 * 8; break;
    case TYPE_Q5_1: slice = 24 * 8; break;
    case TYPE_Q8_0: slice = 34 * 8; break;
    case TYPE_Q2_K: slice = 84; break;
    case TYPE_Q3_K: slice = 110; break;
    case TYPE_Q4_K: slice = 144; break;
    case TYPE_Q5_K: slice = 176; break;
    case TYPE_Q6_K: slice = 210; break;
    default: break;
    }
    return (slice + 30) / 16 * 16;
}

static size_t gq_cfg_smem(uint32_t t, int cfg) {
    return (size_t)(2 * gq_bm[cfg] + gq_bn[cfg]) * (gq_bkx[cfg] + 8) * 2 + (size_t)2 * gq_bn[cfg] * gq_slot_bytes(t);
}

#define GQ_SMEM_MAX ((size_t)227 * 1024) /* sm_80 / sm_90 opt-in limit per block */
#define GQ_MAX_SPLITS 8

bool cuda_gemm_type_supported(uint32_t wtype) {
    return wtype != TYPE_F32 && gq_slot_bytes(wtype) > 0 && cuda_type_supported(wtype);
}

static bool gq_fits(uint32_t t, int cfg) { return gq_cfg_smem(t, cfg) <= GQ_SMEM_MAX; }

/* The tile for n tokens over `rows` (dense): n <= 64, 64x128 (every weight
 * byte read once; split K fills the GPU); else 128x128 where it fits
 * (16-bit weights: 64x128). `forced` (1..GQ_N_CFG) overrides. */
static int gq_pick(uint32_t t, int64_t n, int forced) {
    if (forced >= 1 && forced <= GQ_N_CFG && gq_fits(t, forced - 1)) return forced - 1;
    if (n > 64 && gq_fits(t, GQ_128x128_K128)) return GQ_128x128_K128;
    return GQ_64x128_K128;
}

template <int T, int BM, int BN, int WM, int BKX, bool GROUPED>
static int gq_launch_one(cuda_backend *c, const gq_args &a, dim3 grid, larder_error *err) {
    constexpr size_t smem = gq_smem_bytes<T, BM, BN, BKX>();
    if constexpr (smem > GQ_SMEM_MAX) {
        return error_set(err, ERR_UNSUPPORTED, "gemm: tile %dx%d does not fit shared memory for type %d", BM, BN, T);
    } else {
        static bool attr_set = false; /* per instantiation */
        if (!attr_set) {
            if (cuda_check(cudaFuncSetAttribute(k_qgemm<T, BM, BN, WM, BKX, GROUPED>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                           "gemm (shared memory limit)", err))
                return -1;
            attr_set = true;
        }
        k_qgemm<T, BM, BN, WM, BKX, GROUPED><<<grid, GQ_THREADS, smem, c->stream>>>(a);
        return cuda_check_launch("gemm (quantized tensor-core)", err);
    }
}

struct gq_dispatch {
    cuda_backend *c; const gq_args *a; int cfg; bool grouped; dim3 grid; larder_error *err; int rc;
    template <int T> void operator()() {
        if constexpr (T == TYPE_F32) {
            rc = error_set(err, ERR_UNSUPPORTED, "gemm: f32 weights take the GEMV");
        } else if (grouped) {
            rc = cfg == GQ_128x128_K128 ? gq_launch_one<T, 128, 128, 2, 128, true>(c, *a, grid, err)
                                        : gq_launch_one<T, 64, 128, 2, 128, true>(c, *a, grid, err);
        } else {
            switch (cfg) {
            case GQ_64x128: rc = gq_launch_one<T, 64, 128, 2, 256, false>(c, *a, grid, err); break;
            case GQ_64x64: rc = gq_launch_one<T, 64, 64, 2, 256, false>(c, *a, grid, err); break;
            case GQ_64x32: rc = gq_launch_one<T, 64, 32, 4, 256, false>(c, *a, grid, err); break;
            case GQ_128x64: rc = gq_launch_one<T, 128, 64, 4, 256, false>(c, *a, grid, err); break;
            case GQ_128x128_K128: rc = gq_launch_one<T, 128, 128, 2, 128, false>(c, *a, grid, err); break;
            default: rc = gq_launch_one<T, 64, 128, 2, 128, false>(c, *a, grid, err); break;
            }
        }
    }
};

int cuda_gemm_q(cuda_backend *c, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const __half *x16,
                int64_t ldk, int64_t n, float *y, int64_t ldy, int forced_cfg, larder_error *err) {
    if (!cuda_gemm_type_supported(wtype) || cols % 32 || ldk < cols || ldk % 32)
        return error_set(err, ERR_INVALID, "gemm: type %u with %lld columns (ldk %lld)", wtype, (long long)cols,
                         (long long)ldk);
    if (rows <= 0 || n <= 0) return 0;
    if ((uintptr_t)w & 15) /* the unpacking reads 16-byte words of F16/BF16/Q4_K/Q5_K slices */
        return error_set(err, ERR_UNSUPPORTED, "gemm: weights not 16-byte aligned");
    gq_args a = {};
    a.w = (const uint8_t *)w;
    a.row_bytes = tensor_row_bytes(wtype, cols);
    a.w_end = a.w + a.row_bytes * (size_t)rows;
    a.rows = rows, a.n_chunks = cols / 32;
    a.x = x16, a.ldk = ldk, a.n = n, a.y = y, a.ldy = ldy, a.x_div = 1;
    const int cfg = gq_pick(wtype, n, forced_cfg);
    const int64_t row_tiles = (rows + gq_bn[cfg] - 1) / gq_bn[cfg], m_tiles = (n + gq_bm[cfg] - 1) / gq_bm[cfg];
    if (row_tiles > 65535) return error_set(err, ERR_UNSUPPORTED, "gemm: %lld rows", (long long)rows);
    /* split K when the tiles leave SMs idle: each split keeps >= 2 slices;
     * partial sums go to a scratch and are added in split order */
    const int64_t nk = (a.n_chunks + 7) / 8, tiles = row_tiles * m_tiles, sms = c->n_sm > 0 ? c->n_sm : 1;
    int64_t splits = tiles >= sms ? 1 : (sms + tiles / 2) / tiles;
    if (splits > GQ_MAX_SPLITS) splits = GQ_MAX_SPLITS;
    if (splits > nk / 2) splits = nk / 2 > 0 ? nk / 2 : 1;
    a.slices_per_split = (nk + splits - 1) / splits;
    splits = (nk + a.slices_per_split - 1) / a.slices_per_split;
    if (splits > 1) {
        const size_t part = (size_t)n * (size_t)rows;
        if (cuda_scratch_reserve(c, &c->mm_w16, &c->mm_w16_bytes, part * (size_t)splits * sizeof(float),
                                 "matmul split-K scratch", err))
            return -1;
        a.y = (float *)c->mm_w16, a.ldy = rows, a.split_stride = part;
    }
    gq_dispatch d{c, &a, cfg, false, dim3((unsigned)m_tiles, (unsigned)row_tiles, (unsigned)splits), err, 0};
    if (!cq_dispatch(wtype, d)) return error_set(err, ERR_UNSUPPORTED, "gemm: weight type %u", wtype);
    if (d.rc || splits == 1) return d.rc;
    const int64_t total = n * rows;
    k_gemm_split_sum<<<(unsigned)((total + 255) / 256), 256, 0, c->stream>>>((const float *)c->mm_w16, (int)splits, n,
                                                                           rows, y, ldy);
    return cuda_check_launch("gemm (split-K sum)", err);
}

int cuda_gemm_q_grouped(cuda_backend *c, const void *w, uint32_t wtype, int32_t n_expert, int64_t rows, int64_t cols,
                        const __half *x16, int64_t ldk, int32_t x_div, const int32_t *tiles, const int32_t *n_tiles,
                        const int32_t *plist, int64_t max_tiles, int tile_bm, float *y, int64_t ldy, larder_error *err) {
    if (!cuda_gemm_type_supported(wtype) || cols % 32 || ldk < cols || ldk % 32 || x_div < 1)
        return error_set(err, ERR_INVALID, "grouped gemm: type %u with %lld columns", wtype, (long long)cols);
    if (rows <= 0 || max_tiles <= 0) return 0;
    if ((uintptr_t)w & 15) return error_set(err, ERR_UNSUPPORTED, "grouped gemm: weights not 16-byte aligned");
    gq_args a = {};
    a.w = (const uint8_t *)w;
    a.row_bytes = tensor_row_bytes(wtype, cols);
    a.expert_bytes = a.row_bytes * (size_t)rows;
    a.w_end = a.w + a.expert_bytes * (size_t)n_expert;
    a.rows = rows, a.n_chunks = cols / 32;
    a.x = x16, a.ldk = ldk, a.n = 0, a.y = y, a.ldy = ldy;
    a.slices_per_split = (a.n_chunks + 7) / 8;
    a.tiles = tiles, a.n_tiles = n_tiles, a.plist = plist, a.x_div = x_div;
    const int cfg = tile_bm == 128 && gq_fits(wtype, GQ_128x128_K128) ? GQ_128x128_K128 : GQ_64x128_K128;
    if (tile_bm != gq_bm[cfg]) return error_set(err, ERR_INVALID, "grouped gemm: tile of %d tokens", tile_bm);
    const int64_t row_tiles = (rows + gq_bn[cfg] - 1) / gq_bn[cfg];
    if (max_tiles > 0x7fffffff || row_tiles > 65535)
        return error_set(err, ERR_UNSUPPORTED, "grouped gemm: %lld tiles of %lld rows", (long long)max_tiles,
                         (long long)rows);
    gq_dispatch d{c, &a, cfg, true, dim3((unsigned)max_tiles, (unsigned)row_tiles, 1), err, 0};
    if (!cq_dispatch(wtype, d)) return error_set(err, ERR_UNSUPPORTED, "grouped gemm: weight type %u", wtype);
    return d.rc;
}

/* Whether the grouped product can take tiles of 128 tokens for this type. */
bool cuda_gemm_bm128_fits(uint32_t wtype) { return gq_fits(wtype, GQ_128x128_K128); }
