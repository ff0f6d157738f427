/*
 * forward.h — the batched forward pass: one call computes tokens of SEVERAL
 * sequences at once (the server's continuous batching stands on this).
 *
 * Each token names its place in the KV (kv_ref: its sequence's page table
 * and its position). Its K/V are written to page pos / P, row pos % P, for
 * every layer, and it attends to positions [0, pos] of its own sequence
 * (inside the sequence's rotating window, if it has one): earlier calls'
 * tokens from the pages, and this batch's tokens of the same sequence
 * (written before attention runs, layer by layer). The caller must have
 * made the pages covering every pos present and writable (kv_seq_prepare)
 * — a shared page is never written.
 *
 * Per call the pass builds the step's batch descriptor (token ids,
 * positions, sequence index, page-table matrix, windows, wanted logit rows)
 * and hands it to the backend once; every op runs on the backend given at
 * creation, in its memory; the call ends with a backend sync and the logits
 * read back to the caller's host array.
 *
 * A forward_ctx holds the scratch (grown to the largest batch seen, then
 * reused: a decode step allocates nothing). Not thread-safe: one caller at
 * a time.
 */
#ifndef LARDER_MODEL_FORWARD_H
#define LARDER_MODEL_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/error.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "model/model.h"

/* Largest batch one call takes (scratch is sized by it; callers split). */
#define FORWARD_MAX_BATCH_TOKENS 65536

typedef struct forward_token {
    int32_t token;          /* id in [0, n_vocab) */
    kv_ref kv;              /* its sequence (pages cover [0, pos]) and position, >= 0 */
    bool want_logits;       /* write a row of logits for this token */
} forward_token;

/* The shape of a forward pass as its callers hold it (the engine takes one
 * in its config, so tests can give it a fake): computes n tokens and
 * writes, for each token with want_logits, in order, a row of n_vocab f32
 * logits to `logits` (n_wanted, n_vocab). 0, or -1 with err. */
typedef int (*forward_fn)(void *ctx, const forward_token *tokens, int32_t n, float *logits, larder_error *err);

typedef struct forward_ctx forward_ctx;

/* m must have been uploaded to be (model_upload); pool's pages must live in
 * be (kv_pool_backend) and its geometry match the model's (layers, kv
 * heads, head size). */
forward_ctx *forward_ctx_create(const model *m, kv_pool *pool, backend *be, larder_error *err);
void forward_ctx_free(forward_ctx *ctx);

/* forward_fn over a forward_ctx. Bad token ids, positions or page tables:
 * -1, ERR_INVALID, nothing computed. */
int forward_batch(forward_ctx *ctx, const forward_token *tokens, int32_t n, float *logits, larder_error *err);

/* Expert statistics (a measuring hook, off by default): from now on every
 * mixture-of-experts layer il adds, for each token of a batch, one to
 * counts[il * n_expert + e] for each expert e it was routed to (the chosen
 * ids are read back from the backend each layer, which costs a transfer on
 * an accelerator). counts (n_layers * n_expert) stays the caller's; NULL
 * turns the hook off. */
void forward_ctx_count_experts(forward_ctx *ctx, int64_t *counts);

/* forward_batch as a forward_fn (ctx: the forward_ctx). */
int forward_batch_fn(void *ctx, const forward_token *tokens, int32_t n, float *logits, larder_error *err);

#endif
