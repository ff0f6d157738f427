/*
 * cuda_mmq.cu — the integer tensor-core matrix product on quantized
 * activations ("MMQ") for products of more than GEMV_MAX_TOKENS tokens:
 *
 *     y (n, rows; row stride ldy) = x̃ (n, cols) · Wᵀ
 *
 * computed as the CPU computes it: x is quantized to 8 bits in the weight's
 * vec dot type (Q8_0 / Q8_1 / Q8_K, cuda_act_round.cuh's rules), the
 * weight's quants are unpacked to int8, and per block of the weight type the
 * integer dot Σ q_w·q_x is exact (mma.sync s8·s8 → s32); the block's float
 * scales are applied afterwards, as in src/tensor/quant_k.c and
 * quant_legacy.c:
 *   Q4_K, Q5_K   isum = Σ_j sc_j·dot_j (sub-blocks of 32), summ = Σ_j m_j·bsum_j,
 *                y += (dx·d)·isum − (dx·dmin)·summ   per super-block
 *   Q6_K, Q3_K   isum = Σ_s sc_s·dot_s (sub-blocks of 16), y += (dx·d)·isum
 *   Q4_0, Q5_0, Q8_0   y += dot·(dw·dx)  per block of 32
 *   Q4_1, Q5_1   y += dot·(dw·dx) + mw·sx  (sx: Q8_1's f16(dx·Σq))
 * so the result equals the CPU backend's product up to the order of float
 * additions. Q2_K (and the float types) keep cuda_gemm.cu's path.
 *
 * Activations (cuda_mmq_act): one 320-byte record per token and 256-element
 * step g at xq + (t·steps + g)·320:
 *   [0, 256)    int8 quants of elements 256g.. (0 past cols)
 *   [256, 288)  f32 scale per 32-element block (Q8_K: the block's d, 8 times)
 *   [288, 320)  Q8_1: f32 s per 32-element block (f16(d·Σq), the CPU's);
 *               Q8_K: 16 f16 (lo_j, j < 8, then hi_j) with the sum of
 *               sub-block j's 32 quants = 64·hi_j + lo_j (|lo| <= 32,
 *               |hi| <= 64: exact in f16), for the min term's MMA.
 *
 * The kernel: a block of 8 warps computes BM (64 | 128) tokens x BN (64 |
 * 128) weight rows, walking K a 256-element step at a time (one K-quant super-block or
 * 8 legacy blocks; a contiguous byte run of every row). Per step the
 * activation records and the raw weight bytes are copied to shared memory
 * by cp.async (two stages: step s+1 streams in while s is computed), the
 * raw bytes are unpacked to int8 rows plus a per-row scale record, and each
 * warp multiplies its (BM/2) x (BN/4) tile with mma m16n8k32 (m16n8k16 for the
 * 16-element sub-blocks), operands by ldmatrix. The K-quants' min term
 * Σ_j m_j·bsum_j is itself a small product (tokens x 16 by 16 x rows, f16
 * operands lo/hi and m/64·m: every value and partial sum an integer below
 * 2^24, so the f32 MMA is exact). For n <= 64 (tiles of 64), K is split
 * over blockIdx.z when the tiles alone leave SMs idle; partial sums are
 * added in split order (the result does not depend on timing).
 */
#include <cuda_fp16.h>

#include "backend/cuda/cuda_act_round.cuh"
#include "backend/cuda/cuda_mmq.cuh"
#include "backend/cuda/cuda_ptx.cuh"

#define MQ_THREADS 256
#define MQ_XLD (MQ_XREC + 16)      /* an activation record's shared-memory stride (ldmatrix rows in distinct banks) */
#define MQ_WLD (MQ_BK + 16)        /* unpacked int8 weight row stride */
#define MQ_SMEM_MAX ((size_t)227 * 1024)
#define MQ_MAX_SPLITS 8

/* ---- activations */

template <int A>
__global__ void __launch_bounds__(128) k_mmq_act(const float *__restrict__ x, int64_t n, int64_t cols, int64_t steps,
                                                 uint8_t *__restrict__ out) {
    const int64_t gw = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (gw >= n * steps) return;
    const int lane = threadIdx.x & 31;
    const int64_t t = gw / steps, g = gw % steps;
    const int64_t k0 = g * MQ_BK + lane * 8;
    const float *xr = x + t * cols;
    float q[8], d32, dq;
#pragma unroll
    for (int i = 0; i < 8; i++) q[i] = k0 + i < cols ? xr[k0 + i] : 0.0f;
    act_quant8<A>(q, lane, &dq, &d32); /* q: the quants now */
    uint8_t *rec = out + (size_t)gw * MQ_XREC;
    uint32_t w[2] = {0, 0};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int qi = (int)q[i];
        sum += qi;
        w[i / 4] |= (uint32_t)(qi & 0xff) << (8 * (i % 4));
    }
    *(uint2 *)(rec + lane * 8) = make_uint2(w[0], w[1]);
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2); /* lanes 4j..4j+3: the sum of block j's 32 quants */
    if ((lane & 3) == 0) {
        const int j = lane >> 2;
        ((float *)(rec + 256))[j] = dq;
        if (A == TYPE_Q8_1) {
            ((float *)(rec + 288))[j] = __half2float(__float2half_rn(d32 * (float)sum));
        } else if (A == TYPE_Q8_K) {
            const int hi = (sum + 32) >> 6, lo = sum - 64 * hi; /* |lo| <= 32 */
            __half *h = (__half *)(rec + 288);
            h[j] = __int2half_rn(lo);
            h[8 + j] = __int2half_rn(hi);
        } else {
            ((float *)(rec + 288))[j] = 0.0f;
        }
    }
}

/* ---- PTX helpers (sm_80+) */

/* d = a (16x32 s8) · b (32x8 s8), s32 */
__device__ __forceinline__ void mq_mma_k32(int *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%10,%10,%10};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(0));
}
/* d = a (16x16 s8: a0 rows 0-7, a1 rows 8-15) · b (16x8 s8), s32 */
__device__ __forceinline__ void mq_mma_k16(int *d, uint32_t a0, uint32_t a1, uint32_t b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
                 "{%7,%7,%7,%7};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a0), "r"(a1), "r"(b), "r"(0));
}
/* d = a (16x16 f16) · b (16x8 f16), f32 */
__device__ __forceinline__ void mq_mma_f16(float *d, const uint32_t *a, const uint32_t *b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%10,%10,%10};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(0.0f));
}

/* ---- the kernel */

/* Block z of a split-K launch takes steps [z·steps_per_split, ...) and
 * writes its partial sums to y + z·split_stride (k_mmq_split_sum adds them). */
struct mq_args {
    const uint8_t *w;
    const uint8_t *w_end;     /* end of the readable weight bytes */
    size_t row_bytes;
    int64_t rows, n_chunks;   /* weight rows; 32-element chunks per row */
    const uint8_t *x;         /* activation records (cuda_mmq_act) */
    int64_t steps, n;         /* 256-element steps per row; tokens */
    float *y;
    int64_t ldy;
    int64_t steps_per_split;
    size_t split_stride;      /* floats between split partials */
};

template <int T, int BM, int BN> static constexpr size_t mq_smem_bytes() {
    return (size_t)2 * BM * MQ_XLD + (size_t)2 * BN * mq_slot<T>::bytes + (size_t)BN * MQ_WLD +
           (size_t)BN * MQ_SREC * 4;
}

template <int T, int BM, int BN>
__global__ void __launch_bounds__(MQ_THREADS, BN == 64 ? 2 : 1) k_mmq(const mq_args a) { /* 64x64: two blocks an SM */
    constexpr int KIND = mq_traits<T>::kind, SLICE = mq_traits<T>::slice, BLOCK = mq_traits<T>::block;
    constexpr int SLOT = mq_slot<T>::bytes, WORDS = SLOT / 16;
    constexpr int WM = 2, WN = 4, WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NI = WTN / 8;
    static_assert(NI % 2 == 0 && MI >= 1, "warp tile");
    extern __shared__ __align__(16) uint8_t mq_smem[];
    uint8_t *xs = mq_smem;                                /* [2][BM][MQ_XLD] */
    uint8_t *raw = xs + 2 * BM * MQ_XLD;                  /* [2][BN][SLOT] */
    uint8_t *wq = raw + 2 * BN * SLOT;                 /* [BN][MQ_WLD] int8 */
    uint32_t *srec = (uint32_t *)(wq + BN * MQ_WLD);   /* [BN][MQ_SREC] */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wm = warp / WN, wn = warp % WN, g = lane >> 2, t4 = lane & 3;
    const int64_t r0 = (int64_t)blockIdx.y * BN, m0 = (int64_t)blockIdx.x * BM;
    const int mcount = (int)(a.n - m0 < BM ? a.n - m0 : BM);
    float *const y = a.y + (size_t)blockIdx.z * a.split_stride;
    const int64_t step0 = (int64_t)blockIdx.z * a.steps_per_split;
    const int64_t step1 = step0 + a.steps_per_split < a.steps ? step0 + a.steps_per_split : a.steps;

    auto load = [&](int st, int64_t step) {
        for (int v = tid; v < BM * (MQ_XREC / 16); v += MQ_THREADS) {
            const int i = v / (MQ_XREC / 16), o = (v % (MQ_XREC / 16)) * 16;
            const bool ok = i < mcount;
            ptx_cp_async16(xs + (st * BM + i) * MQ_XLD + o, a.x + (ok ? ((m0 + i) * a.steps + step) * MQ_XREC + o : 0),
                    ok ? 16 : 0);
        }
        const int64_t chunks_left = a.n_chunks - step * 8;
        const int bytes = BLOCK == SLICE ? SLICE : (int)(chunks_left < 8 ? chunks_left : 8) * BLOCK;
        for (int v = tid; v < BN * WORDS; v += MQ_THREADS) {
            const int rr = v / WORDS, wd = v % WORDS;
            const int64_t r = r0 + rr;
            if (r >= a.rows) continue;
            const uint8_t *start = a.w + (size_t)r * a.row_bytes + (size_t)step * SLICE;
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

    const bool warp_busy = wm * WTM < mcount;
    if (step0 < step1) {
        load(0, step0);
        ptx_cp_async_commit();
    }
    for (int64_t s = step0; s < step1; s++) {
        const int st = (int)((s - step0) & 1);
        ptx_cp_async_wait_all();
        __syncthreads(); /* step s landed; every warp is done with step s-1's unpacked rows */
        if (s + 1 < step1) {
            load(st ^ 1, s + 1);
            ptx_cp_async_commit();
        }
        /* unpack: BN rows x 8 chunks */
        for (int v = tid; v < BN * 8; v += MQ_THREADS) {
            const int rr = v >> 3, c = v & 7;
            const int64_t r = r0 + rr;
            if (r >= a.rows) continue; /* that row's outputs are never stored */
            uint32_t *rec = srec + rr * MQ_SREC;
            uint4 *o = (uint4 *)(wq + rr * MQ_WLD + c * 32);
            if (s * 8 + c >= a.n_chunks) { /* past the row's end (legacy types): zero quants and scales */
                o[0] = o[1] = make_uint4(0, 0, 0, 0);
                ((float *)rec)[16 + c] = 0.0f, ((float *)rec)[24 + c] = 0.0f;
                continue;
            }
            const uint8_t *start = a.w + (size_t)r * a.row_bytes + (size_t)s * SLICE;
            const uint8_t *sp = raw + (st * BN + rr) * SLOT + ((uintptr_t)start & 15);
            uint32_t q[8];
            mq_unpack<T>(sp, c, q, rec);
            o[0] = make_uint4(q[0], q[1], q[2], q[3]);
            o[1] = make_uint4(q[4], q[5], q[6], q[7]);
        }
        __syncthreads();
        if (!warp_busy) continue;
        const uint8_t *xa = xs + (st * BM + wm * WTM) * MQ_XLD;
        const uint8_t *wb = wq + (wn * WTN) * MQ_WLD;
        const uint32_t *rb = srec + (wn * WTN) * MQ_SREC;
        int isum[MI][NI][4];
        if (KIND == MQ_K_MIN || KIND == MQ_K16) {
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) isum[i][j][e] = 0;
        }
#pragma unroll 2
        for (int c = 0; c < 8; c++) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
                ptx_ldmatrix_x4(af[mi], xa + (mi * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * MQ_XLD + c * 32 +
                                           (lane >> 4) * 16);
#pragma unroll
            for (int nj = 0; nj < NI / 2; nj++) {
                uint32_t r[4];
                ptx_ldmatrix_x4(r, wb + (nj * 16 + (lane >> 4) * 8 + (lane & 7)) * MQ_WLD + c * 32 + ((lane >> 3) & 1) * 16);
                bf[2 * nj][0] = r[0], bf[2 * nj][1] = r[1], bf[2 * nj + 1][0] = r[2], bf[2 * nj + 1][1] = r[3];
            }
            if constexpr (KIND == MQ_K_MIN) {
                int sc[NI][2];
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
#pragma unroll
                    for (int e = 0; e < 2; e++) sc[ni][e] = (int)rb[(ni * 8 + 2 * t4 + e) * MQ_SREC + c];
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < NI; ni++) {
                        int d[4];
                        mq_mma_k32(d, af[mi], bf[ni]);
#pragma unroll
                        for (int e = 0; e < 4; e++) isum[mi][ni][e] += sc[ni][e & 1] * d[e];
                    }
            } else if constexpr (KIND == MQ_K16) {
                int sc[NI][2][2];
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
#pragma unroll
                        for (int h = 0; h < 2; h++) sc[ni][e][h] = (int)rb[(ni * 8 + 2 * t4 + e) * MQ_SREC + 2 * c + h];
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < NI; ni++) {
                        int d0[4], d1[4];
                        mq_mma_k16(d0, af[mi][0], af[mi][1], bf[ni][0]);
                        mq_mma_k16(d1, af[mi][2], af[mi][3], bf[ni][1]);
#pragma unroll
                        for (int e = 0; e < 4; e++) isum[mi][ni][e] += sc[ni][e & 1][0] * d0[e] + sc[ni][e & 1][1] * d1[e];
                    }
            } else {
                /* legacy: one block per chunk; y += dot · (dw · dx) (+ mw · sx) */
                float dw[NI][2], mw[NI][2], dx[MI][2], sx[MI][2];
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const float *rf = (const float *)(rb + (ni * 8 + 2 * t4 + e) * MQ_SREC);
                        dw[ni][e] = rf[16 + c];
                        mw[ni][e] = KIND == MQ_LEGACY_MIN ? rf[24 + c] : 0.0f;
                    }
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const float *xf = (const float *)(xa + (mi * 16 + g + 8 * h) * MQ_XLD + 256);
                        dx[mi][h] = xf[c];
                        sx[mi][h] = KIND == MQ_LEGACY_MIN ? xf[8 + c] : 0.0f;
                    }
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int ni = 0; ni < NI; ni++) {
                        int d[4];
                        mq_mma_k32(d, af[mi], bf[ni]);
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const float f = (float)d[e] * (dw[ni][e & 1] * dx[mi][e >> 1]);
                            acc[mi][ni][e] += KIND == MQ_LEGACY_MIN ? f + mw[ni][e & 1] * sx[mi][e >> 1] : f;
                        }
                    }
            }
        }
        if constexpr (KIND == MQ_K_MIN || KIND == MQ_K16) {
            /* per super-block: y += (dx·d)·isum − (dx·dmin)·summ */
            float summ[MI][NI][4] = {};
            if constexpr (KIND == MQ_K_MIN) {
                uint32_t bm[NI][2];
#pragma unroll
                for (int ni = 0; ni < NI; ni++) {
                    const uint32_t *rr = rb + (ni * 8 + g) * MQ_SREC + 32;
                    bm[ni][0] = rr[t4], bm[ni][1] = rr[4 + t4];
                }
#pragma unroll
                for (int mi = 0; mi < MI; mi++) {
                    uint32_t am[4];
                    const uint32_t *x0 = (const uint32_t *)(xa + (mi * 16 + g) * MQ_XLD + 288);
                    const uint32_t *x1 = (const uint32_t *)(xa + (mi * 16 + g + 8) * MQ_XLD + 288);
                    am[0] = x0[t4], am[1] = x1[t4], am[2] = x0[4 + t4], am[3] = x1[4 + t4];
#pragma unroll
                    for (int ni = 0; ni < NI; ni++) mq_mma_f16(summ[mi][ni], am, bm[ni]);
                }
            }
            float dw[NI][2], dm[NI][2];
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float *rf = (const float *)(rb + (ni * 8 + 2 * t4 + e) * MQ_SREC);
                    dw[ni][e] = rf[16];
                    dm[ni][e] = KIND == MQ_K_MIN ? rf[17] : 0.0f;
                }
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const float dx = *(const float *)(xa + (mi * 16 + g + 8 * h) * MQ_XLD + 256);
#pragma unroll
                    for (int ni = 0; ni < NI; ni++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float f = (dx * dw[ni][e]) * (float)isum[mi][ni][2 * h + e];
                            acc[mi][ni][2 * h + e] +=
                                KIND == MQ_K_MIN ? f - (dx * dm[ni][e]) * summ[mi][ni][2 * h + e] : f;
                        }
                }
        }
    }
    if (!warp_busy) return;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int i = wm * WTM + mi * 16 + g + 8 * h;
            if (i >= mcount) continue;
            float *yrow = y + (m0 + i) * a.ldy;
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int64_t r = r0 + wn * WTN + ni * 8 + 2 * t4;
                if (r < a.rows) yrow[r] = acc[mi][ni][2 * h];
                if (r + 1 < a.rows) yrow[r + 1] = acc[mi][ni][2 * h + 1];
            }
        }
}

/* y[t·ldy + r] = Σ_z part[z][t·rows + r], z in order (deterministic). */
__global__ void k_mmq_split_sum(const float *__restrict__ part, int splits, int64_t n, int64_t rows,
                                float *__restrict__ y, int64_t ldy) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * rows) return;
    float s = part[i];
    for (int z = 1; z < splits; z++) s += part[(size_t)z * (size_t)(n * rows) + i];
    y[(i / rows) * ldy + i % rows] = s;
}

/* ---- host side */

bool cuda_mmq_type_supported(uint32_t wtype) {
    switch (wtype) {
    case TYPE_Q4_0: case TYPE_Q4_1: case TYPE_Q5_0: case TYPE_Q5_1: case TYPE_Q8_0:
    case TYPE_Q3_K: case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K: return true;
    default: return false;
    }
}

int64_t cuda_mmq_steps(int64_t cols) { return (cols + MQ_BK - 1) / MQ_BK; }

size_t cuda_mmq_act_bytes(int64_t n, int64_t cols) { return (size_t)n * (size_t)cuda_mmq_steps(cols) * MQ_XREC; }

int cuda_mmq_act(cuda_backend *c, uint32_t wtype, const float *x, int64_t n, int64_t cols, void *out,
                 larder_error *err) {
    if (!cuda_mmq_type_supported(wtype) || cols <= 0 || cols % 32)
        return error_set(err, ERR_INVALID, "mmq: type %u with %lld columns", wtype, (long long)cols);
    if (n <= 0) return 0;
    const uint32_t act = quant_vec_dot_type(wtype);
    const int64_t steps = cuda_mmq_steps(cols), warps = n * steps;
    const unsigned blocks = (unsigned)((warps + 3) / 4);
    switch (act) {
    case TYPE_Q8_0: k_mmq_act<TYPE_Q8_0><<<blocks, 128, 0, c->stream>>>(x, n, cols, steps, (uint8_t *)out); break;
    case TYPE_Q8_1: k_mmq_act<TYPE_Q8_1><<<blocks, 128, 0, c->stream>>>(x, n, cols, steps, (uint8_t *)out); break;
    case TYPE_Q8_K:
        if (cols % 256) return error_set(err, ERR_INVALID, "mmq: %lld columns of a K-quant", (long long)cols);
        k_mmq_act<TYPE_Q8_K><<<blocks, 128, 0, c->stream>>>(x, n, cols, steps, (uint8_t *)out);
        break;
    default: return error_set(err, ERR_UNSUPPORTED, "mmq: weight type %u has no 8-bit activation type", wtype);
    }
    return cuda_check_launch("mmq (activation quants)", err);
}

template <int T, int BM, int BN>
static int mq_launch_one(cuda_backend *c, const mq_args &a, dim3 grid, larder_error *err) {
    constexpr size_t smem = mq_smem_bytes<T, BM, BN>();
    static_assert(smem <= MQ_SMEM_MAX, "mmq tile does not fit shared memory");
    static bool attr_set = false; /* per instantiation */
    if (!attr_set) {
        if (cuda_check(cudaFuncSetAttribute(k_mmq<T, BM, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                       "mmq (shared memory limit)", err))
            return -1;
        attr_set = true;
    }
    k_mmq<T, BM, BN><<<grid, MQ_THREADS, smem, c->stream>>>(a);
    return cuda_check_launch("mmq (integer tensor-core)", err);
}

/* Tiles (tokens x weight rows): cuda_mmq_tile picks one by n; forced 1..3 */
enum { MQ_AUTO, MQ_64x128, MQ_64x64, MQ_128x128, MQ_N_TILES };
static const int mq_bm[MQ_N_TILES] = {0, 64, 64, 128}, mq_bn[MQ_N_TILES] = {0, 128, 64, 128};

template <int T> static int mq_launch(cuda_backend *c, const mq_args &a, int tile, dim3 grid, larder_error *err) {
    switch (tile) {
    case MQ_64x128: return mq_launch_one<T, 64, 128>(c, a, grid, err);
    case MQ_64x64: return mq_launch_one<T, 64, 64>(c, a, grid, err);
    default: return mq_launch_one<T, 128, 128>(c, a, grid, err);
    }
}

/* n <= 64 (batched decode, small prefills): 64 x 64 (two blocks fit an
 * SM; K split when the tiles leave SMs idle); else 128 x 128. */
static int mq_pick(int64_t n, int forced) {
    if (forced > MQ_AUTO && forced < MQ_N_TILES) return forced;
    return n > 64 ? MQ_128x128 : MQ_64x64;
}

/* Shared memory of a tile for a weight type: mq_smem_bytes at run time. */
template <int T> static size_t mq_tile_smem_of(int tile) {
    switch (tile) {
    case MQ_64x128: return mq_smem_bytes<T, 64, 128>();
    case MQ_64x64: return mq_smem_bytes<T, 64, 64>();
    default: return mq_smem_bytes<T, 128, 128>();
    }
}

static size_t mq_tile_smem(uint32_t wtype, int tile) {
    switch (wtype) {
    case TYPE_Q4_0: return mq_tile_smem_of<TYPE_Q4_0>(tile);
    case TYPE_Q4_1: return mq_tile_smem_of<TYPE_Q4_1>(tile);
    case TYPE_Q5_0: return mq_tile_smem_of<TYPE_Q5_0>(tile);
    case TYPE_Q5_1: return mq_tile_smem_of<TYPE_Q5_1>(tile);
    case TYPE_Q8_0: return mq_tile_smem_of<TYPE_Q8_0>(tile);
    case TYPE_Q3_K: return mq_tile_smem_of<TYPE_Q3_K>(tile);
    case TYPE_Q4_K: return mq_tile_smem_of<TYPE_Q4_K>(tile);
    case TYPE_Q5_K: return mq_tile_smem_of<TYPE_Q5_K>(tile);
    default: return mq_tile_smem_of<TYPE_Q6_K>(tile);
    }
}

int cuda_mmq(cuda_backend *c, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const void *xq, int64_t n,
             float *y, int64_t ldy, int forced_tile, larder_error *err) {
    if (!cuda_mmq_type_supported(wtype) || cols <= 0 || cols % 32 ||
        (tensor_type_get(wtype)->block_elems == 256 && cols % 256))
        return error_set(err, ERR_INVALID, "mmq: type %u with %lld columns", wtype, (long long)cols);
    if (rows <= 0 || n <= 0) return 0;
    if ((uintptr_t)w & 15) /* Q4_K/Q5_K slices are read as 16-byte words */
        return error_set(err, ERR_UNSUPPORTED, "mmq: weights not 16-byte aligned");
    mq_args a = {};
    a.w = (const uint8_t *)w;
    a.row_bytes = tensor_row_bytes(wtype, cols);
    a.w_end = a.w + a.row_bytes * (size_t)rows;
    a.rows = rows, a.n_chunks = cols / 32;
    a.x = (const uint8_t *)xq, a.steps = cuda_mmq_steps(cols), a.n = n;
    a.y = y, a.ldy = ldy;
    int tile = mq_pick(n, forced_tile);
    if (c->smem_optin > 0 && mq_tile_smem(wtype, tile) > (size_t)c->smem_optin) tile = MQ_64x64; /* sm_80: 163 KiB */
    if (c->smem_optin > 0 && mq_tile_smem(wtype, tile) > (size_t)c->smem_optin)
        return error_set(err, ERR_UNSUPPORTED, "mmq: %zu bytes of shared memory a block, the device allows %d",
                         mq_tile_smem(wtype, tile), c->smem_optin);
    const int bm = mq_bm[tile], bn = mq_bn[tile];
    const int64_t row_tiles = (rows + bn - 1) / bn, m_tiles = (n + bm - 1) / bm;
    if (row_tiles > 65535) return error_set(err, ERR_UNSUPPORTED, "mmq: %lld rows", (long long)rows);
    if (m_tiles > 0x7fffffff) return error_set(err, ERR_UNSUPPORTED, "mmq: %lld tokens", (long long)n);
    /* split K when the tiles leave SMs idle: each split keeps >= 2 steps;
     * partial sums go to a scratch and are added in split order */
    const int64_t tiles = row_tiles * m_tiles, sms = c->n_sm > 0 ? c->n_sm : 1;
    int64_t splits = tiles >= sms ? 1 : (sms + tiles / 2) / tiles;
    if (splits > MQ_MAX_SPLITS) splits = MQ_MAX_SPLITS;
    if (splits > a.steps / 2) splits = a.steps / 2 > 0 ? a.steps / 2 : 1;
    a.steps_per_split = (a.steps + splits - 1) / splits;
    splits = (a.steps + a.steps_per_split - 1) / a.steps_per_split;
    if (splits > 1) {
        const size_t part = (size_t)n * (size_t)rows;
        if (cuda_scratch_reserve(c, &c->mm_w16, &c->mm_w16_bytes, part * (size_t)splits * sizeof(float),
                                 "matmul split-K scratch", err))
            return -1;
        a.y = (float *)c->mm_w16, a.ldy = rows, a.split_stride = part;
    }
    const dim3 grid((unsigned)m_tiles, (unsigned)row_tiles, (unsigned)splits);
    int rc;
    switch (wtype) {
    case TYPE_Q4_0: rc = mq_launch<TYPE_Q4_0>(c, a, tile, grid, err); break;
    case TYPE_Q4_1: rc = mq_launch<TYPE_Q4_1>(c, a, tile, grid, err); break;
    case TYPE_Q5_0: rc = mq_launch<TYPE_Q5_0>(c, a, tile, grid, err); break;
    case TYPE_Q5_1: rc = mq_launch<TYPE_Q5_1>(c, a, tile, grid, err); break;
    case TYPE_Q8_0: rc = mq_launch<TYPE_Q8_0>(c, a, tile, grid, err); break;
    case TYPE_Q3_K: rc = mq_launch<TYPE_Q3_K>(c, a, tile, grid, err); break;
    case TYPE_Q4_K: rc = mq_launch<TYPE_Q4_K>(c, a, tile, grid, err); break;
    case TYPE_Q5_K: rc = mq_launch<TYPE_Q5_K>(c, a, tile, grid, err); break;
    case TYPE_Q6_K: rc = mq_launch<TYPE_Q6_K>(c, a, tile, grid, err); break;
    default: return error_set(err, ERR_UNSUPPORTED, "mmq: weight type %u", wtype);
    }
    if (rc || splits == 1) return rc;
    const int64_t total = n * rows;
    k_mmq_split_sum<<<(unsigned)((total + 255) / 256), 256, 0, c->stream>>>((const float *)c->mm_w16, (int)splits, n,
                                                                          rows, y, ldy);
    return cuda_check_launch("mmq (split-K sum)", err);
}
