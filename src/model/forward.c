/*
 * forward.c — llama-family transformer over a batch of tokens, top to
 * bottom as in llama2.c, with architecture differences (model/arch.h) checked
 * at their step (biases, Q/K norm per head or whole, NEOX rope). Every op runs on
 * the backend, on buffers in its memory, with the uploaded weights (`dev`).
 *
 * Shapes (n = tokens in the batch, H = heads, Hkv = kv heads, D = head size):
 *   x   (n, dim)       residual stream
 *   xb  (n, dim)       normed input / projection output
 *   q   (n, H·D)  k, v (n, Hkv·D)  att (n, H·D)
 *   hb, hb2 (n, ff)    feed-forward gate / up (dense layers)
 *   router (n, E)      MoE router logits; moe_ids, moe_w (n, k) the chosen
 *                      experts and their weights; moe_out (n, dim)
 *   logits (n_out, n_vocab) rows of the tokens that want them
 */
#include "model/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct forward_ctx {
    const model *m;
    kv_pool *pool;
    backend *be;
    /* activations, in backend buffers */
    int32_t cap;               /* tokens the activation buffers hold */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
    float *router, *moe_w, *moe_out;  /* MoE models only */
    int32_t *moe_ids;
    int64_t *expert_counts;    /* forward_ctx_count_experts; NULL: off */
    int32_t *ids_host;         /* (cap * n_expert_used) the chosen ids read back for the counts */
    int32_t cap_out;           /* logit rows the logits buffer holds */
    float *logits;
    /* the step's batch descriptor, built on the host (see fill_batch) */
    int32_t *tokens, *pos, *seq, *out_rows; /* (cap) each */
    const kv_seq **seqs;       /* (cap) distinct sequences of the batch */
    int32_t *keep, *window;    /* (cap) per sequence */
    uint32_t *page_table;      /* (cap_cells) */
    int64_t cap_cells;
};

forward_ctx *forward_ctx_create(const model *m, kv_pool *pool, backend *be, larder_error *err) {
    const kv_pool_config *c = kv_pool_get_config(pool);
    if (c->n_layers != m->hp.n_layers || c->n_kv_heads != m->hp.n_kv_heads || c->head_dim != m->hp.head_dim) {
        error_set(err, ERR_INVALID, "KV pool geometry (%d layers, %d kv heads, head %d) does not match the model",
                  c->n_layers, c->n_kv_heads, c->head_dim);
        return NULL;
    }
    if (kv_pool_backend(pool) != be || !m->tok_embd.dev) {
        error_set(err, ERR_INVALID, "the model and the KV pool must be on the forward pass's backend");
        return NULL;
    }
    forward_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    ctx->m = m;
    ctx->pool = pool;
    ctx->be = be;
    return ctx;
}

static void free_activations(forward_ctx *c) {
    float **bufs[] = {&c->x, &c->xb, &c->q, &c->k, &c->v, &c->att, &c->hb, &c->hb2, &c->router, &c->moe_w, &c->moe_out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        backend_buffer_free(c->be, *bufs[i]);
        *bufs[i] = NULL;
    }
    backend_buffer_free(c->be, c->moe_ids);
    c->moe_ids = NULL;
    free(c->ids_host);
    c->ids_host = NULL;
    free(c->tokens), free(c->pos), free(c->seq), free(c->out_rows), free(c->seqs), free(c->keep), free(c->window);
    c->tokens = c->pos = c->seq = c->out_rows = c->keep = c->window = NULL;
    c->seqs = NULL;
    c->cap = 0;
}

void forward_ctx_free(forward_ctx *c) {
    if (!c) return;
    free_activations(c);
    backend_buffer_free(c->be, c->logits);
    free(c->page_table);
    free(c);
}

/* Activation buffers and descriptor arrays for n tokens. */
static int grow(forward_ctx *c, int32_t n, larder_error *err) {
    if (n <= c->cap) return 0;
    const model_hparams *hp = &c->m->hp;
    int32_t cap = c->cap ? c->cap : 1;
    while (cap < n) cap = cap > FORWARD_MAX_BATCH_TOKENS / 2 ? FORWARD_MAX_BATCH_TOKENS : cap * 2;
    free_activations(c);
    size_t nt = (size_t)cap, f = sizeof(float), qw = (size_t)hp->n_heads * hp->head_dim,
           kw = (size_t)hp->n_kv_heads * hp->head_dim;
    const bool moe = hp->arch->ffn == ARCH_FFN_MOE;
    size_t ff = moe ? 0 : (size_t)hp->n_ff, E = moe ? (size_t)hp->n_expert : 0, K = moe ? (size_t)hp->n_expert_used : 0;
    struct { float **p; size_t bytes; } bufs[] = {
        {&c->x, nt * hp->dim * f}, {&c->xb, nt * hp->dim * f}, {&c->q, nt * qw * f},     {&c->att, nt * qw * f},
        {&c->k, nt * kw * f},      {&c->v, nt * kw * f},       {&c->hb, nt * ff * f},    {&c->hb2, nt * ff * f},
        {&c->router, nt * E * f},  {&c->moe_w, nt * K * f},    {&c->moe_out, moe ? nt * hp->dim * f : 0},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i].bytes && !(*bufs[i].p = backend_buffer_alloc(c->be, bufs[i].bytes, err))) goto fail;
    if (moe && !(c->moe_ids = backend_buffer_alloc(c->be, nt * K * sizeof(int32_t), err))) goto fail;
    c->tokens = malloc(nt * sizeof *c->tokens);
    c->pos = malloc(nt * sizeof *c->pos);
    c->seq = malloc(nt * sizeof *c->seq);
    c->out_rows = malloc(nt * sizeof *c->out_rows);
    c->seqs = malloc(nt * sizeof *c->seqs);
    c->keep = malloc(nt * sizeof *c->keep);
    c->window = malloc(nt * sizeof *c->window);
    if (!c->tokens || !c->pos || !c->seq || !c->out_rows || !c->seqs || !c->keep || !c->window) {
        error_set(err, ERR_NOMEM, "out of memory for a batch of %d tokens", n);
        goto fail;
    }
    c->cap = cap;
    return 0;
fail:
    free_activations(c);
    return -1;
}

/*
 * The step's batch descriptor from the tokens: each distinct sequence gets
 * a row of the page-table matrix (n_seqs, max_pages), each token its row
 * index; tokens wanting logits are listed in order. Checks ids, positions
 * and that every position has a page.
 */
static int fill_batch(forward_ctx *c, const forward_token *tok, int32_t n, backend_batch *b, larder_error *err) {
    const model_hparams *hp = &c->m->hp;
    const int32_t P = kv_pool_get_config(c->pool)->page_tokens;
    int32_t n_seqs = 0, max_pages = 0, n_out = 0;
    for (int32_t t = 0; t < n; t++) {
        const kv_seq *s = tok[t].kv.seq;
        int32_t pos = tok[t].kv.pos;
        if (tok[t].token < 0 || tok[t].token >= hp->n_vocab)
            return error_set(err, ERR_INVALID, "token id %d out of range [0, %d)", tok[t].token, hp->n_vocab);
        if (!s || pos < 0 || pos / P >= s->n_pages || s->pages[pos / P] == KV_SEQ_NO_PAGE)
            return error_set(err, ERR_INVALID, "token %d: position %d has no page in its sequence", t, pos);
        if (s->keep_tokens < 0 || s->window_tokens < 0)
            return error_set(err, ERR_INVALID, "token %d: negative window", t);
        int32_t si = n_seqs - 1; /* tokens of one sequence usually come together: try the last first */
        if (si < 0 || c->seqs[si] != s)
            for (si = 0; si < n_seqs && c->seqs[si] != s; si++) {}
        if (si == n_seqs) {
            c->seqs[n_seqs] = s;
            c->keep[n_seqs] = s->keep_tokens;
            c->window[n_seqs] = s->window_tokens;
            if (s->n_pages > max_pages) max_pages = s->n_pages;
            n_seqs++;
        }
        c->tokens[t] = tok[t].token;
        c->pos[t] = pos;
        c->seq[t] = si;
        if (tok[t].want_logits) c->out_rows[n_out++] = t;
    }
    int64_t cells = (int64_t)n_seqs * max_pages;
    if (cells > c->cap_cells) {
        uint32_t *pt = realloc(c->page_table, (size_t)cells * sizeof *pt);
        if (!pt) return error_set(err, ERR_NOMEM, "out of memory for the page table of a batch");
        c->page_table = pt;
        c->cap_cells = cells;
    }
    for (int32_t si = 0; si < n_seqs; si++) {
        uint32_t *row = c->page_table + (int64_t)si * max_pages;
        memcpy(row, c->seqs[si]->pages, (size_t)c->seqs[si]->n_pages * sizeof *row);
        for (int32_t i = c->seqs[si]->n_pages; i < max_pages; i++) row[i] = BACKEND_NO_PAGE;
    }
    *b = (backend_batch){.n_tokens = n, .tokens = c->tokens, .pos = c->pos, .seq = c->seq, .n_seqs = n_seqs,
                         .max_pages = max_pages, .page_table = c->page_table, .keep_tokens = c->keep,
                         .window_tokens = c->window, .n_out = n_out, .out_rows = c->out_rows};
    return 0;
}

/* A logits buffer for n_out rows. */
static int grow_logits(forward_ctx *c, int32_t n_out, larder_error *err) {
    if (n_out <= c->cap_out) return 0;
    backend_buffer_free(c->be, c->logits);
    c->cap_out = 0;
    c->logits = backend_buffer_alloc(c->be, (size_t)n_out * (size_t)c->m->hp.n_vocab * sizeof(float), err);
    if (!c->logits) return -1;
    c->cap_out = n_out;
    return 0;
}

/* A matrix of the model as backend_matmul_multi takes it, writing y. */
static backend_matmul_weight mat(const model_weight *w, float *y) {
    return (backend_matmul_weight){w->dev, w->type, w->rows, y};
}

/* The attention block: x += Wo · attention(rope(norm(x) · W{q,k,v})). */
static int attention_block(forward_ctx *c, int32_t il, int32_t n, larder_error *err) {
    const model_hparams *hp = &c->m->hp;
    const model_layer *l = &c->m->layers[il];
    backend *be = c->be;
    backend_kv *kv = kv_pool_memory(c->pool);
    const int64_t dim = hp->dim, H = hp->n_heads, Hkv = hp->n_kv_heads, D = hp->head_dim;
    const float eps = hp->rms_eps, scale = 1.0f / sqrtf((float)D);
    backend_matmul_weight qkv[3] = {mat(&l->wq, c->q), mat(&l->wk, c->k), mat(&l->wv, c->v)};
    if (backend_rmsnorm(be, c->x, l->attn_norm.dev, c->xb, n, dim, eps, err) ||     /* xb = rmsnorm(x) * w */
        backend_matmul_multi(be, qkv, 3, dim, c->xb, n, err))                      /* q,k,v = xb · W{q,k,v}ᵀ */
        return -1;
    if ((l->bq.dev && backend_add_bias(be, c->q, l->bq.dev, n, H * D, err)) ||    /* qwen2: + biases (each */
        (l->bk.dev && backend_add_bias(be, c->k, l->bk.dev, n, Hkv * D, err)) ||  /* optional on its own in */
        (l->bv.dev && backend_add_bias(be, c->v, l->bv.dev, n, Hkv * D, err)))    /* llama fine-tunes) */
        return -1;
    /* RMS norm of q, k: per head (qwen3) or over each token's whole q / k row (MiniMax-M2) */
    const bool whole = hp->arch->qk_norm == ARCH_QK_NORM_WHOLE;
    const int64_t q_len = whole ? H * D : D, k_len = whole ? Hkv * D : D; /* values under one norm */
    if (l->q_norm.dev && (backend_rmsnorm(be, c->q, l->q_norm.dev, c->q, n * H * D / q_len, q_len, eps, err) ||
                          backend_rmsnorm(be, c->k, l->k_norm.dev, c->k, n * Hkv * D / k_len, k_len, eps, err)))
        return -1;
    const backend_rope_freqs rope = {c->m->rope_theta_scale, hp->rope_freq_scale, c->m->rope_freqs.dev};
    const bool neox = hp->arch->rope == ARCH_ROPE_NEOX; /* pairs (i, i + n_rot/2), not (2i, 2i+1) */
    if (backend_rope(be, c->q, (int32_t)H, (int32_t)D, hp->n_rot, &rope, neox, err) ||
        backend_rope(be, c->k, (int32_t)Hkv, (int32_t)D, hp->n_rot, &rope, neox, err) ||
        backend_kv_store(be, kv, il, c->k, c->v, err) ||                             /* K, V -> pages */
        backend_attention(be, kv, il, c->q, (int32_t)H, scale, c->att, err) ||     /* att = softmax(q·Kᵀ/√D)·V */
        backend_matmul(be, l->wo.dev, l->wo.type, l->wo.rows, l->wo.cols, c->att, n, c->xb, err) || /* xb = att · Woᵀ */
        backend_add(be, c->x, c->xb, n * dim, err))                                  /* x += xb */
        return -1;
    return 0;
}

/* The dense feed-forward block: x += Wdown · (silu(xb · Wgateᵀ) * (xb · Wupᵀ)), xb = norm(x). */
static int ffn_dense(forward_ctx *c, const model_layer *l, int32_t n, larder_error *err) {
    const model_hparams *hp = &c->m->hp;
    backend *be = c->be;
    backend_matmul_weight gate_up[2] = {mat(&l->w_gate, c->hb), mat(&l->w_up, c->hb2)};
    if (backend_matmul_multi(be, gate_up, 2, hp->dim, c->xb, n, err) ||                 /* gate, up = xb · W{gate,up}ᵀ */
        backend_silu_mul(be, c->hb, c->hb2, (int64_t)n * hp->n_ff, err) ||              /* hb = silu(gate) * up */
        backend_matmul(be, l->w_down.dev, l->w_down.type, l->w_down.rows, l->w_down.cols, c->hb, n, c->xb, err) ||
        backend_add(be, c->x, c->xb, (int64_t)n * hp->dim, err))                        /* x += hb · Wdownᵀ */
        return -1;
    return 0;
}

/* The statistics hook: the step's chosen experts of layer il into the counts. */
static int count_experts(forward_ctx *c, int32_t il, int32_t n, larder_error *err) {
    const model_hparams *hp = &c->m->hp;
    size_t n_ids = (size_t)n * (size_t)hp->n_expert_used;
    if (!c->ids_host && !(c->ids_host = malloc((size_t)c->cap * (size_t)hp->n_expert_used * sizeof *c->ids_host)))
        return error_set(err, ERR_NOMEM, "out of memory for expert statistics");
    if (backend_buffer_read(c->be, c->ids_host, c->moe_ids, n_ids * sizeof *c->ids_host, err)) return -1;
    for (size_t i = 0; i < n_ids; i++)
        if (c->ids_host[i] >= 0 && c->ids_host[i] < hp->n_expert) c->expert_counts[(int64_t)il * hp->n_expert + c->ids_host[i]]++;
    return 0;
}

void forward_ctx_count_experts(forward_ctx *c, int64_t *counts) { c->expert_counts = counts; }

/* The mixture-of-experts block (llama.cpp's build_moe_ffn for these
 * architectures): router logits = xb · Wrouterᵀ; each token's k experts
 * chosen on their scores (softmax or sigmoid, plus the selection bias) and
 * weighted by the chosen scores renormalised; x += Σ_j w_j · expert_j(xb),
 * each expert a SwiGLU FFN like ffn_dense. */
static int ffn_moe(forward_ctx *c, int32_t il, int32_t n, larder_error *err) {
    const model_hparams *hp = &c->m->hp;
    const model_layer *l = &c->m->layers[il];
    backend *be = c->be;
    const backend_moe_experts ex = {
        .gate = l->gate_exps.dev, .up = l->up_exps.dev, .down = l->down_exps.dev,
        .gate_type = l->gate_exps.type, .up_type = l->up_exps.type, .down_type = l->down_exps.type,
        .n_expert = hp->n_expert, .dim = hp->dim, .ff = hp->n_ff_exp,
    };
    const backend_moe_gating gating = hp->gating == ARCH_GATING_SIGMOID ? BACKEND_MOE_SIGMOID : BACKEND_MOE_SOFTMAX;
    if (backend_matmul(be, l->router.dev, l->router.type, l->router.rows, l->router.cols, c->xb, n, c->router, err) ||
        backend_moe_route(be, c->router, l->exp_probs_b.dev, n, hp->n_expert, hp->n_expert_used, gating, c->moe_ids,
                          c->moe_w, err) ||
        (c->expert_counts && count_experts(c, il, n, err)) ||
        backend_moe_ffn(be, &ex, c->xb, c->moe_ids, c->moe_w, n, hp->n_expert_used, c->moe_out, err) ||
        backend_add(be, c->x, c->moe_out, (int64_t)n * hp->dim, err))
        return -1;
    return 0;
}

/* The feed-forward block of a layer: xb = rmsnorm(x) * w, then the FFN of
 * the architecture's kind. */
static int ffn_block(forward_ctx *c, int32_t il, int32_t n, larder_error *err) {
    const model_layer *l = &c->m->layers[il];
    if (backend_rmsnorm(c->be, c->x, l->ffn_norm.dev, c->xb, n, c->m->hp.dim, c->m->hp.rms_eps, err)) return -1;
    switch (c->m->hp.arch->ffn) {
    case ARCH_FFN_DENSE: return ffn_dense(c, l, n, err);
    case ARCH_FFN_MOE: return ffn_moe(c, il, n, err);
    }
    return error_set(err, ERR_UNSUPPORTED, "layer %d: feed-forward kind %d is not implemented", il, (int)c->m->hp.arch->ffn);
}

int forward_batch(forward_ctx *c, const forward_token *tok, int32_t n, float *logits, larder_error *err) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    backend *be = c->be;
    if (n < 0 || n > FORWARD_MAX_BATCH_TOKENS)
        return error_set(err, ERR_INVALID, "batch of %d tokens (at most %d)", n, FORWARD_MAX_BATCH_TOKENS);
    if (n == 0) return 0;
    if (grow(c, n, err)) return -1;
    backend_batch batch;
    if (fill_batch(c, tok, n, &batch, err) || backend_batch_set(be, &batch, err)) return -1;

    /* x = token embeddings */
    if (backend_get_rows(be, m->tok_embd.dev, m->tok_embd.type, hp->dim, c->x, err)) return -1;
    for (int32_t il = 0; il < hp->n_layers; il++)
        if (attention_block(c, il, n, err) || ffn_block(c, il, n, err)) return -1;

    /* final norm and logits, only for the tokens that want them: their rows
     * gathered into xb (n_out, dim), then logits = xb · Woutᵀ */
    if (batch.n_out > 0) {
        const model_weight *w = &m->output;
        if (grow_logits(c, batch.n_out, err) || backend_get_out_rows(be, c->x, c->xb, hp->dim, err) ||
            backend_rmsnorm(be, c->xb, m->output_norm.dev, c->xb, batch.n_out, hp->dim, hp->rms_eps, err) ||
            backend_matmul(be, w->dev, w->type, w->rows, w->cols, c->xb, batch.n_out, c->logits, err))
            return -1;
    }
    if (backend_sync(be, err)) return -1;
    if (batch.n_out > 0 &&
        backend_buffer_read(be, logits, c->logits, (size_t)batch.n_out * (size_t)hp->n_vocab * sizeof(float), err))
        return -1;
    return 0;
}

int forward_batch_fn(void *ctx, const forward_token *tokens, int32_t n, float *logits, larder_error *err) {
    return forward_batch(ctx, tokens, n, logits, err);
}
