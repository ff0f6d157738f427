/*
 * arch.h — architectures as data: one row per supported
 * general.architecture saying how its layers differ (rope pairing, Q/K
 * norm, biases, feed-forward kind), and ONE list of the tensors a model file
 * of any of them holds: llama.cpp's name, what the tensor is, its shape over
 * the hyper-parameters and when it is present.
 *
 * The loader (model_load.c) binds a file by walking the list, `larder
 * make-model` and the test models write files by walking it, so a tensor is
 * named, shaped and conditioned in exactly one place. A new llama-like
 * architecture is a new row (and, for a new tensor, a new list entry with
 * the model.h field it binds to); forward.c reads the row's fields at the
 * step they change.
 */
#ifndef LARDER_MODEL_ARCH_H
#define LARDER_MODEL_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "gguf/gguf.h"

struct model_hparams;

/* Which elements rope rotates together. */
typedef enum arch_rope {
    ARCH_ROPE_NORMAL, /* adjacent pairs (2i, 2i+1) (llama) */
    ARCH_ROPE_NEOX,   /* halves (i, i + n_rot/2) (GPT-NeoX, qwen) */
} arch_rope;

/* RMS norm of the projected Q and K before rope (weights attn_q_norm /
 * attn_k_norm). */
typedef enum arch_qk_norm {
    ARCH_QK_NORM_NONE,
    ARCH_QK_NORM_PER_HEAD, /* each head's head_dim values on their own; weights (head_dim) (qwen3) */
    ARCH_QK_NORM_WHOLE,    /* the whole Q row (n_heads*head_dim) and K row (n_kv_heads*head_dim) before the
                              head split; weights of those sizes (MiniMax-M2) */
} arch_qk_norm;

/* Whether a file holds a tensor. */
typedef enum arch_need {
    ARCH_NEED_ABSENT,   /* never read (not looked up) */
    ARCH_NEED_OPTIONAL, /* used when present */
    ARCH_NEED_REQUIRED, /* loading fails without it */
} arch_need;

typedef enum arch_ffn {
    ARCH_FFN_DENSE, /* down(silu(gate x) * up x) */
    ARCH_FFN_MOE,   /* a router picks the top k of n_expert experts per token, each a dense
                       SwiGLU FFN; the output is their weighted sum (see forward.c ffn_moe) */
} arch_ffn;

/* MoE: how router logits become expert scores (values are llama.cpp's
 * expert_gating_func numbers, the metadata key's encoding). */
typedef enum arch_gating { ARCH_GATING_SOFTMAX = 1, ARCH_GATING_SIGMOID = 2 } arch_gating;

/* MoE: where one expert's feed-forward length comes from. */
typedef enum arch_ff_exp {
    ARCH_FF_EXP_KEY,        /* expert_feed_forward_length, else feed_forward_length / expert_used_count (qwen3moe) */
    ARCH_FF_EXP_FF,         /* feed_forward_length itself (MiniMax-M2's expert tensors use n_ff) */
} arch_ff_exp;

/* One architecture. */
typedef struct arch_info {
    const char *name;          /* general.architecture, also the metadata key prefix */
    arch_rope rope;
    arch_qk_norm qk_norm;
    arch_need qkv_bias;        /* attn_{q,k,v}.bias (llama fine-tunes may carry them) */
    arch_need rope_freqs;      /* rope_freqs.weight: per-frequency divisors (llama 3) */
    arch_ffn ffn;
    arch_gating gating;        /* ARCH_FFN_MOE: the scoring function (see gating_from_file) */
    bool gating_from_file;     /* ARCH_FFN_MOE: expert_gating_func in the file decides (required there) */
    arch_need exp_probs_b;     /* ARCH_FFN_MOE: exp_probs_b.bias, added to the scores for selection only */
    arch_ff_exp ff_exp;        /* ARCH_FFN_MOE: one expert's feed-forward length */
    bool output_tied_allowed;  /* output.weight may be absent: token_embd.weight is the output too */
    bool explicit_head_dim;    /* converters write attention.key_length even when it is dim / heads
                                  (the head size is a free parameter, not derived) */
    double typical_rope_base;  /* writers' default rope.freq_base (the released models') */
    double typical_rms_eps;    /* writers' default attention.layer_norm_rms_epsilon */
} arch_info;

/* The row for general.architecture `name`; NULL if unsupported. */
const arch_info *arch_find(const char *name);
/* The supported names, ", "-separated, into buf (truncated to size); returns buf. */
const char *arch_names(char *buf, size_t size);

/* ---- the tensor list */

/* What a tensor holds. MATRIX binds a model_weight (any computable type,
 * kept in the file's mapping); the others are f32 vectors loaded into owned
 * float arrays (model_vector) and differ only in the values writers give them. */
typedef enum arch_tensor_kind {
    ARCH_TENSOR_MATRIX,
    ARCH_TENSOR_NORM,  /* RMS norm weights (around 1) */
    ARCH_TENSOR_BIAS,  /* added to a projection */
    ARCH_TENSOR_FREQS, /* rope frequency divisors */
    ARCH_TENSOR_ROUTER, /* MoE router matrix: a MATRIX that writers keep in F32 (llama.cpp's
                           quantizer never quantizes ffn_gate_inp) */
} arch_tensor_kind;

/* Whether tensors of kind k are matrices (bound as model_weight). */
static inline bool arch_tensor_is_matrix(arch_tensor_kind k) {
    return k == ARCH_TENSOR_MATRIX || k == ARCH_TENSOR_ROUTER;
}

/* Symbolic extents, resolved against a model's hyper-parameters. */
typedef enum arch_dim {
    ARCH_DIM_DIM,       /* embedding_length */
    ARCH_DIM_Q_ROWS,    /* n_heads * head_dim */
    ARCH_DIM_KV_ROWS,   /* n_kv_heads * head_dim */
    ARCH_DIM_FF,        /* feed_forward_length */
    ARCH_DIM_VOCAB,     /* token_embd rows */
    ARCH_DIM_HEAD_DIM,
    ARCH_DIM_ROT_HALF,  /* rope.dimension_count / 2 */
    ARCH_DIM_N_EXPERT,  /* MoE: experts per layer */
    ARCH_DIM_FF_EXP,    /* MoE: one expert's feed-forward length */
} arch_dim;

/* When a tensor is present; arch_tensor_need turns this and a row into an arch_need. */
typedef enum arch_when {
    ARCH_WHEN_ALWAYS,
    ARCH_WHEN_UNTIED,           /* output.weight: optional where output_tied_allowed */
    ARCH_WHEN_ROPE_FREQS,       /* the row's rope_freqs */
    ARCH_WHEN_QKV_BIAS,         /* the row's qkv_bias */
    ARCH_WHEN_QK_NORM_PER_HEAD, /* required when qk_norm is PER_HEAD */
    ARCH_WHEN_QK_NORM_WHOLE,    /* required when qk_norm is WHOLE */
    ARCH_WHEN_FFN_DENSE,        /* required when ffn is DENSE */
    ARCH_WHEN_FFN_MOE,          /* required when ffn is MOE */
    ARCH_WHEN_EXP_PROBS_B,      /* the row's exp_probs_b */
} arch_when;

/* Most dimensions of a tensor in the list (3: expert tensors {dim, ff_exp, n_expert}). */
#define ARCH_TENSOR_MAX_DIMS 3

/* One entry of the list. */
typedef struct arch_tensor {
    const char *name;            /* GGUF name; per-layer ones are "blk.<layer>.<name>" */
    bool per_layer;
    arch_tensor_kind kind;
    uint32_t n_dims;             /* 1 for vectors, 2 or 3 for matrices */
    arch_dim ne[ARCH_TENSOR_MAX_DIMS]; /* ne[0] fastest: a matrix {cols, rows[, experts]} */
    arch_when when;
    size_t field;                /* offsetof the model_weight (MATRIX) or model_vector it binds:
                                    in model_layer when per_layer, else in model; entries sharing a
                                    field (attn_q_norm per head / whole) are never present together */
} arch_tensor;

/* One tensor of one model: an entry resolved for a layer and a shape. */
typedef struct arch_tensor_use {
    const arch_tensor *spec;
    int32_t layer;                      /* -1 for model-wide tensors */
    char name[GGUF_TENSOR_NAME_MAX_BYTES];
    uint32_t n_dims;
    int64_t ne[ARCH_TENSOR_MAX_DIMS];   /* unused dims 1 */
    arch_need need;                     /* OPTIONAL or REQUIRED */
} arch_tensor_use;

arch_need arch_tensor_need(const arch_info *a, arch_when when);

/* Called for each tensor; a nonzero return stops the walk. */
typedef int (*arch_tensor_fn)(void *ctx, const arch_tensor_use *t, larder_error *err);

/* Calls fn for every tensor a model of hp's architecture (hp->arch) and
 * shape may hold (ABSENT ones skipped), in llama.cpp's file order: the
 * model-wide tensors listed before the layers, each layer's tensors, then
 * the rest. Returns fn's first nonzero return (with err set by fn), else 0. */
int arch_tensors_each(const struct model_hparams *hp, arch_tensor_fn fn, void *ctx, larder_error *err);

#endif
