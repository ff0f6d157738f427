/*
 * fa_emu.cpp — runs the flash attention kernel (src/backend/cuda/
 * cuda_flash_attn.cu) on the CPU, without a GPU, and compares it with the
 * CPU backend's attention: a check of the kernel's index math (fragments,
 * ldmatrix addressing, masks, the warps' merge, split-KV partials) on the
 * machine where it is written. Built and run by `make fa-emu` (needs the
 * CUDA toolkit's headers, not a GPU; not part of `make test`).
 *
 * The kernel's source is compiled by the host compiler with LARDER_FA_EMU:
 * each block runs as 128 threads (std::thread) meeting at a std::barrier
 * for __syncthreads; warp shuffles, mma.sync m16n8k16 and ldmatrix .trans
 * are emulated per warp from the PTX ISA's fragment layouts (the lanes
 * deposit their registers, meet, and each computes its own result);
 * cp.async is a plain copy. The split-KV merge (cuda_attention.cu) is
 * redone here on the host. Not emulated: timing, races between the async
 * copies and the compute (the copies complete at once here).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <barrier>
#include <thread>
#include <vector>

/* ---- the device environment */

struct emu_dim3 {
    unsigned x, y, z;
};
static thread_local emu_dim3 emu_tid, emu_bid;
static emu_dim3 emu_grid, emu_bdim = {128, 1, 1};
static std::barrier<> *emu_block_bar;
static std::barrier<> *emu_warp_bar[4];

#define threadIdx emu_tid
#define blockIdx emu_bid
#define gridDim emu_grid
#define blockDim emu_bdim
#define __syncthreads() emu_block_bar->arrive_and_wait()

static inline int emu_min(int a, int b) { return a < b ? a : b; }
#define min emu_min
static inline float emu_uint_as_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t emu_float_as_uint(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
#define __uint_as_float emu_uint_as_float
#define __float_as_uint emu_float_as_uint
#define __float2int_rn(x) ((int)nearbyintf(x))
#define __fmul_rn(a, b) ((a) * (b))
#define __fadd_rn(a, b) ((a) + (b))
#define __ldg(p) (*(p))
#undef __launch_bounds__
#define __launch_bounds__(...)

static void emu_warp_sync() { emu_warp_bar[emu_tid.x / 32]->arrive_and_wait(); }

static float emu_xf[4][32];
static float emu_shfl_xor(float v, int o) {
    const int w = emu_tid.x / 32, l = emu_tid.x % 32;
    emu_xf[w][l] = v;
    emu_warp_sync();
    float r = emu_xf[w][l ^ o];
    emu_warp_sync();
    return r;
}
#define __shfl_xor_sync(mask, v, o) emu_shfl_xor(v, o)

static int emu_xb[4][32];
static unsigned emu_ballot(int pred) {
    const int w = emu_tid.x / 32, l = emu_tid.x % 32;
    emu_xb[w][l] = pred != 0;
    emu_warp_sync();
    unsigned m = 0;
    for (int i = 0; i < 32; i++) m |= (unsigned)emu_xb[w][i] << i;
    emu_warp_sync();
    return m;
}
#define __ballot_sync(mask, pred) emu_ballot(pred)

/* mma.sync.m16n8k16.row.col f32 += f16 x f16, per the PTX ISA fragment
 * layouts: A (16x16) a0..a7 in 4 registers: (row g, k 2t..2t+1), (row g+8,
 * same k), (row g, k 2t+8..), (row g+8, k 2t+8..); B (16x8): (k 2t.., n g),
 * (k 2t+8.., n g); C: (row g, n 2t, 2t+1), (row g+8, ...); g = lane/4,
 * t = lane%4. */
struct emu_mma_dep {
    uint32_t a[4], b[2];
};
static emu_mma_dep emu_dep[4][32];
static float emu_h(uint32_t reg, int hi) { return __half2float(__ushort_as_half((unsigned short)(hi ? reg >> 16 : reg & 0xffff))); }
static float emu_a(const emu_mma_dep *d, int row, int k) {
    const int lane = (row % 8) * 4 + (k % 8) / 2, reg = (row >= 8) + 2 * (k >= 8);
    return emu_h(d[lane].a[reg], k % 2);
}
static float emu_b(const emu_mma_dep *d, int k, int n) {
    const int lane = n * 4 + (k % 8) / 2;
    return emu_h(d[lane].b[k >= 8], k % 2);
}
static void fa_mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    const int w = emu_tid.x / 32, l = emu_tid.x % 32, g = l / 4, t = l % 4;
    emu_dep[w][l] = {{a[0], a[1], a[2], a[3]}, {b0, b1}};
    emu_warp_sync();
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e / 2), col = 2 * t + e % 2;
        float s = 0;
        for (int k = 0; k < 16; k++) s += emu_a(emu_dep[w], row, k) * emu_b(emu_dep[w], k, col);
        c[e] += s;
    }
    emu_warp_sync();
}

/* ldmatrix.x4.trans: lanes 8m..8m+7 give the row addresses of matrix m (8
 * halves each); lane l receives of each matrix M: (M[2(l%4)][l/4],
 * M[2(l%4)+1][l/4]) (the non-transposed load's (row l/4, cols 2(l%4), +1)
 * of Mᵀ). */
static const __half *emu_rows[4][32];
static void fa_ldmatrix_x4_trans(uint32_t (&r)[4], const __half *p) {
    const int w = emu_tid.x / 32, l = emu_tid.x % 32;
    if (((uintptr_t)p & 15) != 0) {
        fprintf(stderr, "fa_emu: ldmatrix row address not 16-byte aligned\n");
        exit(2);
    }
    emu_rows[w][l] = p;
    emu_warp_sync();
    for (int m = 0; m < 4; m++) {
        uint16_t lo = __half_as_ushort(emu_rows[w][8 * m + 2 * (l % 4)][l / 4]);
        uint16_t hi = __half_as_ushort(emu_rows[w][8 * m + 2 * (l % 4) + 1][l / 4]);
        r[m] = (uint32_t)lo | (uint32_t)hi << 16;
    }
    emu_warp_sync();
}

static void fa_cp16(void *smem, const void *gmem, int src_bytes) {
    if (((uintptr_t)smem & 15) || (src_bytes && ((uintptr_t)gmem & 15))) {
        fprintf(stderr, "fa_emu: cp.async address not 16-byte aligned\n");
        exit(2);
    }
    memset(smem, 0, 16);
    if (src_bytes) memcpy(smem, gmem, (size_t)src_bytes);
}
static void fa_cp_commit() {}
template <int N> static void fa_cp_wait() {}

alignas(16) unsigned char fa_sm[96 * 1024];

#define LARDER_FA_EMU 1
#include "backend/cuda/cuda_flash_attn.cu"

/* ---- driving it */

extern "C" {
#include "backend/backend.h"
#include "tensor/dtype.h"
}

template <int D, int WR, bool ASYNC> static void emu_run_block(const attn_args &a, unsigned bx, unsigned by, unsigned bz) {
    std::barrier<> bar(128);
    std::barrier<> wb[4] = {std::barrier<>(32), std::barrier<>(32), std::barrier<>(32), std::barrier<>(32)};
    emu_block_bar = &bar;
    for (int w = 0; w < 4; w++) emu_warp_bar[w] = &wb[w];
    memset(fa_sm, 0xFF, sizeof fa_sm); /* NaN-ish garbage: what the kernel reads before writing shows */
    std::vector<std::thread> th;
    for (unsigned t = 0; t < 128; t++)
        th.emplace_back([&, t] {
            emu_tid = {t, 0, 0};
            emu_bid = {bx, by, bz};
            k_flash_attn<D, WR, ASYNC>(a);
        });
    for (auto &x : th) x.join();
}

template <int D, bool ASYNC> static void emu_launch(const attn_args &a, int wr, dim3 grid) {
    emu_grid = {grid.x, grid.y, grid.z};
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                if (wr == 1) emu_run_block<D, 1, ASYNC>(a, x, y, z);
                else if (wr == 2) emu_run_block<D, 2, ASYNC>(a, x, y, z);
                else emu_run_block<D, 4, ASYNC>(a, x, y, z);
            }
}

static void host_fwht(float *x, int D, int n) { /* cpu_attention.c's hadamard_rotate */
    if (n == 0) return;
    const float scale = 1.0f / sqrtf((float)n);
    for (int c0 = 0; c0 < D; c0 += n) {
        float *v = x + c0;
        for (int i = 0; i < n; i++) v[i] *= scale;
        for (int h = 1; h < n; h *= 2)
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j++) {
                    float p = v[j], q = v[j + h];
                    v[j] = p + q, v[j + h] = p - q;
                }
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static int n_pass, n_fail;
static backend *cpu;

static void die(const char *what, const larder_error *err) {
    fprintf(stderr, "fa_emu: %s: %s\n", what, err->message);
    exit(2);
}

/* n_seqs sequences; sequence s has ctx[s] tokens cached and n_new[s] new
 * ones in the step (consecutive), window (keep, win) each; whole pages in
 * the gap before the step's first token dropped. n_sm: the multiprocessor
 * count the split-KV plan assumes. */
static void run_case(const char *name, uint32_t type, int32_t D, int32_t n_heads, int32_t n_kv, int32_t P,
                     const std::vector<int32_t> &ctx, const std::vector<int32_t> &n_new, const std::vector<int32_t> &keep,
                     const std::vector<int32_t> &win, int32_t n_sm, bool async) {
    larder_error err = {};
    const int32_t n_seqs = (int32_t)ctx.size(), L = 2, layer = 1, group = n_heads / n_kv;
    int32_t max_pages = 0, n_ctx = 0, n = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        max_pages = std::max(max_pages, (ctx[s] + n_new[s] + P - 1) / P);
        n_ctx += ctx[s], n += n_new[s];
    }
    const uint32_t n_pages = (uint32_t)(n_seqs * max_pages + 2);
    backend_kv_layout lay = {L, n_kv, D, P, type, tensor_row_bytes(type, D), 0};
    lay.page_bytes = 2 * (size_t)L * n_kv * P * lay.row_bytes;
    backend_kv *kv = backend_kv_create(cpu, &lay, n_pages, &err);
    if (!kv) die("kv_create", &err);
    std::vector<uint32_t> pt((size_t)n_seqs * max_pages);
    for (int32_t s = 0; s < n_seqs; s++)
        for (int32_t i = 0; i < max_pages; i++) pt[(size_t)s * max_pages + i] = (uint32_t)(1 + i * n_seqs + s);
    const int32_t kw = n_kv * D, qw = n_heads * D;
    std::vector<int32_t> zero(n_seqs, 0);
    /* the cached context */
    if (n_ctx > 0) {
        std::vector<int32_t> tok(n_ctx, 0), pos, seq;
        for (int32_t s = 0; s < n_seqs; s++)
            for (int32_t i = 0; i < ctx[s]; i++) pos.push_back(i), seq.push_back(s);
        std::vector<float> k((size_t)n_ctx * kw), v(k.size());
        for (auto &x : k) x = 2 * frand();
        for (auto &x : v) x = frand();
        backend_batch bt = {n_ctx, tok.data(), pos.data(), seq.data(), n_seqs, max_pages, pt.data(), zero.data(), zero.data(), 0, NULL};
        if (backend_batch_set(cpu, &bt, &err) || backend_kv_store(cpu, kv, layer, k.data(), v.data(), &err)) die("store", &err);
    }
    /* the step */
    std::vector<int32_t> tok(n, 0), pos, seq;
    for (int32_t s = 0; s < n_seqs; s++)
        for (int32_t i = 0; i < n_new[s]; i++) pos.push_back(ctx[s] + i), seq.push_back(s);
    int dropped = 0;
    std::vector<uint32_t> pt1 = pt;
    for (int32_t s = 0; s < n_seqs; s++)
        if (win[s] > 0)
            for (int32_t i = 0; i < max_pages; i++)
                if (i * P >= keep[s] && (i + 1) * P <= ctx[s] - win[s] + 1) pt1[(size_t)s * max_pages + i] = BACKEND_NO_PAGE, dropped++;
    std::vector<float> k((size_t)n * kw), v(k.size()), q((size_t)n * qw), ref(q.size()), out(q.size(), NAN);
    for (auto &x : k) x = 2 * frand();
    for (auto &x : v) x = frand();
    for (auto &x : q) x = 2 * frand();
    backend_batch bt = {n, tok.data(), pos.data(), seq.data(), n_seqs, max_pages, pt1.data(), keep.data(), win.data(), 0, NULL};
    const float scale = 1.0f / sqrtf((float)D);
    if (backend_batch_set(cpu, &bt, &err) || backend_kv_store(cpu, kv, layer, k.data(), v.data(), &err) ||
        backend_attention(cpu, kv, layer, q.data(), n_heads, scale, ref.data(), &err))
        die("cpu attention", &err);
    /* the pool as the GPU holds it */
    std::vector<uint8_t> pool((size_t)n_pages * lay.page_bytes + 16);
    uint8_t *base = pool.data() + (16 - ((uintptr_t)pool.data() & 15)) % 16;
    for (uint32_t p = 0; p < n_pages; p++)
        if (backend_kv_page_read(cpu, kv, p, base + (size_t)p * lay.page_bytes, &err)) die("page read", &err);
    /* tiles, split: as cuda_attention cuts and plans them */
    const int32_t tile_tokens = cuda_fa_tile_tokens(group);
    std::vector<cuda_attn_tile> tiles;
    for (int32_t t = 0; t < n;) {
        int32_t kk = 1;
        while (t + kk < n && kk < tile_tokens && seq[t + kk] == seq[t] && pos[t + kk] == pos[t] + kk) kk++;
        tiles.push_back({t, kk});
        t += kk;
    }
    int32_t max_keys = 0, max_rows = 0;
    for (auto &t : tiles) max_keys = std::max(max_keys, pos[t.t0 + t.n_tokens - 1] + 1), max_rows = std::max(max_rows, t.n_tokens * group);
    int32_t n_split, split_keys;
    cuda_attn_plan_split((int64_t)tiles.size() * n_kv, n_sm, max_keys, CUDA_FA_KC, &n_split, &split_keys);
    const int32_t R = max_rows, nt = (int32_t)tiles.size();
    std::vector<float> part(n_split > 1 ? (size_t)cuda_attn_part_floats(nt, n_kv, n_split, R, D) : 1, NAN);
    kv_geom g = {base, lay.page_bytes, (size_t)P * lay.row_bytes, lay.row_bytes, P, D, n_kv, type};
    attn_args a = {g, layer, n_heads, group, R, scale, q.data(), out.data(), pos.data(), seq.data(), keep.data(), win.data(),
                   pt1.data(), max_pages, tiles.data(), n_split, split_keys, part.data(), rot_k(type, D), rot_v(type, D)};
    const int wr = cuda_fa_row_warps(max_rows);
    dim3 grid((unsigned)nt, (unsigned)n_kv, (unsigned)n_split);
    if (D == 128) async ? emu_launch<128, true>(a, wr, grid) : emu_launch<128, false>(a, wr, grid);
    else async ? emu_launch<64, true>(a, wr, grid) : emu_launch<64, false>(a, wr, grid);
    if (n_split > 1) /* k_attention_merge */
        for (int32_t ti = 0; ti < nt; ti++)
            for (int32_t h = 0; h < n_kv; h++)
                for (int32_t r = 0; r < tiles[ti].n_tokens * group; r++) {
                    std::vector<float> o(D, 0.0f);
                    float M = -INFINITY, Ls = 0;
                    for (int32_t sp = 0; sp < n_split; sp++) M = std::max(M, part[cuda_attn_part_offset(ti, n_kv, h, n_split, sp, R, r, D)]);
                    if (M != -INFINITY)
                        for (int32_t sp = 0; sp < n_split; sp++) {
                            const float *pp = &part[cuda_attn_part_offset(ti, n_kv, h, n_split, sp, R, r, D)];
                            if (pp[0] == -INFINITY) continue;
                            float wgt = expf(pp[0] - M);
                            Ls += wgt * pp[1];
                            for (int32_t d = 0; d < D; d++) o[d] += wgt * pp[2 + d];
                        }
                    for (int32_t d = 0; d < D; d++) o[d] = Ls > 0 ? o[d] / Ls : 0.0f;
                    host_fwht(o.data(), D, rot_v(type, D));
                    int32_t i = r / group, gq = r % group;
                    memcpy(&out[((size_t)(tiles[ti].t0 + i) * n_heads + h * group + gq) * D], o.data(), (size_t)D * 4);
                }
    double num = 0, den = 0, mx = 0;
    bool finite = true;
    for (size_t i = 0; i < out.size(); i++) {
        finite = finite && std::isfinite(out[i]);
        double d = (double)out[i] - ref[i];
        num += d * d, den += (double)ref[i] * ref[i], mx = std::max(mx, fabs(d));
    }
    double rel = finite ? sqrt(num / den) : INFINITY, mrel = finite ? mx / sqrt(den / (double)out.size()) : INFINITY;
    const bool tight = type == TYPE_F16 || type == TYPE_F32;
    bool ok = rel <= (tight ? 2e-3 : 1e-2) && mrel <= (tight ? 1e-2 : 5e-2);
    printf("%-4s %-5s D=%d heads %d/%d %s%s: %d tiles x %d heads x %d splits (warps over rows %d), %d pages dropped: "
           "rel %.3g, max/rms %.3g\n",
           ok ? "ok" : "FAIL", tensor_type_get(type)->name, D, n_heads, n_kv, name, async ? " (cp.async)" : "", nt, n_kv,
           n_split, wr, dropped, rel, mrel);
    ok ? n_pass++ : n_fail++;
    backend_kv_free(cpu, kv);
}

int main(int argc, char **argv) {
    larder_error err = {};
    backend_options opt = {};
    opt.n_threads = 2;
    if (!(cpu = backend_create("cpu", &opt, &err))) die("cpu backend", &err);
    const bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    typedef std::vector<int32_t> V;
    /* prefill after a prefix, group 4 (16-token tiles, 4 row warps), D 128 */
    run_case("prefill 37+70", TYPE_F16, 128, 8, 2, 16, V{37}, V{70}, V{0}, V{0}, 132, true);
    run_case("prefill 37+70", TYPE_F16, 128, 8, 2, 16, V{37}, V{70}, V{0}, V{0}, 132, false);
    /* rotating window with dropped pages */
    run_case("prefill 300+40 window 4/100", TYPE_F16, 128, 8, 2, 16, V{300}, V{40}, V{4}, V{100}, 132, true);
    /* decode: few blocks -> split-KV; one-token tiles (1 row warp, keys over 4 warps) */
    run_case("decode 3 seqs", TYPE_F16, 128, 8, 2, 16, V{1, 150, 333}, V{1, 1, 1}, V{0, 0, 4}, V{0, 0, 64}, 132, true);
    run_case("decode 3 seqs, no split", TYPE_F16, 128, 8, 2, 16, V{1, 150, 333}, V{1, 1, 1}, V{0, 0, 4}, V{0, 0, 64}, 1, true);
    /* group 8, D 64: 8-token tiles; group 2: 2 row warps for a 16-row tile? (32 rows) */
    run_case("prefill 21+30", TYPE_F16, 64, 16, 2, 16, V{21}, V{30}, V{0}, V{0}, 132, true);
    run_case("prefill 5+12", TYPE_F16, 64, 4, 2, 16, V{5}, V{12}, V{0}, V{0}, 1, true); /* 24 rows: 2 row warps */
    if (!quick) {
        const uint32_t types[] = {TYPE_F32, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0};
        for (uint32_t t : types) {
            run_case("prefill 37+40", t, 128, 8, 2, 16, V{37}, V{40}, V{0}, V{0}, 132, false);
            run_case("decode 2 seqs", t, 64, 8, 2, 32, V{90, 200}, V{1, 1}, V{0, 4}, V{0, 40}, 132, false);
        }
    }
    backend_free(cpu);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
