/*
 * forward.c — llama-family transformer over a batch of tokens, top to
 * bottom as in llama2.c, with architecture differences as flags checked at
 * their step (qwen2 biases, qwen3 Q/K norm, NEOX rope).
 *
 * Shapes (n = tokens in the batch, H = heads, Hkv = kv heads, D = head size):
 *   x   (n, dim)       residual stream
 *   xb  (n, dim)       normed input / projection output
 *   q   (n, H·D)  k, v (n, Hkv·D)  att (n, H·D)
 *   hb, hb2 (n, ff)    feed-forward gate / up
 */
#include "model/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

struct forward_ctx {
    const model *m;
    kv_pool *pool;
    backend *be;
    int32_t cap;               /* tokens the scratch holds */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
    int32_t *positions;        /* (cap) */
    backend_kv_ref *refs;      /* (cap) */
};

forward_ctx *forward_ctx_create(const model *m, kv_pool *pool, int n_threads, larder_error *err) {
    const kv_pool_config *c = kv_pool_get_config(pool);
    if (c->n_layers != m->hp.n_layers || c->n_kv_heads != m->hp.n_kv_heads || c->head_dim != m->hp.head_dim) {
        error_set(err, ERR_INVALID, "KV pool geometry (%d layers, %d kv heads, head %d) does not match the model",
                  c->n_layers, c->n_kv_heads, c->head_dim);
        return NULL;
    }
    forward_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    ctx->m = m;
    ctx->pool = pool;
    ctx->be = backend_cpu_create(n_threads, err);
    if (!ctx->be) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void free_scratch(forward_ctx *c) {
    free(c->x), free(c->xb), free(c->q), free(c->k), free(c->v), free(c->att), free(c->hb), free(c->hb2);
    free(c->positions), free(c->refs);
    c->x = c->xb = c->q = c->k = c->v = c->att = c->hb = c->hb2 = NULL;
    c->positions = NULL;
    c->refs = NULL;
    c->cap = 0;
}

void forward_ctx_free(forward_ctx *c) {
    if (!c) return;
    free_scratch(c);
    backend_free(c->be);
    free(c);
}

static int grow(forward_ctx *c, int32_t n, larder_error *err) {
    if (n <= c->cap) return 0;
    const model_hparams *hp = &c->m->hp;
    int32_t cap = c->cap ? c->cap : 1;
    while (cap < n) cap = cap > FORWARD_MAX_BATCH_TOKENS / 2 ? FORWARD_MAX_BATCH_TOKENS : cap * 2;
    free_scratch(c);
    size_t nt = (size_t)cap, qw = (size_t)hp->n_heads * hp->head_dim, kw = (size_t)hp->n_kv_heads * hp->head_dim;
    c->x = malloc(nt * hp->dim * sizeof(float));
    c->xb = malloc(nt * hp->dim * sizeof(float));
    c->q = malloc(nt * qw * sizeof(float));
    c->att = malloc(nt * qw * sizeof(float));
    c->k = malloc(nt * kw * sizeof(float));
    c->v = malloc(nt * kw * sizeof(float));
    c->hb = malloc(nt * hp->n_ff * sizeof(float));
    c->hb2 = malloc(nt * hp->n_ff * sizeof(float));
    c->positions = malloc(nt * sizeof *c->positions);
    c->refs = malloc(nt * sizeof *c->refs);
    if (!c->x || !c->xb || !c->q || !c->att || !c->k || !c->v || !c->hb || !c->hb2 || !c->positions || !c->refs) {
        free_scratch(c);
        return error_set(err, ERR_NOMEM, "out of memory for a batch of %d tokens", n);
    }
    c->cap = cap;
    return 0;
}

#define MATMUL(w, in, n, out) backend_matmul(be, (w).data, (w).type, (w).rows, (w).cols, (in), (n), (out), err)

int forward_batch(forward_ctx *c, const forward_token *tok, int32_t n, float *logits, larder_error *err) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    backend *be = c->be;
    if (n < 0 || n > FORWARD_MAX_BATCH_TOKENS)
        return error_set(err, ERR_INVALID, "batch of %d tokens (at most %d)", n, FORWARD_MAX_BATCH_TOKENS);
    if (n == 0) return 0;
    int32_t P = kv_pool_get_config(c->pool)->page_tokens;
    (void)P;
    for (int32_t t = 0; t < n; t++) {
        if (tok[t].token < 0 || tok[t].token >= hp->n_vocab)
            return error_set(err, ERR_INVALID, "token id %d out of range [0, %d)", tok[t].token, hp->n_vocab);
        if (tok[t].pos < 0 || !tok[t].pages)
            return error_set(err, ERR_INVALID, "token %d: bad position %d or no page table", t, tok[t].pos);
        if (tok[t].keep_tokens < 0 || tok[t].window_tokens < 0)
            return error_set(err, ERR_INVALID, "token %d: negative window", t);
    }
    if (grow(c, n, err)) return -1;
    const int64_t dim = hp->dim, H = hp->n_heads, Hkv = hp->n_kv_heads, D = hp->head_dim, ff = hp->n_ff;
    const float scale = 1.0f / sqrtf((float)D);
    for (int32_t t = 0; t < n; t++) {
        c->positions[t] = tok[t].pos;
        c->refs[t].pos = tok[t].pos;
        c->refs[t].pages = tok[t].pages;
        c->refs[t].keep_tokens = tok[t].keep_tokens;
        c->refs[t].window_tokens = tok[t].window_tokens;
    }

    /* x = token embeddings */
    for (int32_t t = 0; t < n; t++) backend_get_row(m->tok_embd.data, m->tok_embd.type, dim, tok[t].token, c->x + t * dim);

    for (int32_t il = 0; il < hp->n_layers; il++) {
        const model_layer *l = &m->layers[il];
        /* ---- attention block */
        backend_rmsnorm(be, c->x, l->attn_norm, c->xb, n, dim, hp->rms_eps);   /* xb = rmsnorm(x) * w */
        backend_matmul_weight qkv[3] = {{l->wq.data, l->wq.type, l->wq.rows, c->q},
                                        {l->wk.data, l->wk.type, l->wk.rows, c->k},
                                        {l->wv.data, l->wv.type, l->wv.rows, c->v}};
        if (backend_matmul_multi(be, qkv, 3, dim, c->xb, n, err)) return -1;    /* q,k,v = xb · W{q,k,v}ᵀ */
        if (l->bq) backend_add_bias(be, c->q, l->bq, n, H * D);                 /* qwen2: + biases */
        if (l->bk) backend_add_bias(be, c->k, l->bk, n, Hkv * D);
        if (l->bv) backend_add_bias(be, c->v, l->bv, n, Hkv * D);
        if (l->q_norm) backend_rmsnorm(be, c->q, l->q_norm, c->q, n * H, D, hp->rms_eps);     /* qwen3: per-head */
        if (l->k_norm) backend_rmsnorm(be, c->k, l->k_norm, c->k, n * Hkv, D, hp->rms_eps);   /* RMS norm of q, k */
        backend_rope(be, c->q, c->positions, n, (int32_t)H, (int32_t)D, hp->n_rot, m->rope_inv_freq, hp->rope_neox);
        backend_rope(be, c->k, c->positions, n, (int32_t)Hkv, (int32_t)D, hp->n_rot, m->rope_inv_freq, hp->rope_neox);
        if (backend_kv_store(be, c->pool, il, c->k, c->v, c->refs, n, err)) return -1; /* K, V -> pages */
        if (backend_attention(be, c->pool, il, c->q, c->refs, n, (int32_t)H, scale, c->att, err))
            return -1;                                                          /* att = softmax(q·Kᵀ/√D)·V */
        if (MATMUL(l->wo, c->att, n, c->xb)) return -1;                          /* xb = att · Woᵀ */
        backend_add(be, c->x, c->xb, n * dim);                                  /* x += xb */

        /* ---- feed-forward block */
        backend_rmsnorm(be, c->x, l->ffn_norm, c->xb, n, dim, hp->rms_eps);    /* xb = rmsnorm(x) * w */
        backend_matmul_weight gate_up[2] = {{l->w_gate.data, l->w_gate.type, l->w_gate.rows, c->hb},
                                            {l->w_up.data, l->w_up.type, l->w_up.rows, c->hb2}};
        if (backend_matmul_multi(be, gate_up, 2, dim, c->xb, n, err)) return -1; /* gate, up = xb · W{gate,up}ᵀ */
        backend_silu_mul(be, c->hb, c->hb2, n * ff);                            /* hb = silu(gate) * up */
        if (MATMUL(l->w_down, c->hb, n, c->xb)) return -1;                       /* xb = hb · Wdownᵀ */
        backend_add(be, c->x, c->xb, n * dim);                                  /* x += xb */
    }

    /* final norm and logits, only for the tokens that want them: gather
     * their rows into xb (n_out, dim), then logits = xb · Woutᵀ */
    int32_t n_out = 0;
    for (int32_t t = 0; t < n; t++)
        if (tok[t].want_logits) {
            if (n_out != t) memcpy(c->x + (int64_t)n_out * dim, c->x + (int64_t)t * dim, (size_t)dim * sizeof(float));
            n_out++;
        }
    if (n_out == 0) return 0;
    backend_rmsnorm(be, c->x, m->output_norm, c->xb, n_out, dim, hp->rms_eps);
    return MATMUL(m->output, c->xb, n_out, logits);
}
