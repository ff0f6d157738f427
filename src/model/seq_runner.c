/*
 * seq_runner.c — a single sequence on its own pool: prepare pages, build
 * the forward_token array, run, advance.
 */
#include "model/seq_runner.h"

#include <stdlib.h>

#include "tensor/dtype.h"

seq_runner *seq_runner_create(const model *m, int32_t max_tokens, int n_threads, uint32_t kv_type,
                              larder_error *err) {
    if (max_tokens < 1) {
        error_set(err, ERR_INVALID, "max_tokens must be >= 1");
        return NULL;
    }
    seq_runner *r = calloc(1, sizeof *r);
    if (!r) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->m = m;
    r->max_tokens = max_tokens;
    kv_seq_init(&r->seq);
    size_t page_bytes = model_kv_bytes_per_token(m, kv_type) * SEQ_RUNNER_PAGE_TOKENS;
    size_t pages = (size_t)(max_tokens + SEQ_RUNNER_PAGE_TOKENS - 1) / SEQ_RUNNER_PAGE_TOKENS;
    kv_pool_config c = {.n_layers = m->hp.n_layers, .n_kv_heads = m->hp.n_kv_heads, .head_dim = m->hp.head_dim,
                        .page_tokens = SEQ_RUNNER_PAGE_TOKENS, .kv_type = kv_type,
                        .budget_bytes = pages * (page_bytes + 65536), .low_water_pages = -1};
    r->pool = kv_pool_create(&c, err);
    if (!r->pool) goto fail;
    r->fw = forward_ctx_create(m, r->pool, n_threads, err);
    if (!r->fw) goto fail;
    return r;
fail:
    seq_runner_free(r);
    return NULL;
}

void seq_runner_free(seq_runner *r) {
    if (!r) return;
    if (r->pool) kv_seq_release(&r->seq, r->pool);
    forward_ctx_free(r->fw);
    kv_pool_free(r->pool);
    free(r->toks);
    free(r);
}

void seq_runner_reset(seq_runner *r) { kv_seq_release(&r->seq, r->pool); }

int seq_runner_eval(seq_runner *r, const int32_t *tokens, int32_t n, bool all_logits, float *logits,
                    larder_error *err) {
    if (n < 0 || r->seq.n_tokens + (int64_t)n > r->max_tokens)
        return error_set(err, ERR_LIMIT, "%d tokens exceed the sequence limit of %d", r->seq.n_tokens + n,
                         r->max_tokens);
    if (n > r->tok_cap) {
        forward_token *p = realloc(r->toks, (size_t)n * sizeof *p);
        if (!p) return error_set(err, ERR_NOMEM, "out of memory");
        r->toks = p;
        r->tok_cap = n;
    }
    if (kv_seq_prepare(&r->seq, r->pool, n, err)) return -1;
    for (int32_t i = 0; i < n; i++)
        r->toks[i] = (forward_token){.token = tokens[i], .pos = r->seq.n_tokens + i, .pages = r->seq.pages,
                                     .want_logits = logits && (all_logits || i == n - 1)};
    if (forward_batch(r->fw, r->toks, n, logits, err)) return -1;
    kv_seq_advance(&r->seq, n);
    return 0;
}
