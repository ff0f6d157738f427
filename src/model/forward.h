/*
 * forward.h — the batched forward pass: one call computes tokens of SEVERAL
 * sequences at once (the server's continuous batching stands on this).
 *
 * Each token names its sequence by its page table. Its K/V are written to
 * page pos / P, row pos % P, for every layer, and it attends to positions
 * [0, pos] of its own sequence: earlier calls' tokens from the pages, and
 * this batch's tokens of the same sequence (written before attention runs,
 * layer by layer). The caller must have made the pages covering every pos
 * present and writable (kv_seq_prepare) — a shared page is never written.
 *
 * A forward_ctx holds the scratch (grown to the largest batch seen, then
 * reused: a decode step allocates nothing) and the backend's threads. Not
 * thread-safe: one caller at a time.
 */
#ifndef LARDER_MODEL_FORWARD_H
#define LARDER_MODEL_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "kv/kv_pool.h"
#include "model/model.h"

/* Largest batch one call takes (scratch is sized by it; callers split). */
#define FORWARD_MAX_BATCH_TOKENS 65536

typedef struct forward_token {
    int32_t token;          /* id in [0, n_vocab) */
    int32_t pos;            /* position in its sequence, >= 0 */
    const uint32_t *pages;  /* its sequence's page table; covers [0, pos] */
    bool want_logits;       /* write a row of logits for this token */
    int32_t keep_tokens;    /* rotating window (0, 0: none): attend to j < keep_tokens */
    int32_t window_tokens;  /* and pos - window_tokens < j <= pos (backend_kv_ref) */
} forward_token;

typedef struct forward_ctx forward_ctx;

/* pool's geometry must match the model's (layers, kv heads, head size).
 * n_threads >= 1. */
forward_ctx *forward_ctx_create(const model *m, kv_pool *pool, int n_threads, larder_error *err);
void forward_ctx_free(forward_ctx *ctx);

/* Computes n tokens; for each token with want_logits, in order, writes
 * n_vocab f32 logits to the next row of logits (n_wanted, n_vocab). Bad
 * token ids or positions: -1, ERR_INVALID, nothing computed. */
int forward_batch(forward_ctx *ctx, const forward_token *tokens, int32_t n, float *logits, larder_error *err);

#endif
