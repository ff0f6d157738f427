/*
 * cuda_matmul.cu — y (n, rows) = x (n, cols) · Wᵀ on the GPU for every
 * weight type of cuda_quant.cuh, and backend_get_rows (embedding rows).
 *
 * Three paths:
 *  - GEMV (decode and small batches, n <= GEMV_MAX_TOKENS, and every f32
 *    weight): a block of 4 warps per 1, 2 or 4 weight rows (or a warp per
 *    1-2 rows for short rows and the output matrix), the rows' 32-element
 *    chunks dealt over its lanes and multiplied with the activations of up
 *    to 8 tokens, so the weights stream from memory once per call
 *    (cuda_gemv.cuh). The activations are first rounded as the CPU rounds
 *    them (cuda_act_round.cu); by default the GEMV multiplies their int8
 *    quants with the weight's quants by dp4a (cuda_quant_q8.cuh: the CPU's
 *    integer sums), with LARDER_CUDA_MMVQ=0 their f32 values with the
 *    weight unpacked to f32 (cuda_quant.cuh).
 *  - GEMM (prefill, n > GEMV_MAX_TOKENS, LARDER_CUDA_MMQ=0 or a type the
 *    MMQ does not take): x is rounded as for the GEMV,
 *    then to f16, and cuda_gemm.cu multiplies it with the quantized weight
 *    on the tensor cores (unpacked in shared memory, never written out).
 *    LARDER_CUDA_GEMM=1|2 selects the old path for A/B timing: the weight
 *    dequantised to f16 slabs in device memory, then a wmma GEMM (plain
 *    loads | cp.async). f32 weights stay on the GEMV path in groups of 8
 *    tokens (exact, slower; only test models have them).
 *  - MMQ (the default for n > GEMV_MAX_TOKENS and the types of
 *    cuda_mmq_type_supported): x quantized to 8 bits as the CPU quantizes
 *    it, multiplied with the weight's unpacked int8 quants on the integer
 *    tensor cores (cuda_mmq.cu): the CPU's product up to float order.
 * Rows whose width is not a multiple of 32 (float types only) take a scalar
 * kernel.
 */
#include <cuda_fp16.h>
#include <mma.h>

#include "backend/cuda/cuda_gemv.cuh"
#include "backend/cuda/cuda_ptx.cuh"

extern "C" {
#include "tensor/quant.h"
}

#define MM_SLAB_BYTES ((size_t)256 << 20)     /* most dequantised f16 weight bytes at once */

/* ---- GEMV (the block's work: cuda_gemv.cuh)
 *
 * One launch covers up to GEMV_MAX_MATS matrices of one type that multiply
 * the same x (q, k, v; gate, up): block b belongs to the matrix whose run
 * of blocks holds it, so a layer's products of one input are one launch. */
#define GEMV_MAX_MATS 3
struct gemv_mats {
    const uint8_t *w[GEMV_MAX_MATS];
    float *y[GEMV_MAX_MATS];
    int64_t rows[GEMV_MAX_MATS];
    int64_t first_block[GEMV_MAX_MATS + 1]; /* matrix m owns blocks [first_block[m], first_block[m + 1]) */
    int n;
};

/* The block's matrix (weights, output, rows, its first block), read with
 * constant indices: a dynamic index would copy the parameters to local
 * memory in every thread. */
__device__ __forceinline__ void gemv_mats_pick(const gemv_mats &mats, const uint8_t **w, float **y, int64_t *rows,
                                               int64_t *first) {
    *w = mats.w[0], *y = mats.y[0], *rows = mats.rows[0], *first = 0;
#pragma unroll
    for (int i = 1; i < GEMV_MAX_MATS; i++)
        if (i < mats.n && (int64_t)blockIdx.x >= mats.first_block[i])
            *w = mats.w[i], *y = mats.y[i], *rows = mats.rows[i], *first = mats.first_block[i];
}

template <int T, int NT, int R, bool Q8>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv(const gemv_mats mats, size_t row_bytes, int64_t n_chunks, const void *__restrict__ x,
           int64_t x_stride_bytes, int ntok) {
    __shared__ float sums[GEMV_SMEM_FLOATS(R, NT)];
    const uint8_t *w;
    float *y;
    int64_t rows, first;
    gemv_mats_pick(mats, &w, &y, &rows, &first);
    const int64_t r0 = ((int64_t)blockIdx.x - first) * R;
    const uint8_t *rowp[R];
#pragma unroll
    for (int r = 0; r < R; r++) rowp[r] = w + (size_t)(r0 + r < rows ? r0 + r : rows - 1) * row_bytes;
    gemv_block_rows_any<T, NT, R, Q8>(rowp, n_chunks, x, x_stride_bytes, ntok, sums);
    for (int i = threadIdx.x; i < R * NT; i += blockDim.x) {
        const int r = i / NT, t = i % NT;
        if (t < ntok && r0 + r < rows) y[(int64_t)t * rows + r0 + r] = sums[i];
    }
}

/* The warp-per-rows form (gemvq_warp_rows): block b of matrix m holds
 * GEMV_WARPS·RW rows, warp w the RW from (b·GEMV_WARPS + w)·RW. */
template <int T, int NT, int RW>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemvw(const gemv_mats mats, size_t row_bytes, int64_t n_chunks, const void *__restrict__ x,
            int64_t x_stride_bytes, int ntok) {
    const uint8_t *w;
    float *y;
    int64_t rows, first;
    gemv_mats_pick(mats, &w, &y, &rows, &first);
    const int64_t r0 = (((int64_t)blockIdx.x - first) * GEMV_WARPS + (threadIdx.x >> 5)) * RW;
    if (r0 >= rows) return;
    const uint8_t *rowp[RW];
#pragma unroll
    for (int r = 0; r < RW; r++) rowp[r] = w + (size_t)(r0 + r < rows ? r0 + r : rows - 1) * row_bytes;
    float sums[RW][NT];
    gemvq_warp_rows<T, NT, RW>(rowp, n_chunks, (const uint8_t *)x, x_stride_bytes, x_stride_bytes / 4, ntok, sums);
    if ((threadIdx.x & 31) == 0)
#pragma unroll
        for (int r = 0; r < RW; r++)
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < ntok && r0 + r < rows) y[(int64_t)t * rows + r0 + r] = sums[r][t];
}

/* Float weights of any width: one thread per (token, row), scalar. */
__device__ __forceinline__ float float_elem(uint32_t type, const uint8_t *row, int64_t i) {
    if (type == TYPE_F32) return ((const float *)row)[i];
    uint16_t h = ((const uint16_t *)row)[i];
    return type == TYPE_F16 ? cq_h(h) : __uint_as_float((uint32_t)h << 16);
}

__global__ void k_matmul_scalar(uint32_t type, const uint8_t *w, size_t row_bytes, int64_t rows, const float *x,
                                int64_t cols, int64_t n, float *y) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * n) return;
    int64_t t = i / rows, r = i % rows;
    const uint8_t *row = w + (size_t)r * row_bytes;
    float s = 0.0f;
    for (int64_t k = 0; k < cols; k++) s = fmaf(float_elem(type, row, k), x[t * cols + k], s);
    y[t * rows + r] = s;
}

/* ---- GEMM: dequantise, round x, tensor-core product */

/* W rows [r0, r0 + n_rows) -> f16 (n_rows, ldk), zero beyond cols. */
template <int T>
__global__ void k_dequant_f16(const uint8_t *__restrict__ w, size_t row_bytes, int64_t r0, int64_t n_rows,
                              int64_t n_chunks, int64_t ldk, __half *__restrict__ out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t chunks_ld = ldk / 32;
    if (i >= n_rows * chunks_ld) return;
    int64_t r = i / chunks_ld, c = i % chunks_ld;
    __half2 *o = (__half2 *)(out + r * ldk + c * 32);
    if (c >= n_chunks) {
#pragma unroll
        for (int k = 0; k < 16; k++) o[k] = __floats2half2_rn(0.0f, 0.0f);
        return;
    }
    float v[32];
    chunk_load<T>(w + (size_t)(r0 + r) * row_bytes, c, v);
#pragma unroll
    for (int k = 0; k < 16; k++) o[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
}

/* C (M tokens, N rows; row stride ldc) = A (M, K) · B (N, K)ᵀ, A and B f16
 * with row stride K (a multiple of 32, zero padded). Block tile 128x128,
 * K step 32, 8 warps each holding a 32x64 tile of accumulators. */
#define GM_BM 128
#define GM_BN 128
#define GM_BK 32
#define GM_PAD 8
using namespace nvcuda;

/* A warp's 32x64 accumulators (acc[i][j]: rows r0 + 16i, columns c0 + 16j)
 * into C: full 16x16 tiles straight (wmma stores want 32-byte rows), edge
 * tiles through the warp's 1 KiB stage in shared memory, element by
 * element within M x N. */
__device__ __forceinline__ void gm_store_tile(wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[2][4],
                                              float *stage, int64_t r0, int64_t c0, int64_t M, int64_t N,
                                              float *__restrict__ C, int64_t ldc) {
    const int lane = threadIdx.x & 31;
    const bool direct_ok = ldc % 8 == 0 && ((uintptr_t)C & 31) == 0;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t rm = r0 + i * 16, cn = c0 + j * 16;
            if (direct_ok && rm + 16 <= M && cn + 16 <= N) {
                wmma::store_matrix_sync(C + rm * ldc + cn, acc[i][j], ldc, wmma::mem_row_major);
            } else {
                wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
                __syncwarp();
                for (int e = lane; e < 256; e += 32) {
                    int64_t rr = rm + e / 16, cc = cn + e % 16;
                    if (rr < M && cc < N) C[rr * ldc + cc] = stage[e];
                }
                __syncwarp();
            }
        }
}

__global__ void __launch_bounds__(256) k_gemm_f16(const __half *__restrict__ A, const __half *__restrict__ B, int64_t M,
                                                  int64_t N, int64_t K, float *__restrict__ C, int64_t ldc) {
    __shared__ __align__(128) unsigned char smem_raw[2 * (GM_BM + GM_BN) * (GM_BK + GM_PAD) * 2];
    __half(*As)[GM_BM][GM_BK + GM_PAD] = (__half(*)[GM_BM][GM_BK + GM_PAD])smem_raw;
    __half(*Bs)[GM_BN][GM_BK + GM_PAD] =
        (__half(*)[GM_BN][GM_BK + GM_PAD])(smem_raw + 2 * GM_BM * (GM_BK + GM_PAD) * 2);
    const int tid = threadIdx.x, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1; /* warp tile: rows wm*32.., cols wn*64.. */
    const int64_t m0 = (int64_t)blockIdx.y * GM_BM, n0 = (int64_t)blockIdx.x * GM_BN;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    /* each thread copies 2 x 16 bytes of A and of B per K step */
    auto load = [&](int buf, int64_t k0) {
#pragma unroll
        for (int p = 0; p < 2; p++) {
            int idx = tid + p * 256;       /* 512 vectors of 8 halves: 128 rows x 4 */
            int r = idx >> 2, cv = (idx & 3) * 8;
            uint4 va = make_uint4(0, 0, 0, 0), vb = make_uint4(0, 0, 0, 0);
            if (m0 + r < M) va = *(const uint4 *)(A + (m0 + r) * K + k0 + cv);
            if (n0 + r < N) vb = *(const uint4 *)(B + (n0 + r) * K + k0 + cv);
            *(uint4 *)&As[buf][r][cv] = va;
            *(uint4 *)&Bs[buf][r][cv] = vb;
        }
    };
    load(0, 0);
    __syncthreads();
    int buf = 0;
    for (int64_t k0 = 0; k0 < K; k0 += GM_BK) {
        if (k0 + GM_BK < K) load(buf ^ 1, k0 + GM_BK);
#pragma unroll
        for (int kk = 0; kk < GM_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[4];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &As[buf][wm * 32 + i * 16][kk], GM_BK + GM_PAD);
#pragma unroll
            for (int j = 0; j < 4; j++) wmma::load_matrix_sync(fb[j], &Bs[buf][wn * 64 + j * 16][kk], GM_BK + GM_PAD);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
        buf ^= 1;
    }
    /* stage: warp's 1 KiB of smem_raw (8 warps x 1 KiB fit) */
    gm_store_tile(acc, (float *)smem_raw + warp * 16 * 16, m0 + wm * 32, n0 + wn * 64, M, N, C, ldc);
}

/* The same product with the tiles copied by cp.async (sm_80+): the next K
 * step's tiles stream into the other buffer while the tensor cores work on
 * this one; rows past M or N are zero-filled by the copy itself. */
__global__ void __launch_bounds__(256) k_gemm_f16_async(const __half *__restrict__ A, const __half *__restrict__ B,
                                                        int64_t M, int64_t N, int64_t K, float *__restrict__ C,
                                                        int64_t ldc) {
    __shared__ __align__(128) unsigned char smem_raw[2 * (GM_BM + GM_BN) * (GM_BK + GM_PAD) * 2];
    __half(*As)[GM_BM][GM_BK + GM_PAD] = (__half(*)[GM_BM][GM_BK + GM_PAD])smem_raw;
    __half(*Bs)[GM_BN][GM_BK + GM_PAD] =
        (__half(*)[GM_BN][GM_BK + GM_PAD])(smem_raw + 2 * GM_BM * (GM_BK + GM_PAD) * 2);
    const int tid = threadIdx.x, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1;
    const int64_t m0 = (int64_t)blockIdx.y * GM_BM, n0 = (int64_t)blockIdx.x * GM_BN;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    auto load = [&](int buf, int64_t k0) {
#pragma unroll
        for (int p = 0; p < 2; p++) {
            int idx = tid + p * 256;
            int r = idx >> 2, cv = (idx & 3) * 8;
            bool va = m0 + r < M, vb = n0 + r < N;
            ptx_cp_async16(&As[buf][r][cv], A + (va ? (m0 + r) * K + k0 + cv : 0), va ? 16 : 0);
            ptx_cp_async16(&Bs[buf][r][cv], B + (vb ? (n0 + r) * K + k0 + cv : 0), vb ? 16 : 0);
        }
        ptx_cp_async_commit();
    };
    load(0, 0);
    int buf = 0;
    for (int64_t k0 = 0; k0 < K; k0 += GM_BK) {
        ptx_cp_async_wait_all();
        __syncthreads();
        if (k0 + GM_BK < K) load(buf ^ 1, k0 + GM_BK);
#pragma unroll
        for (int kk = 0; kk < GM_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[4];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &As[buf][wm * 32 + i * 16][kk], GM_BK + GM_PAD);
#pragma unroll
            for (int j = 0; j < 4; j++) wmma::load_matrix_sync(fb[j], &Bs[buf][wn * 64 + j * 16][kk], GM_BK + GM_PAD);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads(); /* this buffer is refilled two steps on */
        buf ^= 1;
    }
    gm_store_tile(acc, (float *)smem_raw + warp * 16 * 16, m0 + wm * 32, n0 + wn * 64, M, N, C, ldc);
}

/* ---- drivers */

struct mm_nop {
    template <int T> void operator()() {}
};

bool cuda_type_supported(uint32_t wtype) {
    mm_nop f;
    return cq_dispatch(wtype, f);
}

/* Launchers: the type-templated kernel of each path, for cq_dispatch. */
template <int T, int R, bool Q8>
static void gemv_launch_nt(cuda_backend *c, const gemv_mats &mats, size_t row_bytes, int64_t n_chunks, const void *x,
                           int64_t xs, int nt) {
    dim3 g((unsigned)mats.first_block[mats.n]), b(GEMV_WARPS * 32);
    if (nt == 1) k_gemv<T, 1, R, Q8><<<g, b, 0, c->stream>>>(mats, row_bytes, n_chunks, x, xs, nt);
    else if (nt <= 2) k_gemv<T, 2, R, Q8><<<g, b, 0, c->stream>>>(mats, row_bytes, n_chunks, x, xs, nt);
    else if (nt <= 4) k_gemv<T, 4, R, Q8><<<g, b, 0, c->stream>>>(mats, row_bytes, n_chunks, x, xs, nt);
    else k_gemv<T, 8, R, Q8><<<g, b, 0, c->stream>>>(mats, row_bytes, n_chunks, x, xs, nt);
}

/* x: token 0's rounded activations in the layout cuda_gemv_layout chose
 * (q8: ACT_LAYOUT_Q8), x_stride_bytes apart */
struct gemv_launch {
    cuda_backend *c; const gemv_mats *mats; size_t row_bytes; int64_t n_chunks, x_stride_bytes;
    const void *x; int nt, rows_per_block; bool q8; int warp_rows; /* warp_rows 1|2: k_gemvw (rows_per_block = 4·warp_rows) */
    template <int T, bool Q8> void go() {
        if (rows_per_block == 4) gemv_launch_nt<T, 4, Q8>(c, *mats, row_bytes, n_chunks, x, x_stride_bytes, nt);
        else if (rows_per_block == 2) gemv_launch_nt<T, 2, Q8>(c, *mats, row_bytes, n_chunks, x, x_stride_bytes, nt);
        else gemv_launch_nt<T, 1, Q8>(c, *mats, row_bytes, n_chunks, x, x_stride_bytes, nt);
    }
    template <int T, int RW> void go_warp() {
        dim3 g((unsigned)mats->first_block[mats->n]), b(GEMV_WARPS * 32);
        const int64_t xs = x_stride_bytes;
        if (nt == 1) k_gemvw<T, 1, RW><<<g, b, 0, c->stream>>>(*mats, row_bytes, n_chunks, x, xs, nt);
        else if (nt <= 2) k_gemvw<T, 2, RW><<<g, b, 0, c->stream>>>(*mats, row_bytes, n_chunks, x, xs, nt);
        else if (nt <= 4) k_gemvw<T, 4, RW><<<g, b, 0, c->stream>>>(*mats, row_bytes, n_chunks, x, xs, nt);
        else k_gemvw<T, 8, RW><<<g, b, 0, c->stream>>>(*mats, row_bytes, n_chunks, x, xs, nt);
    }
    template <int T> void operator()() {
        if constexpr (q8_supported<T>::value) {
            if (q8 && warp_rows == 2) return go_warp<T, 2>();
            if (q8 && warp_rows == 1) return go_warp<T, 1>();
            if (q8) return go<T, true>();
        }
        go<T, false>();
    }
};

int cuda_gemv_rows_per_block(const cuda_backend *c, int64_t rows, int64_t n_sets) {
    if (c->gemv_rows_per_block) return c->gemv_rows_per_block;
    /* the most rows a block (fewer x̃ loads per weight) that still leaves
     * >= 6 blocks per SM (loads in flight) */
    const int64_t want = 6 * (int64_t)c->n_sm;
    for (int r = c->gemv_q8 ? 2 : 4; r > 1; r /= 2) /* the 8-bit path: at most 2 (see gemv) */
        if ((rows + r - 1) / r * n_sets >= want) return r;
    return 1;
}

struct dequant_launch {
    cuda_backend *c; const backend_matmul_weight *m; size_t row_bytes; int64_t r0, nr, n_chunks, ldk; __half *out;
    template <int T> void operator()() {
        int64_t total = nr * (ldk / 32);
        k_dequant_f16<T><<<(unsigned)((total + 255) / 256), 256, 0, c->stream>>>(
            (const uint8_t *)m->w, row_bytes, r0, nr, n_chunks, ldk, out);
    }
};

/* The scalar product of float weights whose rows are not a multiple of 32. */
static int matmul_scalar(cuda_backend *c, const backend_matmul_weight *m, int64_t cols, const float *x, int64_t n,
                         larder_error *err) {
    if (m->wtype != TYPE_F32 && m->wtype != TYPE_F16 && m->wtype != TYPE_BF16)
        return error_set(err, ERR_INVALID, "matmul: %lld columns of type %u", (long long)cols, m->wtype);
    int64_t total = m->rows * n;
    k_matmul_scalar<<<(unsigned)((total + 255) / 256), 256, 0, c->stream>>>(
        m->wtype, (const uint8_t *)m->w, tensor_row_bytes(m->wtype, cols), m->rows, x, cols, n, m->y);
    return cuda_check_launch("matmul (scalar)", err);
}

/* n_m (<= GEMV_MAX_MATS) matrices of one type times x (n, cols; cols a
 * multiple of 32), x already rounded for that type at x_r, in the layout
 * cuda_gemv_layout gives its act type. */
static int gemv(cuda_backend *c, const backend_matmul_weight *const *ms, int n_m, int64_t cols, const void *x_r,
                int64_t n, larder_error *err) {
    const uint32_t wtype = ms[0]->wtype;
    const size_t row_bytes = tensor_row_bytes(wtype, cols);
    const int64_t n_chunks = cols / 32, xs = cuda_act_il_stride(cols) * 4; /* bytes a token */
    const bool q8 = cuda_gemv_layout(c, quant_vec_dot_type(wtype)) == ACT_LAYOUT_Q8;
    int64_t total_rows = 0;
    for (int i = 0; i < n_m; i++) total_rows += ms[i]->rows;
    /* The 8-bit path: 2 rows a block (cuda_gemv_bench on an H100: 1.1-1.3x
     * the 4 the f32 path's rule picks, at 1-8 tokens), and for the output
     * matrix (> 65536 rows) a warp per 2 rows (1.1x), as for rows shorter
     * than a block's 128 lanes' chunks (< 4096 columns); LARDER_CUDA_GEMV_V=2
     * forces the warp form, LARDER_CUDA_GEMV_R the rows a block. */
    const bool warp_form = q8 && (c->gemv_variant == 2 ||
                                  (c->gemv_variant == 0 && ((total_rows > 65536 && n == 1) || n_chunks < 4 * 32)));
    const int warp_rows = warp_form ? ((total_rows + 7) / 8 >= 4 * c->n_sm ? 2 : 1) : 0;
    const int rpb = warp_rows ? GEMV_WARPS * warp_rows
                    : q8 && !c->gemv_rows_per_block ? 2
                    : cuda_gemv_rows_per_block(c, total_rows, 1);
    for (int64_t t0 = 0; t0 < n; t0 += GEMV_MAX_TOKENS) {
        int nt = (int)(n - t0 < GEMV_MAX_TOKENS ? n - t0 : GEMV_MAX_TOKENS);
        gemv_mats mats = {};
        mats.n = n_m;
        for (int i = 0; i < n_m; i++) {
            mats.w[i] = (const uint8_t *)ms[i]->w, mats.y[i] = ms[i]->y + t0 * ms[i]->rows, mats.rows[i] = ms[i]->rows;
            mats.first_block[i + 1] = mats.first_block[i] + (ms[i]->rows + rpb - 1) / rpb;
        }
        gemv_launch l{c, &mats, row_bytes, n_chunks, xs, (const char *)x_r + t0 * xs, nt, rpb, q8, warp_rows};
        if (!cq_dispatch(wtype, l)) return error_set(err, ERR_UNSUPPORTED, "matmul: weight type %u", wtype);
        const char *what = total_rows > 65536 ? "gemv (output)"
                         : wtype == TYPE_Q4_K ? "gemv q4_k"
                         : wtype == TYPE_Q6_K ? "gemv q6_k"
                         : "gemv";
        if (cuda_check_launch(what, err)) return -1;
    }
    return 0;
}

static int gemm(cuda_backend *c, const backend_matmul_weight *m, int64_t cols, const __half *x16, int64_t ldk,
                int64_t n, larder_error *err) {
    /* cuda_gemm.cu's product on the quantized weights; LARDER_CUDA_GEMM=1|2
     * keeps the old slab path (plain | cp.async) for A/B timing; 3..8 force
     * one tile shape of the new one */
    if (c->gemm_variant != 1 && c->gemm_variant != 2)
        return cuda_gemm_q(c, m->w, m->wtype, m->rows, cols, x16, ldk, n, m->y, m->rows,
                           c->gemm_variant >= 3 ? c->gemm_variant - 2 : 0, err);
    const size_t row_bytes = tensor_row_bytes(m->wtype, cols);
    int64_t slab_rows = (int64_t)(MM_SLAB_BYTES / ((size_t)ldk * 2));
    slab_rows = slab_rows / GM_BN * GM_BN;
    if (slab_rows < GM_BN) slab_rows = GM_BN;
    if (slab_rows > m->rows) slab_rows = m->rows;
    if (cuda_scratch_reserve(c, &c->mm_w16, &c->mm_w16_bytes, (size_t)slab_rows * (size_t)ldk * 2,
                             "matmul weight scratch", err))
        return -1;
    __half *w16 = (__half *)c->mm_w16;
    for (int64_t r0 = 0; r0 < m->rows; r0 += slab_rows) {
        int64_t nr = m->rows - r0 < slab_rows ? m->rows - r0 : slab_rows;
        dequant_launch l{c, m, row_bytes, r0, nr, cols / 32, ldk, w16};
        if (!cq_dispatch(m->wtype, l)) return error_set(err, ERR_UNSUPPORTED, "matmul: weight type %u", m->wtype);
        if (cuda_check_launch("matmul (dequantise)", err)) return -1;
        dim3 grid((unsigned)((nr + GM_BN - 1) / GM_BN), (unsigned)((n + GM_BM - 1) / GM_BM));
        if (c->gemm_variant == 1)
            k_gemm_f16<<<grid, 256, 0, c->stream>>>(x16, w16, n, nr, ldk, m->y + r0, m->rows);
        else
            k_gemm_f16_async<<<grid, 256, 0, c->stream>>>(x16, w16, n, nr, ldk, m->y + r0, m->rows);
        if (cuda_check_launch("matmul (gemm)", err)) return -1;
    }
    return 0;
}

int cuda_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                      int64_t n_tokens, larder_error *err) {
    CUDA_SKIP_IF_REPLAY(b); /* reads x̃ from the memo (cuda_internal.h) when it is x's */
    cuda_backend *c = (cuda_backend *)b;
    if (cols <= 0 || n_tokens < 0) return error_set(err, ERR_INVALID, "matmul: %lld columns", (long long)cols);
    if (n_tokens == 0) return 0;
    for (int i = 0; i < n_mats; i++) {
        if (!cuda_type_supported(mats[i].wtype))
            return error_set(err, ERR_UNSUPPORTED, "matmul: weight type %u has no CUDA kernel", mats[i].wtype);
        if (tensor_row_bytes(mats[i].wtype, cols) == 0 || mats[i].rows < 0)
            return error_set(err, ERR_INVALID, "matmul: %lld columns do not fit type %u", (long long)cols, mats[i].wtype);
    }
    const int64_t ldk = (cols + 31) / 32 * 32;
    const int64_t il_stride = cuda_act_il_stride(cols);
    /* x is rounded once per activation type and path; consecutive matrices
     * of one type (q, k, v; gate, up) share the rounding, and a rounding
     * the preceding rmsnorm did (the memo) is used as it is. */
    uint32_t f16_act = QUANT_NO_TYPE, q8_act = QUANT_NO_TYPE;
    bool memo_ok = c->xil_src == x && c->xil_n == n_tokens && c->xil_cols == cols;
    for (int i = 0; i < n_mats; i++) {
        const backend_matmul_weight *m = &mats[i];
        if (m->rows == 0) continue;
        const uint32_t act = quant_vec_dot_type(m->wtype);
        const bool use_gemm = n_tokens > GEMV_MAX_TOKENS && m->wtype != TYPE_F32 && cols % 32 == 0;
        if (x == c->norm_out && i == 0) { /* what this norm should round for next time */
            const unsigned slot = cuda_norm_slot(c->norm_w);
            c->norm_acts[slot].w = c->norm_w, c->norm_acts[slot].act = use_gemm ? QUANT_NO_TYPE : act;
        }
        if (x == c->silu_out && i == 0) /* and what silu_mul should */
            c->silu_cols = use_gemm ? 0 : cols, c->silu_act = act;
        const bool use_mmq = use_gemm && c->mmq_enabled && cuda_mmq_type_supported(m->wtype) &&
                             (tensor_type_get(m->wtype)->block_elems != 256 || cols % 256 == 0);
        if (use_mmq) {
            if (act != q8_act) {
                if (cuda_scratch_reserve(c, &c->mm_xq, &c->mm_xq_bytes, cuda_mmq_act_bytes(n_tokens, cols),
                                         "matmul activation scratch", err) ||
                    cuda_mmq_act(c, m->wtype, x, n_tokens, cols, c->mm_xq, err))
                    return -1;
                q8_act = act;
            }
            if (cuda_mmq(c, m->w, m->wtype, m->rows, cols, c->mm_xq, n_tokens, m->y, m->rows, c->mmq_tile, err))
                return -1;
        } else if (use_gemm) {
            if (act != f16_act) {
                if (cuda_scratch_reserve(c, &c->mm_x16, &c->mm_x16_bytes, (size_t)n_tokens * (size_t)ldk * 2,
                                         "matmul activation scratch", err) ||
                    cuda_act_round(c, m->wtype, x, n_tokens, cols, ACT_LAYOUT_F16, ldk, c->mm_x16, err))
                    return -1;
                f16_act = act;
            }
            if (gemm(c, m, cols, (const __half *)c->mm_x16, ldk, n_tokens, err)) return -1;
        } else if (cols % 32) {
            if (matmul_scalar(c, m, cols, x, n_tokens, err)) return -1;
        } else {
            if (!(memo_ok && c->xil_act == act)) {
                if (cuda_scratch_reserve(c, &c->mm_xil, &c->mm_xil_bytes,
                                         (size_t)n_tokens * (size_t)il_stride * sizeof(float),
                                         "matmul activation scratch", err) ||
                    cuda_act_round(c, m->wtype, x, n_tokens, cols, cuda_gemv_layout(c, act), il_stride, c->mm_xil,
                                   err))
                    return -1;
                c->xil_src = x, c->xil_act = act, c->xil_n = n_tokens, c->xil_cols = cols;
                memo_ok = true;
            }
            /* the following matrices of the same type join this launch (unless LARDER_CUDA_FUSE=0) */
            const backend_matmul_weight *group[GEMV_MAX_MATS] = {m};
            int n_group = 1;
            while (c->launch_fusions && n_group < GEMV_MAX_MATS && i + 1 < n_mats && mats[i + 1].wtype == m->wtype && mats[i + 1].rows > 0)
                group[n_group++] = &mats[++i];
            if (gemv(c, group, n_group, cols, c->mm_xil, n_tokens, err)) return -1;
        }
    }
    for (int i = 0; i < n_mats; i++) /* an output over x would leave a stale memo */
        if ((const float *)mats[i].y == c->xil_src) c->xil_src = NULL;
    return 0;
}

/* ---- embedding rows */

template <int T>
__global__ void k_get_rows(const uint8_t *__restrict__ w, size_t row_bytes, const int32_t *__restrict__ tokens,
                           int64_t n, int64_t n_chunks, int64_t cols, float *__restrict__ x) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * n_chunks) return;
    int64_t t = i / n_chunks, c = i % n_chunks;
    float v[32];
    chunk_load<T>(w + (size_t)tokens[t] * row_bytes, c, v);
    float *o = x + t * cols + c * 32;
#pragma unroll
    for (int k = 0; k < 32; k++) o[k] = v[k];
}

__global__ void k_get_rows_scalar(uint32_t type, const uint8_t *w, size_t row_bytes, const int32_t *tokens, int64_t n,
                                  int64_t cols, float *x) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * cols) return;
    int64_t t = i / cols, k = i % cols;
    x[i] = float_elem(type, w + (size_t)tokens[t] * row_bytes, k);
}

struct get_rows_launch {
    cuda_backend *c; const void *w; size_t row_bytes; int64_t n, cols; float *x;
    template <int T> void operator()() {
        int64_t total = n * (cols / 32);
        k_get_rows<T><<<(unsigned)((total + 127) / 128), 128, 0, c->stream>>>(
            (const uint8_t *)w, row_bytes, c->batch.tokens, n, cols / 32, cols, x);
    }
};

int cuda_get_rows(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err) {
    CUDA_OP_BEGIN(b);
    cuda_backend *c = (cuda_backend *)b;
    const int64_t n = c->batch.n_tokens;
    const size_t row_bytes = tensor_row_bytes(wtype, cols);
    if (!cuda_type_supported(wtype) || row_bytes == 0)
        return error_set(err, ERR_UNSUPPORTED, "get_rows: type %u with %lld columns", wtype, (long long)cols);
    if (n == 0) return 0;
    if (cols % 32) {
        if (wtype != TYPE_F32 && wtype != TYPE_F16 && wtype != TYPE_BF16)
            return error_set(err, ERR_INVALID, "get_rows: %lld columns of type %u", (long long)cols, wtype);
        k_get_rows_scalar<<<(unsigned)((n * cols + 255) / 256), 256, 0, c->stream>>>(
            wtype, (const uint8_t *)w, row_bytes, c->batch.tokens, n, cols, x);
        return cuda_check_launch("get_rows", err);
    }
    get_rows_launch l{c, w, row_bytes, n, cols, x};
    cq_dispatch(wtype, l);
    return cuda_check_launch("get_rows", err);
}
