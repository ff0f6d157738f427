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
 * stages: slice k+1 streams in while slice k is computed), the raw bytes
 * are unpacked to an f16 tile in shared memory (the float steps of
 * cuda_quant.cuh, rounded to f16 once), and 8 warps multiply with
 * mma.sync m16n8k16 (f16 in, f32 accumulators, operands by ldmatrix).
 * Weight rows need not be 16-byte aligned (Q6_K rows are 210·k bytes): each
 * row's run is copied from its 16-byte aligned start and read at its offset;
 * the copy never reads past `w_end`.
 *
 * Tiles: BM = 64 for small batches (batched decode: every weight byte is
 * read once per call when n <= 64) with BN = 128/64/32 chosen so the grid
 * fills the GPU; BM = 128, BN = 64 for prefills. x16 is zero beyond the
 * real columns (ldk = cols rounded up to 32); rows of x past n are zero.
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_quant.cuh"

#define GQ_BK 256            /* K elements per slice */
#define GQ_LDS (GQ_BK + 8)   /* f16 tile row stride (halves): 528 bytes, ldmatrix without bank conflicts */
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
    for (int i = 0; i < 4; i++) {
        uint4 v = p[i];
        uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = __half22float2(*(const __half2 *)&w[k]);
            out[8 * i + 2 * k] = f.x, out[8 * i + 2 * k + 1] = f.y;
        }
    }
}

template <> __device__ __forceinline__ void gq_chunk<TYPE_BF16>(const uint8_t *s, int c, float *out) {
    const uint4 *p = (const uint4 *)(s + c * 64);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint4 v = p[i];
        uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            out[8 * i + 2 * k] = __uint_as_float(w[k] << 16);
            out[8 * i + 2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
        }
    }
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

__device__ __forceinline__ void gq_cp16(void *smem, const void *gmem, int src_bytes) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void gq_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void gq_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void gq_ldmatrix_x4(uint32_t *r, const __half *p) {
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

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
 * w + e · expert_bytes. Dense mode: block x takes tokens [x·BM, x·BM + BM). */
struct gq_args {
    const uint8_t *w;
    const uint8_t *w_end;     /* end of the readable weight bytes */
    size_t row_bytes, expert_bytes;
    int64_t rows, n_chunks;   /* weight rows, 32-element chunks per row */
    const __half *x;
    int64_t ldk, n;           /* x row stride (halves); tokens (dense) */
    float *y;
    int64_t ldy;
    const int32_t *tiles, *n_tiles, *plist;
    int32_t x_div;
};

template <int T, int BM, int BN>
static constexpr size_t gq_smem_bytes() {
    return (size_t)(2 * BM + BN) * GQ_LDS * 2 + (size_t)2 * BN * gq_traits<T>::slot;
}

template <int T, int BM, int BN, int WM, bool GROUPED>
__global__ void __launch_bounds__(GQ_THREADS) k_qgemm(const gq_args a) {
    constexpr int WN = 8 / WM, WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NI = WTN / 8;
    static_assert(MI >= 1 && NI >= 2 && NI % 2 == 0, "warp tile");
    constexpr int SLOT = gq_traits<T>::slot, SLICE = gq_traits<T>::slice_bytes, WORDS = SLOT / 16;
    constexpr int PER = gq_traits<T>::per, BLOCK = gq_traits<T>::block_bytes;
    extern __shared__ __align__(16) uint8_t gq_smem[];
    __half *xs = (__half *)gq_smem;                         /* [2][BM][GQ_LDS] */
    __half *ws = xs + 2 * BM * GQ_LDS;                      /* [BN][GQ_LDS] */
    uint8_t *raw = (uint8_t *)(ws + BN * GQ_LDS);           /* [2][BN][SLOT] */
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
    const int64_t nk = (a.n_chunks + 7) / 8;

    auto load = [&](int st, int64_t kt) {
        const int64_t k0 = kt * GQ_BK;
#pragma unroll
        for (int v = tid; v < BM * 32; v += GQ_THREADS) {
            const int i = v >> 5, kv = (v & 31) * 8;
            const bool ok = i < mcount && k0 + kv < a.ldk;
            int64_t xr = 0;
            if (ok) xr = GROUPED ? (int64_t)(map[i] / a.x_div) : m0 + i;
            gq_cp16(&xs[(st * BM + i) * GQ_LDS + kv], a.x + (ok ? xr * a.ldk + k0 + kv : 0), ok ? 16 : 0);
        }
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
            gq_cp16(raw + (st * BN + rr) * SLOT + wd * 16, src, left < 16 ? (int)left : 16);
        }
        gq_commit();
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    const bool warp_busy = wm * WTM < mcount; /* small batches: warps past the last token skip the products */
    load(0, 0);
    for (int64_t kt = 0; kt < nk; kt++) {
        const int st = (int)(kt & 1);
        gq_wait_all();
        __syncthreads(); /* slice kt landed; every warp is done with slice kt-1 */
        if (kt + 1 < nk) load(st ^ 1, kt + 1);
        /* unpack slice kt: BN rows x 8 chunks */
        for (int v = tid; v < BN * 8; v += GQ_THREADS) {
            const int rr = v >> 3, c = v & 7;
            uint4 *o = (uint4 *)&ws[rr * GQ_LDS + c * 32];
            const int64_t r = r0 + rr;
            if (r >= a.rows || kt * 8 + c >= a.n_chunks) {
#pragma unroll
                for (int q = 0; q < 4; q++) o[q] = make_uint4(0, 0, 0, 0);
                continue;
            }
            const uint8_t *start = w + (size_t)r * a.row_bytes + (size_t)kt * SLICE;
            const uint8_t *s = raw + (st * BN + rr) * SLOT + ((uintptr_t)start & 15);
            float f[32];
            gq_chunk<T>(s, c, f);
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
            const __half *xa = xs + (st * BM + wm * WTM) * GQ_LDS;
            const __half *wb = ws + (wn * WTN) * GQ_LDS;
#pragma unroll
            for (int kk = 0; kk < GQ_BK; kk += 16) {
                uint32_t af[MI][4], bf[NI][2];
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
                    gq_ldmatrix_x4(af[mi], xa + (mi * 16 + (lane & 15)) * GQ_LDS + kk + (lane >> 4) * 8);
#pragma unroll
                for (int nj = 0; nj < NI / 2; nj++) {
                    uint32_t r[4];
                    gq_ldmatrix_x4(r, wb + (nj * 16 + (lane & 7) + (lane >> 4) * 8) * GQ_LDS + kk + ((lane >> 3) & 1) * 8);
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
            float *yrow = a.y + yr * a.ldy;
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int64_t r = r0 + wn * WTN + ni * 8 + (lane & 3) * 2;
                if (r < a.rows) yrow[r] = acc[mi][ni][2 * hh];
                if (r + 1 < a.rows) yrow[r + 1] = acc[mi][ni][2 * hh + 1];
            }
        }
}

/* ---- host side */

/* Tile configurations, in the order cuda_gemm_pick tries them. */
enum { GQ_64x128, GQ_64x64, GQ_64x32, GQ_128x64, GQ_N_CFG };
static const int gq_bm[GQ_N_CFG] = {64, 64, 64, 128}, gq_bn[GQ_N_CFG] = {128, 64, 32, 64};

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
    return (size_t)(2 * gq_bm[cfg] + gq_bn[cfg]) * GQ_LDS * 2 + (size_t)2 * gq_bn[cfg] * gq_slot_bytes(t);
}

#define GQ_SMEM_MAX ((size_t)227 * 1024) /* sm_80 / sm_90 opt-in limit per block */

bool cuda_gemm_type_supported(uint32_t wtype) {
    return wtype != TYPE_F32 && gq_slot_bytes(wtype) > 0 && cuda_type_supported(wtype);
}

/* The tile configuration for n tokens (or groups of ~n_avg tokens) over
 * `rows`: BM = 128 when the token tiles are full enough and the grid still
 * fills the GPU, else BM = 64 with the widest BN that gives every SM a
 * block. `forced` (1..GQ_N_CFG) overrides (tests, A/B timing). */
static int gq_pick(const cuda_backend *c, uint32_t t, int64_t n_tiles_m64, int64_t n_tiles_m128, int64_t rows,
                   int forced) {
    if (forced >= 1 && forced <= GQ_N_CFG && gq_cfg_smem(t, forced - 1) <= GQ_SMEM_MAX) return forced - 1;
    const int64_t sms = c->n_sm > 0 ? c->n_sm : 1;
    if (n_tiles_m128 > 0 && gq_cfg_smem(t, GQ_128x64) <= GQ_SMEM_MAX &&
        n_tiles_m128 * ((rows + 63) / 64) >= sms)
        return GQ_128x64;
    for (int cfg = GQ_64x128; cfg <= GQ_64x64; cfg++)
        if (gq_cfg_smem(t, cfg) <= GQ_SMEM_MAX && n_tiles_m64 * ((rows + gq_bn[cfg] - 1) / gq_bn[cfg]) >= sms) return cfg;
    return GQ_64x32;
}

template <int T, int BM, int BN, int WM, bool GROUPED>
static int gq_launch_one(cuda_backend *c, const gq_args &a, unsigned grid_x, larder_error *err) {
    constexpr size_t smem = gq_smem_bytes<T, BM, BN>();
    if constexpr (smem > GQ_SMEM_MAX) {
        return error_set(err, ERR_UNSUPPORTED, "gemm: tile %dx%d does not fit shared memory for type %d", BM, BN, T);
    } else {
        static bool attr_set = false; /* per instantiation */
        if (!attr_set) {
            if (cuda_check(cudaFuncSetAttribute(k_qgemm<T, BM, BN, WM, GROUPED>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                           "gemm (shared memory limit)", err))
                return -1;
            attr_set = true;
        }
        dim3 grid(grid_x, (unsigned)((a.rows + BN - 1) / BN));
        k_qgemm<T, BM, BN, WM, GROUPED><<<grid, GQ_THREADS, smem, c->stream>>>(a);
        return cuda_check_launch("gemm (quantized tensor-core)", err);
    }
}

struct gq_dispatch {
    cuda_backend *c; const gq_args *a; int cfg; bool grouped; unsigned grid_x; larder_error *err; int rc;
    template <int T> void operator()() {
        if constexpr (T == TYPE_F32) {
            rc = error_set(err, ERR_UNSUPPORTED, "gemm: f32 weights take the GEMV");
        } else if (grouped) {
            rc = cfg == GQ_64x32 ? gq_launch_one<T, 64, 32, 4, true>(c, *a, grid_x, err)
               : cfg == GQ_128x64 ? gq_launch_one<T, 128, 64, 4, true>(c, *a, grid_x, err)
                                  : gq_launch_one<T, 64, 64, 2, true>(c, *a, grid_x, err);
        } else {
            switch (cfg) {
            case GQ_64x128: rc = gq_launch_one<T, 64, 128, 2, false>(c, *a, grid_x, err); break;
            case GQ_64x64: rc = gq_launch_one<T, 64, 64, 2, false>(c, *a, grid_x, err); break;
            case GQ_64x32: rc = gq_launch_one<T, 64, 32, 4, false>(c, *a, grid_x, err); break;
            default: rc = gq_launch_one<T, 128, 64, 4, false>(c, *a, grid_x, err); break;
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
    const int cfg = gq_pick(c, wtype, (n + 63) / 64, n > 64 ? (n + 127) / 128 : 0, rows, forced_cfg);
    if ((rows + gq_bn[cfg] - 1) / gq_bn[cfg] > 65535)
        return error_set(err, ERR_UNSUPPORTED, "gemm: %lld rows", (long long)rows);
    gq_dispatch d{c, &a, cfg, false, (unsigned)((n + gq_bm[cfg] - 1) / gq_bm[cfg]), err, 0};
    if (!cq_dispatch(wtype, d)) return error_set(err, ERR_UNSUPPORTED, "gemm: weight type %u", wtype);
    return d.rc;
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
    a.tiles = tiles, a.n_tiles = n_tiles, a.plist = plist, a.x_div = x_div;
    int cfg = tile_bm == 128 && gq_cfg_smem(wtype, GQ_128x64) <= GQ_SMEM_MAX ? GQ_128x64
            : (rows + 63) / 64 * max_tiles >= c->n_sm ? GQ_64x64 : GQ_64x32;
    if (tile_bm != gq_bm[cfg]) return error_set(err, ERR_INVALID, "grouped gemm: tile of %d tokens", tile_bm);
    if (max_tiles > 0x7fffffff || (rows + gq_bn[cfg] - 1) / gq_bn[cfg] > 65535)
        return error_set(err, ERR_UNSUPPORTED, "grouped gemm: %lld tiles of %lld rows", (long long)max_tiles,
                         (long long)rows);
    gq_dispatch d{c, &a, cfg, true, (unsigned)max_tiles, err, 0};
    if (!cq_dispatch(wtype, d)) return error_set(err, ERR_UNSUPPORTED, "grouped gemm: weight type %u", wtype);
    return d.rc;
}

/* Whether the grouped product can take tiles of 128 tokens for this type. */
bool cuda_gemm_bm128_fits(uint32_t wtype) { return gq_cfg_smem(wtype, GQ_128x64) <= GQ_SMEM_MAX; }
