/*
 * cmd_make_model.c — `larder make-model`: write a random-weight GGUF model of
 * a supported architecture (a row of model/arch.c: llama, qwen2, qwen3) with
 * llama.cpp's tensor names and metadata keys, the tokenizer copied from a
 * vocabulary GGUF, in any supported weight type (or a llama.cpp-style K-quant
 * mix). The tensors are those of model/arch.c's one tensor list, the list the
 * loader binds: what differs here is only the values (see build_tensors).
 *
 * Key ideas:
 *  - Peaked, not flat, next-token distributions: hidden states reach the
 *    output projection RMS-normalised (rms 1), so output rows with std
 *    LOGIT_STD / sqrt(dim) give logits of std LOGIT_STD (about 7): the top
 *    token of a 32k-150k vocabulary then typically gets 0.2-0.9 probability.
 *    Projections inside the blocks use std 1/sqrt(fan_in) so every sub-layer
 *    adds an O(1) update; norm weights are 1 +- noise and biases are non-zero,
 *    so a forward pass that forgets one of them disagrees with llama.cpp.
 *  - Fast quantized files: quantizing a 1B-parameter model from floats costs
 *    minutes with the reference quantizers, so for quantized types each
 *    tensor is assembled from a pool of POOL_ELEMS random floats quantized
 *    once per (type, std): every block of the tensor is a pool block chosen by
 *    a seeded PRNG. The blocks are ordinary blocks of that type (llama.cpp
 *    reads the file like any other), rows are all distinct, and writing is
 *    bound by disk speed. F32/F16/BF16 weights are generated element by element.
 *  - Deterministic: the same flags and --seed give byte-identical files
 *    (each row has its own PRNG stream, so chunking and threads do not matter).
 *  - Bounded memory: tensors are produced chunk by chunk at write time
 *    (gguf_writer_add_tensor_fill), so a Llama-3-8B-shaped file needs only
 *    the writer's chunk buffer.
 *
 * Type mixes (--type q4_k_m / q5_k_m), after llama.cpp's llama-quant.cpp:
 * base type Q4_K (Q5_K); attn_v and ffn_down of the layers where
 * use_more_bits(i, n) holds (the first and last eighth, and every third in
 * between) get Q6_K; output (and token_embd when tied) get Q6_K. Pure types
 * (--type q4_0, q4_k, ...) use that type for every 2-D weight. A weight whose
 * first dimension is not a multiple of the type's block falls back as
 * llama.cpp does: Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, then F16.
 * Norm weights, biases and rope_freqs stay F32.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/timing.h"
#include "cli/cli_args.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "model/model.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

/* Target standard deviation of the logits (see the file comment). */
#define LOGIT_STD 7.0
/* Scale of the blocks' output projections in tied models (see build_tensors). */
#define TIED_RESIDUAL_GAIN 8.0
/* Standard deviation of MoE router logits (see build_tensor). */
#define ROUTER_GAIN 3.0
/* Floats quantized into each block pool (per (type, std)); 4 Mi elements
 * = 16384 Q4_K blocks, 131072 Q4_0 blocks: ~0.5 s per pool. */
#define POOL_ELEMS ((int64_t)1 << 22)
/* Limits on shape flags (sanity bounds; real models are far below). */
#define MAKE_MAX_DIM 65536
#define MAKE_MAX_LAYERS 1024
#define MAKE_MAX_HEADS 1024
#define MAKE_MAX_CTX (1 << 24)
#define MAKE_MAX_THREADS 256

/* ---- PRNG: splitmix64, one stream per (tensor, row) */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Approximately normal(0, 1): sum of four 16-bit uniforms (Irwin-Hall),
 * centred and scaled to unit variance (var of one U(0,1) is 1/12). */
static float rand_normal(uint64_t *s) {
    uint64_t r = splitmix64(s);
    float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) + (float)(r >> 48);
    return (sum / 65536.0f - 2.0f) * 1.7320508f; /* sqrt(12/4) */
}

/* ---- what each tensor holds */

typedef enum weight_kind {
    KIND_MATRIX,     /* normal(0, std) */
    KIND_NORM,       /* 1 + normal(0, 0.1) */
    KIND_BIAS,       /* normal(0, std) */
    KIND_ROPE_FREQS, /* llama-3 style frequency factors: 1 for the first half, rising to 8 */
} weight_kind;

typedef struct block_pool {
    uint32_t type;
    float std;
    size_t block_bytes;
    int64_t n_blocks;
    uint8_t *blocks;   /* n_blocks * block_bytes: quantized normal(0, std) values */
} block_pool;

typedef struct tensor_gen {
    char name[GGUF_TENSOR_NAME_MAX_BYTES];
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[ARCH_TENSOR_MAX_DIMS]; /* rows of ne[0] elements: ne[1] * ne[2] of them */
    weight_kind kind;
    float std;
    uint64_t seed;
    const block_pool *pool; /* quantized types */
    int threads;
} tensor_gen;

typedef struct fill_job {
    const tensor_gen *t;
    int64_t row_begin, row_end; /* absolute rows this thread fills */
    int64_t first_row;          /* absolute row stored at dst */
    uint8_t *dst;
    int rc;
} fill_job;

static void gen_row_floats(const tensor_gen *t, int64_t row, float *out) {
    uint64_t s = hash_combine(t->seed, (uint64_t)row);
    int64_t n = t->ne[0];
    switch (t->kind) {
    case KIND_MATRIX:
    case KIND_BIAS:
        for (int64_t i = 0; i < n; i++) out[i] = t->std * rand_normal(&s);
        break;
    case KIND_NORM:
        for (int64_t i = 0; i < n; i++) out[i] = 1.0f + 0.1f * rand_normal(&s);
        break;
    case KIND_ROPE_FREQS:
        for (int64_t i = 0; i < n; i++)
            out[i] = i < n / 2 ? 1.0f : 1.0f + 7.0f * (float)(i - n / 2) / (float)(n - n / 2);
        break;
    }
}

static void *fill_thread(void *arg) {
    fill_job *j = arg;
    const tensor_gen *t = j->t;
    size_t row_bytes = tensor_row_bytes(t->type, t->ne[0]);
    float *tmp = NULL;
    if (!t->pool && !(tmp = malloc((size_t)t->ne[0] * sizeof *tmp))) {
        j->rc = -1;
        return NULL;
    }
    for (int64_t r = j->row_begin; r < j->row_end; r++) {
        uint8_t *dst = j->dst + (size_t)(r - j->first_row) * row_bytes;
        if (t->pool) {
            /* Each block of the row is a pool block picked by the row's PRNG. */
            uint64_t s = hash_combine(t->seed, (uint64_t)r);
            int64_t n_blocks = (int64_t)(row_bytes / t->pool->block_bytes);
            for (int64_t b = 0; b < n_blocks; b++) {
                uint64_t k = splitmix64(&s) % (uint64_t)t->pool->n_blocks;
                memcpy(dst + (size_t)b * t->pool->block_bytes, t->pool->blocks + k * t->pool->block_bytes,
                       t->pool->block_bytes);
            }
        } else {
            /* F32 / F16 / BF16: floats, then stored in the tensor's type. */
            gen_row_floats(t, r, tmp);
            if (quantize_row(t->type, tmp, dst, t->ne[0]) != 0) { j->rc = -1; break; }
        }
    }
    free(tmp);
    return NULL;
}

/* gguf_fill_fn: rows [row_begin, +n_rows) split over t->threads threads. */
static int fill_tensor(void *ctx, int64_t row_begin, int64_t n_rows, void *dst, larder_error *err) {
    const tensor_gen *t = ctx;
    int n_threads = t->threads;
    if (n_threads > n_rows) n_threads = (int)n_rows;
    if (n_threads < 1) n_threads = 1;
    fill_job jobs[MAKE_MAX_THREADS];
    pthread_t tids[MAKE_MAX_THREADS];
    bool running[MAKE_MAX_THREADS];
    for (int k = 0; k < n_threads; k++) {
        jobs[k] = (fill_job){t, row_begin + n_rows * k / n_threads, row_begin + n_rows * (k + 1) / n_threads,
                             row_begin, dst, 0};
        /* The last slice runs on this thread, as does any slice whose thread fails to start. */
        running[k] = k < n_threads - 1 && pthread_create(&tids[k], NULL, fill_thread, &jobs[k]) == 0;
        if (!running[k]) fill_thread(&jobs[k]);
    }
    int rc = 0;
    for (int k = 0; k < n_threads; k++) {
        if (running[k]) pthread_join(tids[k], NULL);
        if (jobs[k].rc != 0) rc = -1;
    }
    return rc ? error_set(err, ERR_NOMEM, "generating weights failed (out of memory?)") : 0;
}

/* ---- block pools */

typedef struct pool_set {
    block_pool pools[32];
    int n;
} pool_set;

/* The pool for (type, std), built on first use: POOL_ELEMS normal(0, std)
 * floats quantized with the reference quantizer. */
static const block_pool *pool_get(pool_set *ps, uint32_t type, float std, uint64_t seed, larder_error *err) {
    for (int i = 0; i < ps->n; i++)
        if (ps->pools[i].type == type && ps->pools[i].std == std) return &ps->pools[i];
    if (ps->n == (int)(sizeof ps->pools / sizeof ps->pools[0])) {
        error_set(err, ERR_LIMIT, "too many distinct weight pools");
        return NULL;
    }
    const tensor_type_traits *tt = tensor_type_get(type);
    block_pool *p = &ps->pools[ps->n];
    p->type = type;
    p->std = std;
    p->block_bytes = tt->block_bytes;
    p->n_blocks = POOL_ELEMS / tt->block_elems;
    p->blocks = malloc((size_t)p->n_blocks * p->block_bytes);
    float *x = malloc((size_t)POOL_ELEMS * sizeof *x);
    if (!p->blocks || !x) {
        free(p->blocks);
        free(x);
        error_set(err, ERR_NOMEM, "out of memory for a weight pool");
        return NULL;
    }
    uint64_t s = hash_combine(seed, hash_combine(type, (uint64_t)(std * 1e6f)));
    for (int64_t i = 0; i < POOL_ELEMS; i++) x[i] = std * rand_normal(&s);
    int rc = quantize_row(type, x, p->blocks, POOL_ELEMS);
    free(x);
    if (rc != 0) {
        free(p->blocks);
        error_set(err, ERR_UNSUPPORTED, "cannot quantize to %s", tt->name);
        return NULL;
    }
    ps->n++;
    return p;
}

static void pool_set_free(pool_set *ps) {
    for (int i = 0; i < ps->n; i++) free(ps->pools[i].blocks);
    ps->n = 0;
}

/* ---- weight types */

typedef struct type_choice {
    const char *name;    /* --type value */
    uint32_t base;       /* type of most 2-D weights */
    bool mix;            /* llama.cpp _M mix (Q6_K for output and some attn_v / ffn_down) */
    uint32_t file_type;  /* general.file_type (llama_ftype) */
} type_choice;

static const type_choice TYPE_CHOICES[] = {
    {"f32", TYPE_F32, false, 0},      {"f16", TYPE_F16, false, 1},     {"bf16", TYPE_BF16, false, 32},
    {"q8_0", TYPE_Q8_0, false, 7},    {"q4_0", TYPE_Q4_0, false, 2},   {"q4_1", TYPE_Q4_1, false, 3},
    {"q5_0", TYPE_Q5_0, false, 8},    {"q5_1", TYPE_Q5_1, false, 9},   {"q4_k", TYPE_Q4_K, false, 14},
    {"q5_k", TYPE_Q5_K, false, 16},   {"q6_k", TYPE_Q6_K, false, 18},  {"q4_k_m", TYPE_Q4_K, true, 15},
    {"q5_k_m", TYPE_Q5_K, true, 17},
};

/* llama.cpp's rule for which layers get more bits in the _M mixes. */
static bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

/* A type whose block fits ne0 (llama.cpp's fallback chain). */
static uint32_t type_fit(uint32_t type, int64_t ne0) {
    for (;;) {
        const tensor_type_traits *tt = tensor_type_get(type);
        if (ne0 % tt->block_elems == 0) return type;
        switch (type) {
        case TYPE_Q4_K: type = TYPE_Q5_0; break;
        case TYPE_Q5_K: type = TYPE_Q5_1; break;
        case TYPE_Q6_K: type = TYPE_Q8_0; break;
        default: return TYPE_F16;
        }
    }
}

/* ---- the model description */

typedef struct model_spec {
    const arch_info *arch;
    int64_t dim, ff, heads, kv_heads, head_dim, layers, ctx, n_vocab;
    int64_t rot;                         /* rope.dimension_count (head_dim unless partial) */
    int64_t n_expert, n_expert_used, ff_exp; /* MoE architectures */
    double rope_base, rms_eps;
    bool tied, rope_freqs;
    const type_choice *type;
    uint64_t seed;
    int threads;
} model_spec;

typedef struct tensor_list {
    tensor_gen *items;
    int n, cap;
} tensor_list;

/* Tensor u of the list, generated as kind with std, stored as type (matrices: fitted to ne[0]). */
static int tensor_add(tensor_list *tl, const model_spec *m, const arch_tensor_use *u, weight_kind kind, float std,
                      uint32_t type, larder_error *err) {
    if (tl->n == tl->cap) {
        int cap = tl->cap ? tl->cap * 2 : 64;
        tensor_gen *items = realloc(tl->items, (size_t)cap * sizeof *items);
        if (!items) return error_set(err, ERR_NOMEM, "out of memory");
        tl->items = items;
        tl->cap = cap;
    }
    tensor_gen *t = &tl->items[tl->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", u->name);
    t->n_dims = u->n_dims;
    memcpy(t->ne, u->ne, sizeof t->ne);
    t->kind = kind;
    t->std = std;
    t->type = kind == KIND_MATRIX ? type_fit(type, u->ne[0]) : TYPE_F32;
    t->seed = hash_combine(m->seed, hash_string(u->name));
    t->threads = m->threads;
    return 0;
}

typedef struct build_ctx {
    const model_spec *m;
    tensor_list *tl;
} build_ctx;

/* Which optional tensors of the list a file gets: output.weight unless
 * --tied, rope_freqs.weight with --rope-freqs; never llama's optional biases. */
static bool optional_wanted(const model_spec *m, arch_when when) {
    switch (when) {
    case ARCH_WHEN_UNTIED: return !m->tied;
    case ARCH_WHEN_ROPE_FREQS: return m->rope_freqs;
    default: return false;
    }
}

/* arch_tensor_fn: one tensor of the list with its generator: kind and std
 * by what the tensor is, type by the --type mix. */
static int build_tensor(void *ctx, const arch_tensor_use *u, larder_error *err) {
    const build_ctx *b = ctx;
    const model_spec *m = b->m;
    const arch_tensor *t = u->spec;
    if (u->need == ARCH_NEED_OPTIONAL && !optional_wanted(m, t->when)) return 0;
    if (t->when == ARCH_WHEN_EXP_PROBS_B) /* selection bias: shifts which experts win, O(score) */
        return tensor_add(b->tl, m, u, KIND_BIAS, 0.05f, TYPE_F32, err);
    const uint32_t base = m->type->base;
    const uint32_t q6 = m->type->mix ? TYPE_Q6_K : base;
    switch (t->kind) {
    case ARCH_TENSOR_NORM: return tensor_add(b->tl, m, u, KIND_NORM, 0, TYPE_F32, err);
    case ARCH_TENSOR_BIAS: return tensor_add(b->tl, m, u, KIND_BIAS, 0.2f, TYPE_F32, err);
    case ARCH_TENSOR_FREQS: return tensor_add(b->tl, m, u, KIND_ROPE_FREQS, 0, TYPE_F32, err);
    case ARCH_TENSOR_ROUTER:
        /* F32 as llama.cpp's quantizer leaves it; logits of std ROUTER_GAIN,
         * so each token's top k are decided by clear margins and differ from
         * token to token (a flat router would pick near-ties) */
        return tensor_add(b->tl, m, u, KIND_MATRIX, (float)(ROUTER_GAIN / sqrt((double)u->ne[0])), TYPE_F32, err);
    case ARCH_TENSOR_MATRIX: break;
    }
    const float out_std = (float)(LOGIT_STD / sqrt((double)m->dim));
    double std;
    uint32_t type = base;
    if (!strcmp(t->name, "token_embd.weight")) {
        /* Tied: the embedding is also the output projection, so it takes the output's scale and type. */
        std = m->tied ? out_std : 1.0f;
        type = m->tied ? q6 : base;
    } else if (t->when == ARCH_WHEN_UNTIED) {
        std = out_std;
        type = q6;
    } else if (t->ne[1] == ARCH_DIM_DIM) {
        /* A block's output projection (it writes the residual stream). Tied:
         * the final hidden state still holds the current token's embedding
         * e, whose own logit is |e|^2 / rms(h) = LOGIT_STD^2 / rms(h); these
         * are scaled up so that rms(h) >> LOGIT_STD and the model does not
         * just repeat its input token. */
        std = (m->tied ? TIED_RESIDUAL_GAIN : 1.0) / sqrt((double)u->ne[0]);
    } else {
        std = 1.0 / sqrt((double)u->ne[0]); /* fan-in: an O(1) output */
    }
    /* _M mixes: llama.cpp gives attn_v and ffn_down more bits in some layers (by name). */
    if (m->type->mix && u->layer >= 0 && use_more_bits(u->layer, (int)m->layers) &&
        (!strcmp(t->name, "attn_v.weight") || !strcmp(t->name, "ffn_down.weight") ||
         !strcmp(t->name, "ffn_down_exps.weight")))
        type = TYPE_Q6_K;
    return tensor_add(b->tl, m, u, KIND_MATRIX, (float)std, type, err);
}

/* All tensors of the model: model/arch.c's list for this shape, in its (llama.cpp's) order. */
static int build_tensors(const model_spec *m, tensor_list *tl, larder_error *err) {
    model_hparams hp = {.arch = m->arch, .n_vocab = (int32_t)m->n_vocab, .dim = (int32_t)m->dim,
                        .n_layers = (int32_t)m->layers, .n_heads = (int32_t)m->heads,
                        .n_kv_heads = (int32_t)m->kv_heads, .head_dim = (int32_t)m->head_dim,
                        .n_ff = (int32_t)m->ff, .n_rot = (int32_t)m->rot, .n_expert = (int32_t)m->n_expert,
                        .n_expert_used = (int32_t)m->n_expert_used, .n_ff_exp = (int32_t)m->ff_exp};
    build_ctx b = {m, tl};
    return arch_tensors_each(&hp, build_tensor, &b, err) ? -1 : 0;
}

/* ---- metadata */

/* A ChatML template (the default): <|im_start|>role\ncontent<|im_end|>\n per
 * message, then "<|im_start|>assistant\n" when a generation prompt is asked. */
static const char CHATML_TEMPLATE[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

static int read_whole_file(const char *path, char **out, size_t *len, larder_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return error_set(err, ERR_IO, "%s: cannot open", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = cap > ((size_t)64 << 20) ? NULL : realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    bool bad = ferror(fp);
    fclose(fp);
    if (!buf) return error_set(err, ERR_NOMEM, "%s: too large or out of memory", path);
    if (bad) { free(buf); return error_set(err, ERR_IO, "%s: read error", path); }
    *out = buf;
    *len = n;
    return 0;
}

static int set_metadata(gguf_writer *w, const model_spec *m, const gguf_file *vocab, const char *template_text,
                        size_t template_len, const char *name, larder_error *err) {
    const char *arch = m->arch->name;
    char key[GGUF_KEY_MAX_BYTES];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    if (gguf_writer_set_string(w, "general.architecture", arch, err) ||
        gguf_writer_set_string(w, "general.name", name, err) ||
        gguf_writer_set_u32(w, "general.file_type", m->type->file_type, err) ||
        gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)m->n_vocab, err) ||
        gguf_writer_set_u32(w, K("context_length"), (uint32_t)m->ctx, err) ||
        gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)m->dim, err) ||
        gguf_writer_set_u32(w, K("block_count"), (uint32_t)m->layers, err) ||
        gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)m->ff, err) ||
        gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)m->heads, err) ||
        gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)m->kv_heads, err) ||
        gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)m->rot, err) ||
        gguf_writer_set_f32(w, K("rope.freq_base"), (float)m->rope_base, err) ||
        gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), (float)m->rms_eps, err))
        return -1;
    if (m->arch->explicit_head_dim || m->head_dim * m->heads != m->dim) {
        if (gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)m->head_dim, err) ||
            gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)m->head_dim, err))
            return -1;
    }
    if (m->arch->ffn == ARCH_FFN_MOE &&
        (gguf_writer_set_u32(w, K("expert_count"), (uint32_t)m->n_expert, err) ||
         gguf_writer_set_u32(w, K("expert_used_count"), (uint32_t)m->n_expert_used, err) ||
         gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)m->ff_exp, err) ||
         (m->arch->gating_from_file &&
          gguf_writer_set_u32(w, K("expert_gating_func"), (uint32_t)m->arch->gating, err))))
        return -1;
#undef K
    /* The tokenizer: every tokenizer.* key of the vocabulary file, then our template. */
    for (int64_t i = 0; i < gguf_kv_count(vocab); i++) {
        const char *k = gguf_kv_key(vocab, i);
        if (strncmp(k, "tokenizer.", 10) != 0 || strcmp(k, "tokenizer.chat_template") == 0) continue;
        if (gguf_writer_copy_kv(w, vocab, k, err) != 0) return -1;
    }
    return gguf_writer_set_string_n(w, "tokenizer.chat_template", template_text, template_len, err);
}

/* ---- presets and flags */

typedef struct preset {
    const char *name;
    const char *arch;  /* an arch.c row */
    int64_t dim, ff, heads, kv_heads, head_dim, layers, ctx;
    double rope_base, rms_eps;
    bool tied, rope_freqs;
    const char *vocab; /* file name in the shared vocab folder */
    int64_t rot;       /* rope.dimension_count; 0: head_dim */
    int64_t n_expert, n_expert_used, ff_exp; /* MoE; 0 for dense */
} preset;

/* The released models' shapes. MiniMax-M2's own vocabulary (200064 tokens)
 * is not among the shared vocabularies: its presets take Llama 3's BPE
 * vocabulary (128256), and --vocab may name a real MiniMax-M2 GGUF. */
static const preset PRESETS[] = {
    {"tinyllama-1.1b", "llama", 2048, 5632, 32, 4, 64, 22, 2048, 10000.0, 1e-5, false, false, "ggml-vocab-llama-spm.gguf", 0, 0, 0, 0},
    {"llama3-8b", "llama", 4096, 14336, 32, 8, 128, 32, 8192, 500000.0, 1e-5, false, true, "ggml-vocab-llama-bpe.gguf", 0, 0, 0, 0},
    {"qwen3-0.6b", "qwen3", 1024, 3072, 16, 8, 128, 28, 40960, 1000000.0, 1e-6, true, false, "ggml-vocab-qwen2.gguf", 0, 0, 0, 0},
    {"qwen3-30b-a3b", "qwen3moe", 2048, 6144, 32, 4, 128, 48, 40960, 1000000.0, 1e-6, false, false, "ggml-vocab-qwen2.gguf",
     0, 128, 8, 768},
    {"minimax-m2", "minimax-m2", 3072, 1536, 48, 8, 128, 62, 196608, 5000000.0, 1e-6, false, false,
     "ggml-vocab-llama-bpe.gguf", 64, 256, 8, 1536},
    {"minimax-m2-reap50", "minimax-m2", 3072, 1536, 48, 8, 128, 62, 196608, 5000000.0, 1e-6, false, false,
     "ggml-vocab-llama-bpe.gguf", 64, 128, 8, 1536},
};
#define PRESET_NAMES "tinyllama-1.1b, llama3-8b, qwen3-0.6b, qwen3-30b-a3b, minimax-m2, minimax-m2-reap50"

/* Finds a preset's vocabulary: $SHARED/vocab, then ../shared/vocab. */
static const char *find_vocab(const char *file, char *buf, size_t buf_size) {
    const char *shared = getenv("SHARED");
    if (shared && *shared) {
        snprintf(buf, buf_size, "%s/vocab/%s", shared, file);
        if (access(buf, R_OK) == 0) return buf;
    }
    snprintf(buf, buf_size, "../shared/vocab/%s", file);
    if (access(buf, R_OK) == 0) return buf;
    return NULL;
}

static const char USAGE[] =
    "larder make-model --arch ARCH --vocab FILE.gguf --dim N --ff N --heads N --layers N --out FILE\n"
    "                         [--kv-heads N] [--head-dim N] [--rot N] [--ctx N] [--seed N] [--type T] [--tied]\n"
    "                         [--rope-freqs] [--experts N --experts-used K [--ff-exp N]]\n"
    "                         [--preset NAME] [--chat-template FILE]\n\n"
    "Writes a random-weight GGUF model (llama.cpp tensor names and metadata) of an architecture\n"
    "larder runs (--arch below), with the tokenizer of the vocabulary file. Types: f32 f16 bf16\n"
    "q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m.\n"
    "A preset sets the real shapes (explicit flags override them; --layers N cuts the depth) and\n"
    "finds its vocabulary in $SHARED/vocab or ../shared/vocab unless --vocab is given. Presets:\n"
    PRESET_NAMES ". Mixture-of-experts architectures (qwen3moe, minimax-m2) need\n"
    "--experts and --experts-used (without a preset); --ff-exp is one expert's feed-forward length\n"
    "(default --ff)";

/* What `larder make-model` was asked for: the command line as given (0 or
 * NULL: not given), with the defaults that need no preset filled in. */
typedef struct make_options {
    const char *arch_s, *vocab_path, *out, *type_s, *preset_s, *template_path;
    int64_t dim, ff, heads, kv_heads, head_dim, layers, ctx, seed, threads;
    int64_t rot, n_expert, n_expert_used, ff_exp;
    double rope_base, rms_eps;
    bool tied, rope_freqs, quiet;
    char arch_list[128];  /* the --arch names, for help and errors */
    char vocab_buf[4096]; /* a preset's vocabulary path when found */
} make_options;

/* Parses argv into o. Returns true when making goes on; false with
 * *exit_status set after --help (0) or a bad option (1, printed). */
static bool make_parse_options(int argc, char **argv, make_options *o, int *exit_status) {
    *o = (make_options){.type_s = "f32", .seed = 1};
    o->threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    if (o->threads > MAKE_MAX_THREADS) o->threads = MAKE_MAX_THREADS;
    arch_names(o->arch_list, sizeof o->arch_list);
    cli_option opts[] = {
        CLI_STR("--arch", &o->arch_s, "ARCH", o->arch_list),
        CLI_STR("--vocab", &o->vocab_path, "FILE", "GGUF whose tokenizer.* keys are copied (n_vocab = its token count)"),
        CLI_INT("--dim", &o->dim, 1, MAKE_MAX_DIM, "N", "embedding length"),
        CLI_INT("--ff", &o->ff, 1, 8 * MAKE_MAX_DIM, "N", "feed-forward length"),
        CLI_INT("--heads", &o->heads, 1, MAKE_MAX_HEADS, "N", "attention heads"),
        CLI_INT("--kv-heads", &o->kv_heads, 1, MAKE_MAX_HEADS, "N", "key/value heads (default: --heads)"),
        CLI_INT("--head-dim", &o->head_dim, 2, 1024, "N", "head size (default: dim / heads)"),
        CLI_INT("--rot", &o->rot, 2, 1024, "N", "dimensions rope rotates per head (default: head size)"),
        CLI_INT("--experts", &o->n_expert, 1, MODEL_MAX_EXPERTS, "N", "MoE: experts per layer"),
        CLI_INT("--experts-used", &o->n_expert_used, 1, MODEL_MAX_EXPERTS_USED, "K", "MoE: experts per token"),
        CLI_INT("--ff-exp", &o->ff_exp, 1, 8 * MAKE_MAX_DIM, "N", "MoE: one expert's feed-forward length"),
        CLI_INT("--layers", &o->layers, 1, MAKE_MAX_LAYERS, "N", "transformer blocks"),
        CLI_INT("--ctx", &o->ctx, 1, MAKE_MAX_CTX, "N", "context length (default 2048)"),
        CLI_INT("--seed", &o->seed, 0, 9007199254740991.0, "N", "PRNG seed (default 1)"),
        CLI_STR("--type", &o->type_s, "T", "weight type (default f32)"),
        CLI_STR("--out", &o->out, "FILE", "output GGUF path"),
        CLI_STR("--preset", &o->preset_s, "NAME", PRESET_NAMES),
        CLI_STR("--chat-template", &o->template_path, "FILE", "Jinja chat template (default: ChatML)"),
        CLI_FLAG("--tied", &o->tied, "no output.weight: output shares token_embd"),
        CLI_FLAG("--rope-freqs", &o->rope_freqs, "add a llama-3 style rope_freqs tensor"),
        CLI_FLOAT("--rope-base", &o->rope_base, 1, 1e12, "F", "rope.freq_base (default per arch)"),
        CLI_FLOAT("--rms-eps", &o->rms_eps, 1e-12, 1, "F", "RMS norm epsilon (default per arch)"),
        CLI_INT("--threads", &o->threads, 1, MAKE_MAX_THREADS, "N", "generation threads (default: cores)"),
        CLI_FLAG("--quiet", &o->quiet, "print nothing on success"),
    };
    bool done;
    *exit_status = cli_parse_or_exit("make-model", USAGE, argc, argv, opts, CLI_COUNT(opts), &done);
    return !done;
}

/* The preset --preset names, copied into m: architecture and shapes; its
 * vocabulary becomes o->vocab_path unless --vocab was given. NULL after
 * printing why. */
static const preset *make_apply_preset(make_options *o, model_spec *m) {
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, o->preset_s) == 0) p = &PRESETS[i];
    if (!p) {
        fprintf(stderr, "larder make-model: unknown preset '%s' (%s)\n", o->preset_s, PRESET_NAMES);
        return NULL;
    }
    if (!(m->arch = arch_find(p->arch))) {
        fprintf(stderr, "larder make-model: preset %s names architecture %s, which is not supported\n", p->name, p->arch);
        return NULL;
    }
    m->dim = p->dim; m->ff = p->ff; m->heads = p->heads; m->kv_heads = p->kv_heads;
    m->head_dim = p->head_dim; m->layers = p->layers; m->ctx = p->ctx; m->rope_base = p->rope_base;
    m->rms_eps = p->rms_eps; m->tied = p->tied; m->rope_freqs = p->rope_freqs;
    m->rot = p->rot; m->n_expert = p->n_expert; m->n_expert_used = p->n_expert_used; m->ff_exp = p->ff_exp;
    if (!o->vocab_path && !(o->vocab_path = find_vocab(p->vocab, o->vocab_buf, sizeof o->vocab_buf))) {
        fprintf(stderr, "larder make-model: preset %s needs %s: not found in $SHARED/vocab or ../shared/vocab (pass --vocab)\n",
                p->name, p->vocab);
        return NULL;
    }
    return p;
}

/* The first option that is required and missing (with a preset p, only the
 * files are), or NULL. */
static const char *make_missing_option(const make_options *o, const preset *p) {
    return !p && !o->arch_s ? "--arch" : !o->vocab_path ? "--vocab" : !o->out ? "--out"
         : !p && !o->dim ? "--dim" : !p && !o->ff ? "--ff" : !p && !o->heads ? "--heads"
         : !p && !o->layers ? "--layers" : NULL;
}

/* The explicit flags over m (the preset p's shapes, or zeros): head size
 * and kv heads derived from dim/heads are recomputed when either of those
 * was given; rope base and epsilon default to the architecture's. */
static void make_apply_flags(const make_options *o, const preset *p, model_spec *m) {
    bool reshaped = o->dim || o->heads;
    if (o->dim) m->dim = o->dim;
    if (o->ff) m->ff = o->ff;
    if (o->heads) m->heads = o->heads;
    if (o->layers) m->layers = o->layers;
    if (o->ctx) m->ctx = o->ctx;
    if (!m->ctx) m->ctx = 2048;
    m->kv_heads = o->kv_heads ? o->kv_heads : (p && !o->heads) ? m->kv_heads : m->heads;
    m->head_dim = o->head_dim ? o->head_dim : (p && !reshaped) ? m->head_dim : m->dim / m->heads;
    /* rope dimensions: the flag, else the preset's unless the head was reshaped, else the whole head */
    if (o->rot) m->rot = o->rot;
    else if (reshaped || o->head_dim) m->rot = 0;
    if (!m->rot) m->rot = m->head_dim;
    if (o->n_expert) m->n_expert = o->n_expert;
    if (o->n_expert_used) m->n_expert_used = o->n_expert_used;
    /* one expert's ff: the flag, else the preset's unless --ff was given, else --ff; MiniMax-M2's
     * expert tensors are feed_forward_length wide (arch ff_exp FF) */
    if (o->ff_exp) m->ff_exp = o->ff_exp;
    else if (o->ff || !m->ff_exp) m->ff_exp = m->ff;
    if (m->arch->ff_exp == ARCH_FF_EXP_FF) m->ff_exp = m->ff;
    if (o->tied) m->tied = true;
    if (o->rope_freqs) m->rope_freqs = true;
    if (o->rope_base > 0) m->rope_base = o->rope_base;
    else if (!p) m->rope_base = m->arch->typical_rope_base;
    if (o->rms_eps > 0) m->rms_eps = o->rms_eps;
    else if (!p) m->rms_eps = m->arch->typical_rms_eps;
    m->seed = (uint64_t)o->seed;
    m->threads = (int)o->threads;
}

/* Why the shape m cannot be built, or NULL. */
static const char *make_shape_error(const model_spec *m) {
    const bool moe = m->arch->ffn == ARCH_FFN_MOE;
    return m->head_dim < 2 || m->head_dim % 2 ? "the head size must be even and >= 2 (rope rotates pairs)"
         : m->rot < 2 || m->rot % 2 || m->rot > m->head_dim ? "--rot must be even and at most the head size"
         : moe && (m->n_expert < 1 || m->n_expert_used < 1) ? "this --arch is a mixture of experts: give --experts and --experts-used"
         : moe && m->n_expert_used > m->n_expert ? "--experts-used exceeds --experts"
         : !moe && (m->n_expert || m->n_expert_used) ? "--experts: this --arch has no experts"
         : m->heads % m->kv_heads ? "--heads must be a multiple of --kv-heads"
         : m->rope_freqs && m->arch->rope_freqs == ARCH_NEED_ABSENT ? "--rope-freqs: this --arch has no rope_freqs tensor"
         : m->tied && !m->arch->output_tied_allowed ? "--tied: this --arch always has output.weight"
         : NULL;
}

/* The model o describes, as m (n_vocab comes with the vocabulary file), and
 * its preset as *p (NULL: none). false after printing why. */
static bool make_resolve_spec(make_options *o, model_spec *m, const preset **p) {
    *m = (model_spec){0};
    *p = NULL;
    if (o->preset_s && !(*p = make_apply_preset(o, m))) return false;
    if (o->arch_s && !(m->arch = arch_find(o->arch_s))) {
        fprintf(stderr, "larder make-model: unknown --arch '%s' (%s)\n", o->arch_s, o->arch_list);
        return false;
    }
    const char *missing = make_missing_option(o, *p);
    if (missing) {
        fprintf(stderr, "larder make-model: %s is required (see --help)\n", missing);
        return false;
    }
    make_apply_flags(o, *p, m);
    for (size_t i = 0; i < sizeof TYPE_CHOICES / sizeof TYPE_CHOICES[0]; i++)
        if (strcmp(TYPE_CHOICES[i].name, o->type_s) == 0) m->type = &TYPE_CHOICES[i];
    if (!m->type) {
        fprintf(stderr, "larder make-model: unknown --type '%s' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m)\n", o->type_s);
        return false;
    }
    const char *bad = make_shape_error(m);
    if (bad) {
        fprintf(stderr, "larder make-model: %s\n", bad);
        return false;
    }
    return true;
}

/* The vocabulary file at path, with its token count in *n_vocab; NULL with
 * err when it does not open or holds no token list. */
static gguf_file *make_open_vocab(const char *path, int64_t *n_vocab, larder_error *err) {
    gguf_file *vocab = gguf_open(path, err);
    if (!vocab) return NULL;
    uint32_t et;
    uint64_t n = 0;
    if (!gguf_get_array_info(vocab, "tokenizer.ggml.tokens", &et, &n) || et != GGUF_TYPE_STRING || n == 0 ||
        n > INT32_MAX) {
        gguf_close(vocab);
        error_set(err, ERR_FORMAT, "no tokenizer.ggml.tokens string array (not a vocabulary file)");
        return NULL;
    }
    *n_vocab = (int64_t)n;
    return vocab;
}

/* Every tensor of tl registered with w, filled at write time; quantized
 * matrices first get their block pool (built once per type and std). */
static int make_add_tensors(gguf_writer *w, tensor_list *tl, pool_set *pools, uint64_t seed, larder_error *err) {
    for (int i = 0; i < tl->n; i++) {
        tensor_gen *t = &tl->items[i];
        if (t->kind == KIND_MATRIX && t->type != TYPE_F32 && t->type != TYPE_F16 && t->type != TYPE_BF16) {
            t->pool = pool_get(pools, t->type, t->std, seed, err);
            if (!t->pool) return -1;
        }
    }
    for (int i = 0; i < tl->n; i++) {
        tensor_gen *t = &tl->items[i];
        if (gguf_writer_add_tensor_fill(w, t->name, t->type, t->n_dims, t->ne, fill_tensor, t, err) != 0) return -1;
    }
    return 0;
}

/* Writes the model m to o->out, named after name (the preset or the
 * architecture); returns the exit status (1 after printing why). */
static int make_write(const make_options *o, model_spec *m, const char *name) {
    larder_error err = {0};
    int status = 1;
    const char *failed_file = NULL; /* set: the failure is about this file */
    gguf_file *vocab = NULL;
    gguf_writer *w = NULL;
    tensor_list tl = {0};
    pool_set pools = {0};
    char *template_text = NULL;
    size_t template_len = 0;
    double t0 = timing_now_ms();

    if (!(vocab = make_open_vocab(o->vocab_path, &m->n_vocab, &err))) {
        failed_file = o->vocab_path;
        goto fail;
    }
    if (o->template_path && read_whole_file(o->template_path, &template_text, &template_len, &err) != 0) goto fail;
    char full_name[128];
    snprintf(full_name, sizeof full_name, "larder random %s (seed %llu)", name, (unsigned long long)m->seed);
    if (!(w = gguf_writer_create(&err)) ||
        set_metadata(w, m, vocab, template_text ? template_text : CHATML_TEMPLATE,
                     template_text ? template_len : strlen(CHATML_TEMPLATE), full_name, &err) != 0 ||
        build_tensors(m, &tl, &err) != 0 || make_add_tensors(w, &tl, &pools, m->seed, &err) != 0)
        goto fail;
    if (gguf_writer_write(w, o->out, &err) != 0) {
        failed_file = o->out;
        goto fail;
    }
    if (!o->quiet)
        printf("wrote %s: %s %s, %lld layers, dim %lld, vocab %lld, %d tensors, %.1f s\n", o->out, m->arch->name,
               m->type->name, (long long)m->layers, (long long)m->dim, (long long)m->n_vocab, tl.n,
               (timing_now_ms() - t0) / 1000.0);
    status = 0;
    goto cleanup;

fail:
    if (failed_file) fprintf(stderr, "larder: %s: %s\n", failed_file, err.message);
    else fprintf(stderr, "larder make-model: %s\n", err.message);
cleanup:
    pool_set_free(&pools);
    free(tl.items);
    free(template_text);
    gguf_writer_free(w);
    gguf_close(vocab);
    return status;
}

int cmd_make_model(int argc, char **argv) {
    make_options o;
    int rc;
    if (!make_parse_options(argc, argv, &o, &rc)) return rc;
    model_spec m;
    const preset *p;
    if (!make_resolve_spec(&o, &m, &p)) return 1;
    return make_write(&o, &m, p ? p->name : m.arch->name);
}
