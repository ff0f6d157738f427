/*
 * model.h — a loaded transformer: hyper-parameters read from GGUF metadata
 * and weights bound to tensors of the (mmapped) file.
 *
 * Supported architectures (general.architecture): the rows of
 * model/arch.c, whose one tensor list the loader walks:
 *   llama  Llama 2 / 3.x (optional rope_freqs.weight frequency factors,
 *          optional Q/K/V biases), Mistral, TinyLlama; rope on adjacent
 *          pairs (2i, 2i+1)
 *   qwen2  + Q/K/V biases (required); NEOX rope (pairs (i, i + n_rot/2))
 *   qwen3  + per-head RMS norm of Q and K before rope; head size from
 *          attention.key_length (may differ from dim / heads); NEOX rope
 *   qwen3moe    qwen3's attention; every layer a mixture of experts with a
 *          softmax router (Qwen3-30B-A3B, Qwen3-Coder-30B-A3B)
 *   minimax-m2  RMS norm over the whole Q and K rows, partial NEOX rope;
 *          every layer a mixture of experts with sigmoid scores and a
 *          selection bias (MiniMax-M2, M2.1, REAP-pruned variants)
 * The output projection is tied to token_embd.weight when output.weight is
 * absent. A file of any other architecture fails to load with an error
 * naming it and the supported ones.
 *
 * Weight matrices are NEVER copied: `data` points into the GGUF mapping,
 * which the model keeps open. Small 1-D tensors (norm weights, biases,
 * rope factors) are converted once into owned f32 arrays. Every tensor's
 * shape and type is checked against the hyper-parameters at load, with an
 * error naming the tensor. After load, model_upload hands every tensor to
 * the backend once and keeps the backend's pointer beside the host one
 * (`dev`; on CPU the same bytes): the forward pass reads only `dev`.
 *
 * GGUF shapes are ne[0] fastest: a matrix with ne = {cols, rows} is `rows`
 * rows of `cols` elements; y = W·x maps cols inputs to rows outputs.
 */
#ifndef LARDER_MODEL_MODEL_H
#define LARDER_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/arch.h"

/* Bounds on hyper-parameters read from a file (sanity, and so products of
 * them fit comfortably in 64 bits). */
#define MODEL_MAX_LAYERS 1024
#define MODEL_MAX_HEADS 1024
#define MODEL_MAX_HEAD_DIM 1024
#define MODEL_MAX_DIM 65536
#define MODEL_MAX_FF (1 << 20)
#define MODEL_MAX_VOCAB (1 << 22)

typedef struct model_hparams {
    const arch_info *arch;  /* the architecture's row (rope style, Q/K norm, ...; model/arch.h) */
    int32_t n_vocab;
    int32_t n_ctx_train;    /* context_length (0 if absent) */
    int32_t dim;            /* embedding_length */
    int32_t n_layers;       /* block_count */
    int32_t n_heads;        /* attention.head_count */
    int32_t n_kv_heads;     /* attention.head_count_kv (default n_heads); divides n_heads */
    int32_t head_dim;       /* attention.key_length (default dim / n_heads) */
    int32_t n_ff;           /* feed_forward_length */
    int32_t n_rot;          /* rope.dimension_count (default head_dim); even, <= head_dim */
    float rope_theta;       /* rope.freq_base (default 10000) */
    float rope_freq_scale;  /* 1 / rope.scaling.factor for linear scaling, else 1 */
    float rms_eps;          /* attention.layer_norm_rms_epsilon */
    /* Mixture of experts (arch->ffn == ARCH_FFN_MOE; all 0 for dense models) */
    int32_t n_expert;       /* expert_count: experts per layer (REAP-pruned files: fewer than the original) */
    int32_t n_expert_used;  /* expert_used_count: experts each token is routed to (k) */
    int32_t n_ff_exp;       /* one expert's feed-forward length (arch->ff_exp says from which key) */
    arch_gating gating;     /* expert scores: softmax or sigmoid of the router logits */
} model_hparams;

/* Bounds on MoE hyper-parameters (llama.cpp's LLAMA_MAX_EXPERTS is 512). */
#define MODEL_MAX_EXPERTS 512
#define MODEL_MAX_EXPERTS_USED 64

/* A weight matrix in the file: rows x cols elements of `type`. */
typedef struct model_weight {
    const void *data;       /* inside the mapping; rows * row_bytes bytes */
    const void *dev;        /* the backend's copy (model_upload); NULL before */
    uint32_t type;          /* tensor_type */
    int64_t rows, cols;     /* ne[1], ne[0]; a 3-D expert tensor's rows are ne[1] * ne[2] (expert e's from e * ne[1]) */
    size_t row_bytes;
} model_weight;

/* A small f32 vector (norm weight, bias, rope frequencies), owned. */
typedef struct model_vector {
    float *data;            /* (n) host, owned; NULL when the tensor is absent */
    const float *dev;       /* the backend's copy (model_upload); NULL before */
    int64_t n;
} model_vector;

typedef struct model_layer {
    model_vector attn_norm; /* (dim) */
    model_weight wq;        /* (n_heads * head_dim, dim) */
    model_weight wk;        /* (n_kv_heads * head_dim, dim) */
    model_weight wv;        /* (n_kv_heads * head_dim, dim) */
    model_weight wo;        /* (dim, n_heads * head_dim) */
    model_vector bq, bk, bv;  /* (n_heads*head_dim), (n_kv*head_dim), (n_kv*head_dim) if the file has them; else absent */
    model_vector q_norm, k_norm; /* qk_norm PER_HEAD: (head_dim) each; WHOLE: (n_heads*head_dim), (n_kv*head_dim);
                                    else absent */
    model_vector ffn_norm;  /* (dim) */
    model_weight w_gate;    /* (n_ff, dim) */
    model_weight w_up;      /* (n_ff, dim) */
    model_weight w_down;    /* (dim, n_ff) */
    /* MoE layers (dense ones leave these empty). The expert tensors are 3-D
     * {cols, rows, n_expert} in the file, bound as one matrix whose rows
     * [e·rows_per_expert, (e+1)·rows_per_expert) are expert e's. */
    model_weight router;    /* ffn_gate_inp: (n_expert, dim) router logits */
    model_weight gate_exps; /* ffn_gate_exps: n_expert x (n_ff_exp, dim) */
    model_weight up_exps;   /* ffn_up_exps:   n_expert x (n_ff_exp, dim) */
    model_weight down_exps; /* ffn_down_exps: n_expert x (dim, n_ff_exp) */
    model_vector exp_probs_b; /* (n_expert) selection bias (MiniMax-M2), else absent */
} model_layer;

typedef struct model {
    model_hparams hp;
    model_weight tok_embd;  /* (n_vocab, dim) */
    model_weight output;    /* (n_vocab, dim); = tok_embd when tied */
    bool output_tied;
    model_vector output_norm;   /* (dim) */
    model_vector rope_freqs;    /* (n_rot / 2) rope_freqs.weight angle divisors if the file has them; else absent */
    float rope_theta_scale;     /* powf(rope_theta, -2.0f / n_rot): the rope angle's step (backend_rope_freqs) */
    model_layer *layers;    /* (n_layers) */
    size_t weight_bytes;    /* bytes of all weight tensors in the file */
    struct gguf_file *file; /* owned; the mapping the weights point into */
} model;

/* Opens, validates and binds a GGUF model. NULL with err set (naming the
 * file) on any problem. */
model *model_load(const char *path, larder_error *err);
/* Binds a model to an already open file (takes ownership of f on success). */
model *model_load_gguf(struct gguf_file *f, larder_error *err);
void model_free(model *m);

struct backend;
/* Hands every tensor to the backend (backend_upload_weight) and records
 * its pointers (`dev`). Once, after load, before the first forward pass;
 * the backend must outlive the model's use. */
int model_upload(model *m, struct backend *be, larder_error *err);

/* Bytes of the stacked expert tensors of every MoE layer (0: dense). */
size_t model_expert_bytes(const model *m);
/* Bytes of weights one decode step reads for one token: every matrix but
 * token_embd (one row of it; all of it when it is also the output), and of
 * each MoE layer's stacked experts only the n_expert_used chosen ones. */
size_t model_decode_bytes_per_token(const model *m);

/* KV bytes one token of a sequence needs in every layer with a KV type
 * (kv_pool_row_bytes; 0 for a type or head size the pool refuses). */
size_t model_kv_bytes_per_token(const model *m, uint32_t kv_type);

#endif
