/*
 * cuda_internal.h — the CUDA backend's object and what its files share:
 * cuda_backend.cu (creation, memory, KV page memory, the step's batch,
 * elementwise ops, rope, norms), cuda_matmul.cu (quantized GEMV for decode;
 * prefill through cuda_gemm.cu's tensor-core product on quantized weights,
 * or cuda_mmq.cu's integer one on quantized activations (the default);
 * cuda_moe_gemm.cu its grouped form for the experts), cuda_attention.cu
 * (KV store and paged attention) and cuda_flash_attn.cu (attention on the
 * tensor cores). Compiled by nvcc only (make cuda); not for use outside
 * src/backend/cuda.
 *
 * Every op is enqueued on one stream (`stream`); nothing waits for the GPU
 * until backend_sync or a host copy. A launch error is reported by the op
 * that launched it; an error inside a kernel surfaces at the next sync.
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_INTERNAL_H
#define LARDER_BACKEND_CUDA_CUDA_INTERNAL_H

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "backend/backend_impl.h"
#include "tensor/dtype.h"
}

/* The step's batch on the device (and the host copy the host-side planning
 * reads). Device arrays live in one allocation `dev_block`. */
typedef struct cuda_batch {
    int32_t n_tokens, n_seqs, max_pages, n_out;
    /* host copies */
    int32_t *h_tokens, *h_pos, *h_seq, *h_keep, *h_window, *h_out_rows;
    uint32_t *h_page_table;
    /* device copies (into dev_block) */
    int32_t *tokens, *pos, *seq, *keep, *window, *out_rows;
    uint32_t *page_table;
    void *dev_block;          /* device */
    void *host_block;         /* pinned host staging of the same layout */
    size_t block_cap_bytes;
} cuda_batch;

/* One attention tile: a run of consecutive tokens of one sequence. */
typedef struct cuda_attn_tile {
    int32_t t0, n_tokens;
} cuda_attn_tile;

/* Decode steps as CUDA graphs (LARDER_CUDA_GRAPH=1, see cuda_backend.cu). */
enum { CUDA_GRAPH_OFF, CUDA_GRAPH_CAPTURE, CUDA_GRAPH_REPLAY };

typedef struct cuda_backend {
    backend base;             /* ops table: first, so a backend * points here */
    int device;
    cudaStream_t stream;
    int n_sm;
    int smem_optin;           /* most shared memory a block may opt in to (bytes) */
    int gemm_variant;         /* LARDER_CUDA_GEMM=1: the plain-load GEMM (for A/B timing) */
    int gemv_rows_per_block;  /* LARDER_CUDA_GEMV_R=1|2|4 fixes the GEMV's rows per block (A/B timing); 0: chosen */
    int gemv_variant;         /* LARDER_CUDA_GEMV_V=2: the 8-bit GEMV a warp per row(s) (cuda_gemv.cuh) */
    cuda_batch batch;
    /* attention tiles of the current step, per group size (cuda_attention.cu) */
    int32_t tiles_group;      /* group they were cut for; 0: none yet this step */
    int32_t tiles_tokens;     /* and the most tokens a tile takes */
    int32_t n_tiles;
    bool tiles_cut_this_step;
    cuda_attn_tile *tiles_dev;
    cuda_attn_tile *tiles_host; /* pinned */
    int64_t tiles_cap;
    /* matmul scratch (cuda_matmul.cu): dequantised weights and f16 activations */
    void *mm_w16;
    size_t mm_w16_bytes;
    void *mm_x16;
    size_t mm_x16_bytes;
    void *mm_xil;             /* x rounded and interleaved for the GEMV (cuda_act_round) */
    size_t mm_xil_bytes;
    void *mm_xq;              /* x as 8-bit quants for the MMQ (cuda_mmq_act) */
    size_t mm_xq_bytes;
    bool mmq_enabled;         /* products of > GEMV_MAX_TOKENS tokens take cuda_mmq.cu (unless LARDER_CUDA_MMQ=0) */
    int mmq_tile;             /* LARDER_CUDA_MMQ_TILE=1|2|3: its tile fixed (cuda_mmq; tests, timing); 0: by n */
    /* What mm_xil holds: xil_src (n, cols) rounded for act type xil_act, or
     * nothing (xil_src NULL). Ops that may write activations begin with
     * CUDA_OP_BEGIN, which forgets it; rmsnorm sets it when it rounds its
     * output for the product that follows (see cu_rmsnorm), the GEMV path
     * reuses it instead of rounding again. */
    const float *xil_src;
    uint32_t xil_act;
    int64_t xil_n, xil_cols;
    /* the last rmsnorm's output and weight, and per norm weight (a small
     * direct-mapped table) the act type the product reading its output took */
    const float *norm_out, *norm_w;
    struct { const float *w; uint32_t act; } norm_acts[256];
    /* the last silu_mul's output, and the row width and act type of the
     * product that read a silu_mul output last (silu_cols 0: none yet) */
    const float *silu_out;
    int64_t silu_cols;
    uint32_t silu_act;
    void *moe_xil;            /* the same for the MoE down product's input */
    size_t moe_xil_bytes;
    /* CUDA graphs of decode steps */
    /* launch fusions (on unless LARDER_CUDA_FUSE=0): one GEMV launch for
     * consecutive matrices of one type sharing x (q/k/v, gate/up); silu_mul
     * rounding its output for the down product */
    bool launch_fusions;
    /* attention on the tensor cores (cuda_flash_attn.cu) where it takes the
     * shape: by default for f16/bf16/f32 KV (flash_attn 1, flash_quant_kv
     * false); LARDER_CUDA_FA=1 for every KV type it takes, =2 the same
     * without cp.async (A/B timing), =0 the scalar kernel always. q8_0 and
     * q4_0 KV stay on the scalar kernel by default: with them the f16
     * products of the tensor cores moved a top token of the Q4_K_M test
     * model (tests/cuda/run.sh, CUDA_RESULTS.md) */
    int flash_attn;
    bool flash_quant_kv;
    /* the GEMV multiplies the activations' 8-bit quants with dp4a
     * (ACT_LAYOUT_Q8) instead of their f32 values (unless LARDER_CUDA_MMVQ=0) */
    bool gemv_q8;
    bool graph_enabled;
    int graph_max_tokens;     /* steps of more tokens are not captured (LARDER_CUDA_GRAPH_MAX, default 8) */
    int graph_mode;           /* CUDA_GRAPH_*: this step's */
    cudaGraphExec_t graph_exec;
    int32_t graph_key[4], last_key[4];
    uint64_t mem_gen;         /* bumped whenever a device pointer an op may use changes */
    uint64_t graph_mem_gen, last_mem_gen;
    bool last_key_valid;
    /* uploaded weights (freed with the backend) */
    void **weights;
    size_t n_weights, cap_weights;
    size_t weight_bytes;
    /* attention split-KV partials (cuda_attention.cu) */
    float *attn_part;
    size_t attn_part_bytes;
    /* MoE feed-forward scratch (cuda_moe.cu) */
    void *moe_scratch;
    size_t moe_scratch_bytes;
    /* device flags a kernel raises (an expert id out of range), read at sync */
    int *dev_flags;
    /* get_out_rows in place: a copy of the wanted rows */
    float *rows_tmp;
    size_t rows_tmp_bytes;
} cuda_backend;

/* KV page memory: one device allocation of n_pages pages of page_bytes. */
struct backend_kv {
    backend_kv_layout layout;
    uint8_t *base;            /* device: (n_pages, stride_bytes) */
    size_t stride_bytes;      /* page_bytes rounded up to 256 */
    size_t head_bytes;        /* page_tokens · row_bytes: one (layer, K|V, head) block */
    uint32_t n_pages;
};

/* An op returns at once while a captured decode step is replayed (the
 * graph does its work at backend_sync). */
#define CUDA_SKIP_IF_REPLAY(b)                                                                                         \
    do {                                                                                                               \
        if (((cuda_backend *)(b))->graph_mode == CUDA_GRAPH_REPLAY) return 0;                                          \
    } while (0)

/* The start of an op that may write activations: skipped while replaying,
 * and mm_xil's memo is forgotten. */
#define CUDA_OP_BEGIN(b)                                                                                               \
    do {                                                                                                               \
        CUDA_SKIP_IF_REPLAY(b);                                                                                        \
        ((cuda_backend *)(b))->xil_src = NULL;                                                                         \
    } while (0)

/* err from a CUDA status: -1 with "what: cuda message" (0 on success). */
int cuda_check(cudaError_t e, const char *what, larder_error *err);
/* The last launch's status (cudaGetLastError), as cuda_check. */
int cuda_check_launch(const char *what, larder_error *err);
/* Device memory of `bytes` (cudaMalloc); NULL with a clear ERR_NOMEM that
 * gives the free and total device memory when it does not fit. */
void *cuda_alloc(cuda_backend *c, size_t bytes, const char *what, larder_error *err);
/* Grows a device scratch to at least `bytes` (contents not kept). */
int cuda_scratch_reserve(cuda_backend *c, void **p, size_t *cap, size_t bytes, const char *what, larder_error *err);

/* cuda_matmul.cu */
int cuda_matmul_multi(backend *b, const backend_matmul_weight *mats, int n_mats, int64_t cols, const float *x,
                      int64_t n_tokens, larder_error *err);
int cuda_get_rows(backend *b, const void *w, uint32_t wtype, int64_t cols, float *x, larder_error *err);
/* The GEMV's rows per block (1, 2 or 4) for `rows` rows in each of n_sets
 * row sets (MoE pairs): the most that leaves >= 6 blocks per SM. */
int cuda_gemv_rows_per_block(const cuda_backend *c, int64_t rows, int64_t n_sets);
/* Whether the matmul kernels take weights of this type. */
bool cuda_type_supported(uint32_t wtype);

/* The norm_acts slot of a norm weight. */
static inline unsigned cuda_norm_slot(const float *w) {
    return ((uint32_t)((uintptr_t)w >> 8) * 2654435761u) >> 24; /* 0..255: 32-bit multiply, top 8 bits */
}

/* cuda_act_round.cu: x (n, cols) f32 rounded as the CPU rounds the
 * activations of a product with a weight of wtype (its vec dot type: Q8_0,
 * Q8_1, Q8_K, or none for float weights), written in one of two layouts
 * (see that file): ACT_LAYOUT_IL (f32, interleaved for the GEMV; out_stride
 * = cuda_act_il_stride(cols) floats per token) or ACT_LAYOUT_F16 (f16 rows
 * of out_stride >= cols elements, zero padded) or ACT_LAYOUT_Q8 (the 8-bit
 * quants and their scales, cuda_act_round.cuh; out_stride as for IL). */
enum { ACT_LAYOUT_IL = 1, ACT_LAYOUT_F16 = 2, ACT_LAYOUT_Q8 = 3 /* int8 quants + scales: cuda_act_round.cuh */ };
int64_t cuda_act_il_stride(int64_t cols);
int cuda_act_round(cuda_backend *c, uint32_t wtype, const float *x, int64_t n, int64_t cols, int layout,
                   int64_t out_stride, void *out, larder_error *err);
/* The GEMV's input layout for act type `act`: the 8-bit one (dp4a on the
 * quants, cuda_gemv.cuh) when it is on (unless LARDER_CUDA_MMVQ=0) and the act
 * type is a quantized one, else f32 interleaved. Both take
 * cuda_act_il_stride(cols)·4 bytes a token. */
static inline int cuda_gemv_layout(const cuda_backend *c, uint32_t act) {
    return c->gemv_q8 && act != TYPE_F32 ? ACT_LAYOUT_Q8 : ACT_LAYOUT_IL;
}
/* cuda_gemm.cu: y (n, rows; row stride ldy) = x16 (n, ldk) · Wᵀ on the
 * tensor cores, W quantized in device memory (every cuda_quant.cuh type but
 * F32), unpacked in shared memory (no dequantised copy in device memory).
 * x16: f16, zero padded to ldk (a multiple of 32, >= cols); cols a multiple
 * of 32. forced_cfg: 0 picks the tile by n; 1..6 force 64x128, 64x64,
 * 64x32, 128x64 (K step 256), 128x128, 64x128 (K step 128) (tests,
 * timing). Split K uses mm_w16 as its scratch. Enqueued on the stream. */
bool cuda_gemm_type_supported(uint32_t wtype);
int cuda_gemm_q(cuda_backend *c, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const __half *x16,
                int64_t ldk, int64_t n, float *y, int64_t ldy, int forced_cfg, larder_error *err);
/* The grouped form (cuda_moe_gemm.cu): expert e's W at w + e·rows·row_bytes;
 * tiles: device (expert, start, count) triples, *n_tiles of them (at most
 * max_tiles), over plist (pair ids sorted by expert); tile i's x rows are
 * plist[start..start+count) / x_div, its y rows plist[...]. tile_bm: the
 * tokens per tile the list was cut for (64, or 128 where
 * cuda_gemm_bm128_fits). */
int cuda_gemm_q_grouped(cuda_backend *c, const void *w, uint32_t wtype, int32_t n_expert, int64_t rows, int64_t cols,
                        const __half *x16, int64_t ldk, int32_t x_div, const int32_t *tiles, const int32_t *n_tiles,
                        const int32_t *plist, int64_t max_tiles, int tile_bm, float *y, int64_t ldy, larder_error *err);
bool cuda_gemm_bm128_fits(uint32_t wtype);

/* cuda_mmq.cu: y (n, rows; row stride ldy) = x̃ · Wᵀ on the integer tensor
 * cores, x̃ = x quantized as the CPU quantizes activations for wtype, so the
 * result equals the CPU backend's product up to the order of float
 * additions. cuda_mmq_type_supported: the weight types it takes (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q3_K, Q4_K, Q5_K, Q6_K). cuda_mmq_act writes x
 * (n, cols; cols a multiple of 32, of 256 for K-quants) as the records
 * cuda_mmq reads (cuda_mmq_act_bytes(n, cols) bytes at `out`); cuda_mmq
 * multiplies them with W (device, 16-byte aligned); forced_tile 1, 2, 3
 * fixes the tile (tokens x rows) to 64x128, 64x64, 128x128 (0: by n). Split K uses mm_w16 as its
 * scratch. Enqueued on the stream. */
bool cuda_mmq_type_supported(uint32_t wtype);
int64_t cuda_mmq_steps(int64_t cols);
size_t cuda_mmq_act_bytes(int64_t n, int64_t cols);
int cuda_mmq_act(cuda_backend *c, uint32_t wtype, const float *x, int64_t n, int64_t cols, void *out,
                 larder_error *err);
int cuda_mmq(cuda_backend *c, const void *w, uint32_t wtype, int64_t rows, int64_t cols, const void *xq, int64_t n,
             float *y, int64_t ldy, int forced_tile, larder_error *err);

/* cuda_moe_gemm.cu: the expert feed-forward of a batch of more than
 * CUDA_MOE_GROUPED_MIN_TOKENS tokens as grouped tensor-core products
 * (cuda_moe_ffn's contract); cuda_moe_grouped_ok says whether it takes
 * these experts (types, sizes) and this batch. */
#define CUDA_MOE_GROUPED_MIN_TOKENS 8
bool cuda_moe_grouped_ok(const backend_moe_experts *ex, int64_t n_tokens);
int cuda_moe_ffn_grouped(cuda_backend *c, const backend_moe_experts *ex, const float *x, const int32_t *ids,
                         const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err);

/* cuda_moe.cu */
int cuda_moe_route(backend *b, const float *logits, const float *sel_bias, int64_t n_tokens, int32_t n_expert,
                   int32_t k, backend_moe_gating gating, int32_t *ids, float *weights, larder_error *err);
int cuda_moe_ffn(backend *b, const backend_moe_experts *experts, const float *x, const int32_t *ids,
                 const float *weights, int64_t n_tokens, int32_t k, float *out, larder_error *err);

/* cuda_attention.cu */
int cuda_kv_store(backend *b, backend_kv *kv, int32_t layer, const float *k, const float *v, larder_error *err);
int cuda_attention(backend *b, const backend_kv *kv, int32_t layer, const float *q, int32_t n_heads, float scale,
                   float *out, larder_error *err);

/* cuda_flash_attn.cu: the tensor-core attention kernel, launched by
 * cuda_attention with the scalar kernel's arguments (struct attn_args of
 * cuda_attn.cuh; tiles cut for cuda_fa_tile_tokens(group) tokens, keys
 * split in multiples of CUDA_FA_KC: cuda_attn_plan.h). It writes `out`, or
 * with a->n_split > 1 the partials k_attention_merge reads. max_rows: the
 * most rows (tokens x group) of any tile, at most a->R <= 64. */
struct attn_args;
bool cuda_flash_attn_supported(int32_t head_dim, int32_t group, uint32_t kv_type);
int cuda_flash_attn_launch(cuda_backend *c, const struct attn_args *a, int32_t n_tiles, int32_t n_kv_heads,
                           int32_t max_rows, larder_error *err);

#endif
