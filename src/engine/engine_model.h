/*
 * engine_model.h — what the engine needs from a model and its KV pool, and
 * nothing more: page allocation and references, page tables, and one batched
 * forward pass over tokens of several sequences.
 *
 * engine_model.c implements it over src/model and src/kv/kv_pool; tests
 * implement it with a fake model (tests/engine/fake_model.c) whose "logits"
 * are computed from what is really stored in the pages, so the scheduler,
 * the cache and the budgets are tested without a real model — and a page
 * shared wrongly shows up as a wrong token.
 */
#ifndef LARDER_ENGINE_ENGINE_MODEL_H
#define LARDER_ENGINE_ENGINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct model;
typedef struct engine_model engine_model;

typedef struct engine_model_config {
    struct model *model;       /* not owned */
    size_t kv_memory_bytes;    /* pool budget */
    int32_t page_tokens;
    uint32_t kv_type;          /* TYPE_F16, TYPE_F32, ... */
    int n_threads;
    int32_t max_batch_tokens;  /* largest batch engine_model_forward gets */
} engine_model_config;

engine_model *engine_model_create(const engine_model_config *cfg, larder_error *err);
void engine_model_free(engine_model *em);

int32_t engine_model_n_vocab(const engine_model *em);
int32_t engine_model_n_ctx_train(const engine_model *em);

/* ---- pages (ids index the pool; a new page has one reference) */
size_t engine_kv_page_bytes(const engine_model *em);
int64_t engine_kv_pages_total(const engine_model *em);
int64_t engine_kv_pages_free(const engine_model *em);
int engine_kv_page_alloc(engine_model *em, uint32_t *page);   /* -1: pool full */
void engine_kv_page_ref(engine_model *em, uint32_t page);
void engine_kv_page_unref(engine_model *em, uint32_t page);  /* last one frees */
int engine_kv_page_refcount(engine_model *em, uint32_t page);
void engine_kv_page_copy(engine_model *em, uint32_t dst, uint32_t src); /* whole page */

/* A sequence's page table: page i holds tokens [i*P, (i+1)*P). */
typedef struct engine_kv_seq {
    uint32_t *pages;           /* (cap_pages) */
    int32_t n_pages, cap_pages;
} engine_kv_seq;

int engine_kv_seq_push_page(engine_kv_seq *s, uint32_t page);
void engine_kv_seq_free(engine_kv_seq *s);

/* ---- forward */
typedef struct engine_batch_item {
    int32_t token;
    int32_t pos;               /* position in its sequence; K/V go to page pos / P */
    const engine_kv_seq *kv;   /* its sequence (pages cover what it sees) */
    bool want_logits;
    int32_t keep_tokens;       /* rotating window (both 0: none): the item */
    int32_t window_tokens;     /* sees j < keep_tokens and pos-window_tokens < j <= pos */
} engine_batch_item;

/* A page table entry whose page was dropped (behind a rotating window). */
#define ENGINE_KV_NO_PAGE UINT32_MAX

/* Computes the batch; writes one row of n_vocab logits per item with
 * want_logits, in item order, to logits. Attention of item i sees positions
 * [0, pos_i] of its own sequence (earlier positions from the pages), or
 * only those inside its window; pages wholly outside it are never read. */
int engine_model_forward(engine_model *em, const engine_batch_item *items, int32_t n_items, float *logits,
                         larder_error *err);

#endif
