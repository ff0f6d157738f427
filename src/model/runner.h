/*
 * runner.h — a model on a backend with its KV page pool and forward
 * context: what every command that runs a model holds (the server's engine
 * takes its pool and forward function; the CLI commands — generate, logits,
 * bench, perplexity — and tests evaluate sequences with runner_eval).
 *
 *   runner *r = runner_create(m, be, &(runner_config){.kv_type = TYPE_F16,
 *                             .max_seq_tokens = 4096}, err);
 *   kv_seq s; kv_seq_init(&s);
 *   runner_eval(r, &s, prompt, n, false, logits, err);   // prefill
 *   runner_eval(r, &s, &next, 1, false, logits, err);    // a decode step
 *   runner_eval_seqs(r, seqs, next, n, logits, err);      // one step of n sequences
 *   kv_seq_release(&s, r->pool);
 */
#ifndef LARDER_MODEL_RUNNER_H
#define LARDER_MODEL_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/error.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "model/forward.h"
#include "model/model.h"

/* Tokens per KV page when the config says 0. */
#define RUNNER_DEFAULT_PAGE_TOKENS 16

typedef struct runner_config {
    uint32_t kv_type;          /* any kv_pool_type_supported type */
    int32_t page_tokens;       /* tokens per page (0: RUNNER_DEFAULT_PAGE_TOKENS) */
    size_t kv_memory_bytes;    /* the pool's budget; 0: room for one sequence of max_seq_tokens */
    int32_t max_seq_tokens;    /* runner_eval refuses to grow a sequence beyond this (0: no limit) */
} runner_config;

typedef struct runner {
    const model *m;
    backend *be;               /* not owned */
    kv_pool *pool;
    forward_ctx *fw;
    int32_t max_seq_tokens;
    forward_token *toks;       /* (tok_cap) */
    int32_t tok_cap;
} runner;

/* m must be uploaded to be (model_upload). */
runner *runner_create(const model *m, backend *be, const runner_config *cfg, larder_error *err);
void runner_free(runner *r);

/* Appends n tokens to seq (at positions seq->n_tokens..) and computes them
 * in one batch. all_logits: n rows of n_vocab logits; else only the last
 * token's row (logits may be NULL to ask for none). ERR_LIMIT past
 * max_seq_tokens, ERR_NOMEM when the pool is full. */
int runner_eval(runner *r, kv_seq *seq, const int32_t *tokens, int32_t n, bool all_logits, float *logits,
                larder_error *err);

/* One decode step of n_seqs DISTINCT sequences in ONE forward pass: appends
 * tokens[i] to seqs[i] (at its position seqs[i]->n_tokens). logits: n_seqs
 * rows of n_vocab, row i for seqs[i] (NULL: none asked for). Every sequence
 * is checked against max_seq_tokens before anything runs; ERR_NOMEM when
 * the pool is full (sequences already prepared keep their new pages, none
 * advances). */
int runner_eval_seqs(runner *r, kv_seq *const *seqs, const int32_t *tokens, int32_t n_seqs, float *logits,
                     larder_error *err);

#endif
