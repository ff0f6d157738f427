/*
 * runner.c — the pool sizing rule (one sequence of max_seq_tokens when no
 * budget is given) and runner_eval: prepare pages, build the forward
 * tokens, run, advance.
 */
#include "model/runner.h"

#include <stdlib.h>

runner *runner_create(const model *m, backend *be, const runner_config *cfg, larder_error *err) {
    int32_t P = cfg->page_tokens > 0 ? cfg->page_tokens : RUNNER_DEFAULT_PAGE_TOKENS;
    if (cfg->max_seq_tokens < 0) {
        error_set(err, ERR_INVALID, "runner: negative sequence limit");
        return NULL;
    }
    runner *r = calloc(1, sizeof *r);
    if (!r) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->m = m;
    r->be = be;
    r->max_seq_tokens = cfg->max_seq_tokens;
    size_t budget = cfg->kv_memory_bytes;
    if (budget == 0) { /* one sequence: its pages, each as the backend reserves it */
        size_t page_bytes = model_kv_bytes_per_token(m, cfg->kv_type) * (size_t)P;
        budget = (size_t)((cfg->max_seq_tokens + P - 1) / P) * backend_kv_page_stride(be, page_bytes);
    }
    kv_pool_config c = {.n_layers = m->hp.n_layers, .n_kv_heads = m->hp.n_kv_heads, .head_dim = m->hp.head_dim,
                        .page_tokens = P, .kv_type = cfg->kv_type, .budget_bytes = budget, .low_water_pages = -1};
    r->pool = kv_pool_create(&c, be, err);
    if (!r->pool) goto fail;
    r->fw = forward_ctx_create(m, r->pool, be, err);
    if (!r->fw) goto fail;
    return r;
fail:
    runner_free(r);
    return NULL;
}

void runner_free(runner *r) {
    if (!r) return;
    forward_ctx_free(r->fw);
    kv_pool_free(r->pool);
    free(r->toks);
    free(r);
}

/* r->toks holds at least n tokens. */
static int runner_reserve_tokens(runner *r, int32_t n, larder_error *err) {
    if (n <= r->tok_cap) return 0;
    forward_token *p = realloc(r->toks, (size_t)n * sizeof *p);
    if (!p) return error_set(err, ERR_NOMEM, "out of memory");
    r->toks = p;
    r->tok_cap = n;
    return 0;
}

int runner_eval(runner *r, kv_seq *seq, const int32_t *tokens, int32_t n, bool all_logits, float *logits,
                larder_error *err) {
    if (n < 0 || (r->max_seq_tokens > 0 && seq->n_tokens + (int64_t)n > r->max_seq_tokens))
        return error_set(err, ERR_LIMIT, "%lld tokens exceed the sequence limit of %d", (long long)seq->n_tokens + n,
                         r->max_seq_tokens);
    if (runner_reserve_tokens(r, n, err)) return -1;
    if (kv_seq_prepare(seq, r->pool, n, err)) return -1;
    for (int32_t i = 0; i < n; i++)
        r->toks[i] = (forward_token){.token = tokens[i], .kv = {seq, seq->n_tokens + i},
                                     .want_logits = logits && (all_logits || i == n - 1)};
    if (forward_batch(r->fw, r->toks, n, logits, err)) return -1;
    kv_seq_advance(seq, n);
    return 0;
}

int runner_eval_seqs(runner *r, kv_seq *const *seqs, const int32_t *tokens, int32_t n_seqs, float *logits,
                     larder_error *err) {
    if (n_seqs < 0) return error_set(err, ERR_INVALID, "runner: negative sequence count");
    for (int32_t i = 0; i < n_seqs; i++)
        if (r->max_seq_tokens > 0 && seqs[i]->n_tokens + 1 > (int64_t)r->max_seq_tokens)
            return error_set(err, ERR_LIMIT, "sequence %d: %lld tokens exceed the sequence limit of %d", (int)i,
                             (long long)seqs[i]->n_tokens + 1, r->max_seq_tokens);
    if (runner_reserve_tokens(r, n_seqs, err)) return -1;
    for (int32_t i = 0; i < n_seqs; i++) {
        if (kv_seq_prepare(seqs[i], r->pool, 1, err)) return -1;
        r->toks[i] = (forward_token){.token = tokens[i], .kv = {seqs[i], seqs[i]->n_tokens}, .want_logits = logits != NULL};
    }
    if (forward_batch(r->fw, r->toks, n_seqs, logits, err)) return -1;
    for (int32_t i = 0; i < n_seqs; i++) kv_seq_advance(seqs[i], 1);
    return 0;
}
