/*
 * engine_model.c — engine_model.h over the real model: the KV page pool
 * (src/kv/kv_pool.h) and the batched forward pass (src/model/forward.h).
 *
 * Nothing here computes: it sizes the pool from the model's geometry and the
 * byte budget, and turns the engine's batch items (token, position, page
 * table) into the forward pass's tokens.
 */
#include "engine/engine_model.h"

#include <stdlib.h>
#include <string.h>

#include "kv/kv_pool.h"
#include "model/forward.h"
#include "model/model.h"

struct engine_model {
    const model *m;
    kv_pool *pool;
    forward_ctx *fwd;
    forward_token *tokens;     /* (cap_tokens) scratch for one batch */
    int32_t cap_tokens;
};

engine_model *engine_model_create(const engine_model_config *cfg, larder_error *err) {
    if (!cfg->model) {
        error_set(err, ERR_INVALID, "engine: no model");
        return NULL;
    }
    engine_model *em = calloc(1, sizeof *em);
    if (!em) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    em->m = cfg->model;
    const model_hparams *hp = &cfg->model->hp;
    kv_pool_config pc = {hp->n_layers, hp->n_kv_heads, hp->head_dim, cfg->page_tokens, cfg->kv_type,
                         cfg->kv_memory_bytes, -1};
    em->pool = kv_pool_create(&pc, err);
    if (!em->pool) goto fail;
    em->fwd = forward_ctx_create(cfg->model, em->pool, cfg->n_threads > 0 ? cfg->n_threads : 1, err);
    if (!em->fwd) goto fail;
    em->cap_tokens = cfg->max_batch_tokens > 0 ? cfg->max_batch_tokens : 512;
    em->tokens = malloc((size_t)em->cap_tokens * sizeof *em->tokens);
    if (!em->tokens) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    return em;
fail:
    engine_model_free(em);
    return NULL;
}

void engine_model_free(engine_model *em) {
    if (!em) return;
    forward_ctx_free(em->fwd);
    kv_pool_free(em->pool);
    free(em->tokens);
    free(em);
}

int32_t engine_model_n_vocab(const engine_model *em) { return em->m->hp.n_vocab; }
int32_t engine_model_n_ctx_train(const engine_model *em) { return em->m->hp.n_ctx_train; }

size_t engine_kv_page_bytes(const engine_model *em) { return kv_pool_page_bytes(em->pool); }
int64_t engine_kv_pages_total(const engine_model *em) { return kv_pool_pages_total(em->pool); }
int64_t engine_kv_pages_free(const engine_model *em) { return kv_pool_pages_free(em->pool); }
int engine_kv_page_alloc(engine_model *em, uint32_t *page) { return kv_pool_alloc(em->pool, page, NULL); }
void engine_kv_page_ref(engine_model *em, uint32_t page) { kv_pool_ref(em->pool, page); }
void engine_kv_page_unref(engine_model *em, uint32_t page) { kv_pool_unref(em->pool, page); }
int engine_kv_page_refcount(engine_model *em, uint32_t page) { return kv_pool_refcount(em->pool, page); }
void engine_kv_page_copy(engine_model *em, uint32_t dst, uint32_t src) { kv_pool_page_copy(em->pool, dst, src); }

int engine_model_forward(engine_model *em, const engine_batch_item *items, int32_t n_items, float *logits,
                         larder_error *err) {
    /* Batches larger than the scratch are computed in slices (logit rows stay in order). */
    int32_t done = 0;
    float *out = logits;
    while (done < n_items) {
        int32_t n = n_items - done < em->cap_tokens ? n_items - done : em->cap_tokens;
        int32_t wanted = 0;
        for (int32_t i = 0; i < n; i++) {
            const engine_batch_item *it = &items[done + i];
            em->tokens[i] = (forward_token){.token = it->token, .pos = it->pos, .pages = it->kv->pages,
                                            .want_logits = it->want_logits, .keep_tokens = it->keep_tokens,
                                            .window_tokens = it->window_tokens};
            wanted += it->want_logits;
        }
        if (forward_batch(em->fwd, em->tokens, n, out, err)) return -1;
        out += (size_t)wanted * (size_t)em->m->hp.n_vocab;
        done += n;
    }
    return 0;
}
