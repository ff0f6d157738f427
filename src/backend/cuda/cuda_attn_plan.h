/*
 * cuda_attn_plan.h — the host-side index math of the CUDA attention
 * launches (cuda_attention.cu, cuda_flash_attn.cu), in plain C so that a
 * unit test of the plain build (tests/backend/test_cuda_attn_plan.c) checks
 * it without a GPU: how many tokens a tile takes, how the keys are split
 * over blocks (split-KV), how the flash kernel's four warps are laid over a
 * tile's rows and a chunk's keys, and where a split's partial lands in the
 * partials buffer the merge kernel reads.
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_ATTN_PLAN_H
#define LARDER_BACKEND_CUDA_CUDA_ATTN_PLAN_H

#include <stdbool.h>
#include <stdint.h>

/* Functions the kernels call too: host and device under nvcc. */
#ifdef __CUDACC__
#define CUDA_ATTN_HD __host__ __device__
#else
#define CUDA_ATTN_HD
#endif

/* The flash kernel (cuda_flash_attn.cu): 4 warps, keys walked in chunks of
 * CUDA_FA_KC, at most CUDA_FA_ROWS rows (tokens x group) per tile. */
#define CUDA_FA_WARPS 4
#define CUDA_FA_KC 64
#define CUDA_FA_ROWS 64

/* Tokens per tile of the flash kernel for a GQA group (query heads per KV
 * head): as many as fill CUDA_FA_ROWS rows; 0 when one token's rows alone
 * do not fit (group > 64: the scalar kernel takes it). */
static inline int32_t cuda_fa_tile_tokens(int32_t group) {
    if (group < 1 || group > CUDA_FA_ROWS) return 0;
    return CUDA_FA_ROWS / group;
}

/* Warps laid over rows for tiles of at most max_rows rows: 1, 2 or 4 warps
 * of 16 rows each (the mma's m16); the other warps of the 4 split each key
 * chunk (4 / row_warps warps over a chunk's keys, CUDA_FA_KC / that many
 * keys each). 0 when max_rows does not fit 64. */
static inline int32_t cuda_fa_row_warps(int32_t max_rows) {
    if (max_rows < 1 || max_rows > CUDA_FA_ROWS) return 0;
    return max_rows <= 16 ? 1 : max_rows <= 32 ? 2 : 4;
}

/* Split-KV: `blocks` (tiles x KV heads) blocks over n_sm multiprocessors,
 * keys [0, max_keys). With fewer blocks than multiprocessors the keys are
 * cut into *n_split ranges of *split_keys (a multiple of chunk_keys) so
 * that about 2·n_sm blocks run; otherwise one range. The ranges cover
 * [0, max_keys) and none is empty: (n_split - 1)·split_keys < max_keys <=
 * n_split·split_keys (max_keys >= 1). */
static inline void cuda_attn_plan_split(int64_t blocks, int32_t n_sm, int32_t max_keys, int32_t chunk_keys,
                                        int32_t *n_split, int32_t *split_keys) {
    int32_t ns = 1;
    if (max_keys < 1) max_keys = 1;
    if (blocks > 0 && blocks < n_sm) {
        int64_t want = (2 * (int64_t)n_sm + blocks - 1) / blocks, most = (max_keys + chunk_keys - 1) / chunk_keys;
        ns = (int32_t)(want < most ? want : most);
        if (ns < 1) ns = 1;
    }
    int32_t sk = (max_keys + ns - 1) / ns;
    sk = (sk + chunk_keys - 1) / chunk_keys * chunk_keys;
    if (sk < chunk_keys) sk = chunk_keys;
    ns = (max_keys + sk - 1) / sk;
    if (ns < 1) ns = 1;
    *n_split = ns, *split_keys = sk;
}

/* Float offset of row r's partial (max, sum, D outputs) of split `split` of
 * (tile, KV head kvh) in the partials buffer: (tile, kvh, split, row) x
 * (2 + D), R rows per tile. */
CUDA_ATTN_HD static inline int64_t cuda_attn_part_offset(int32_t tile, int32_t n_kv, int32_t kvh, int32_t n_split, int32_t split,
                                            int32_t R, int32_t r, int32_t D) {
    return ((((int64_t)tile * n_kv + kvh) * n_split + split) * R + r) * (int64_t)(2 + D);
}

/* Floats the partials buffer needs for n_tiles x n_kv blocks. */
static inline int64_t cuda_attn_part_floats(int32_t n_tiles, int32_t n_kv, int32_t n_split, int32_t R, int32_t D) {
    return (int64_t)n_tiles * n_kv * n_split * R * (int64_t)(2 + D);
}

/* Whether key j is seen by a row at position pr of a sequence with rotating
 * window (keep, window; window 0: none) — the mask both kernels apply (a
 * dropped page's keys are unseen as well). */
CUDA_ATTN_HD static inline bool cuda_attn_key_visible(int32_t j, int32_t pr, int32_t keep, int32_t window) {
    return j <= pr && (window == 0 || j < keep || j > pr - window);
}

/* Whether every key of [j0, j0 + chunk_keys) is seen by every row at a
 * position in [p_first, last] (dropped pages aside): the flash kernel then
 * skips the per-key mask. Sound, not complete (a chunk straddling keep and
 * the window start of a gapless window answers false). */
CUDA_ATTN_HD static inline bool cuda_attn_chunk_all_visible(int32_t j0, int32_t chunk_keys, int32_t keep, int32_t window,
                                                            int32_t p_first, int32_t last) {
    const int32_t j1 = j0 + chunk_keys - 1;
    return j1 <= p_first && (window == 0 || j1 < keep || j0 > last - window);
}

/* Whether the chunk of keys [j0, j0 + chunk_keys) lies wholly in the gap
 * of a rotating window that no row of a tile sees: rows at positions >=
 * p_first see, past the kept prefix [0, keep), only keys > p_first - window. */
CUDA_ATTN_HD static inline bool cuda_attn_chunk_in_gap(int32_t j0, int32_t chunk_keys, int32_t keep, int32_t window,
                                                       int32_t p_first) {
    return window > 0 && j0 >= keep && j0 + chunk_keys - 1 < p_first - window + 1;
}

#endif
