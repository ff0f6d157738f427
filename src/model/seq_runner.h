/*
 * seq_runner.h — one sequence over a model, for the CLI commands (logits,
 * bench, perplexity) and tests: a private KV pool sized for max_tokens, a
 * forward context and one page table. eval appends tokens to the sequence.
 */
#ifndef LARDER_MODEL_SEQ_RUNNER_H
#define LARDER_MODEL_SEQ_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "model/forward.h"
#include "model/model.h"

/* Tokens per KV page in seq_runner pools. */
#define SEQ_RUNNER_PAGE_TOKENS 64

typedef struct seq_runner {
    const model *m;
    kv_pool *pool;
    forward_ctx *fw;
    kv_seq seq;
    forward_token *toks;   /* (tok_cap) */
    int32_t tok_cap;
    int32_t max_tokens;
} seq_runner;

/* kv_type: any kv_pool_type_supported type. */
seq_runner *seq_runner_create(const model *m, int32_t max_tokens, int n_threads, uint32_t kv_type,
                              larder_error *err);
void seq_runner_free(seq_runner *r);

/* Appends n tokens at positions seq.n_tokens.. and computes them in one
 * batch. all_logits: n rows of n_vocab logits; else only the last token's
 * row (logits may be NULL to ask for none). */
int seq_runner_eval(seq_runner *r, const int32_t *tokens, int32_t n, bool all_logits, float *logits,
                    larder_error *err);

/* Forgets the sequence (pages go back to the pool). */
void seq_runner_reset(seq_runner *r);

#endif
