/*
 * kv_pool.h — the bookkeeping of every byte of KV memory: one pool of
 * fixed-size, reference-counted pages under one byte budget. The bytes
 * themselves live in the backend's KV memory (backend_kv_create: host
 * pages on CPU, one device allocation on a GPU), whose page layout
 * backend.h documents; this file decides which page is used, by whom, and
 * when its memory may be given back.
 *
 * Key idea (DESIGN.md, "The KV page pool"): a page holds K and V of
 * `page_tokens` consecutive tokens of one sequence for EVERY layer, so a
 * sequence (or a cached prefix) is just a list of page ids.
 *
 *   row_bytes         = tensor_row_bytes(kv_type, head_dim)
 *   page_bytes        = 2 · layers · kv_heads · page_tokens · row_bytes
 *   page_stride_bytes = what the backend reserves per page (CPU: page_bytes
 *                       rounded up to the OS page, so a freed page can be
 *                       handed back to the OS on its own)
 *   pages_total       = budget_bytes / page_stride_bytes
 *
 * Memory: freed pages stay committed ("warm") up to a low-water mark of
 * LOW_WATER pages, so reuse is cheap; beyond it a freed page is released to
 * the backend (backend_kv_page_release: on CPU its memory goes back to the
 * OS), so the process's resident size tells the truth about what the pool
 * holds. The pool never holds more than its budget: alloc fails (-1,
 * ERR_NOMEM) when every page is in use.
 *
 * Reference counts: alloc returns a page with one reference; ref/unref add
 * and drop one; the last unref frees it. A page with more than one reference
 * is shared (by sequences and/or the prompt cache) and must not be written:
 * copy it first (kv_pool_page_copy, used by kv_seq's copy-on-write).
 *
 * Not thread-safe: owned by the engine thread. The forward pass writes page
 * memory through the backend, but never allocates or frees.
 */
#ifndef LARDER_KV_KV_POOL_H
#define LARDER_KV_KV_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/error.h"

/* Largest number of pages a pool has (page ids are uint32_t; this bound
 * keeps the bookkeeping arrays small and their sizes far from overflow). */
#define KV_POOL_MAX_PAGES (1u << 26)
/* Freed pages kept committed for fast reuse before the next freed page is
 * returned to the OS. */
#define KV_POOL_DEFAULT_LOW_WATER_PAGES 8
/* Largest page_tokens accepted. */
#define KV_POOL_MAX_PAGE_TOKENS 4096

typedef struct kv_pool_config {
    int32_t n_layers;        /* >= 1 */
    int32_t n_kv_heads;      /* >= 1 */
    int32_t head_dim;        /* >= 1, elements per head of K and of V */
    int32_t page_tokens;     /* >= 1, tokens per page */
    uint32_t kv_type;        /* one of kv_pool_type_supported (src/tensor/dtype.h ids) */
    size_t budget_bytes;     /* the whole pool; pages_total = budget / stride */
    int32_t low_water_pages; /* warm free pages kept; < 0: the default */
} kv_pool_config;

typedef struct kv_pool kv_pool;

typedef struct kv_pool_stats {
    int64_t pages_total;     /* capacity in pages */
    int64_t pages_used;      /* pages with refcount >= 1 */
    int64_t pages_free;      /* pages_total - pages_used */
    int64_t pages_shared;    /* pages with refcount >= 2 */
    int64_t pages_committed; /* pages whose memory may be resident (used + warm free) */
    size_t page_bytes;       /* bytes of one page's data */
    size_t page_stride_bytes;/* bytes reserved per page */
} kv_pool_stats;

/* The KV types a pool stores: TYPE_F16, TYPE_F32, TYPE_BF16, TYPE_Q8_0,
 * TYPE_Q4_0. */
bool kv_pool_type_supported(uint32_t kv_type);
/* The supported type named name ("f16", "q8_0", ...: --kv-type), or -1. */
int kv_pool_type_from_name(const char *name);
/* Bytes of one token's K (or V) row of one head: tensor_row_bytes(kv_type,
 * head_dim); 0 when the type is unsupported or head_dim is not a multiple
 * of its block. */
size_t kv_pool_row_bytes(uint32_t kv_type, int32_t head_dim);

/* A pool whose pages live in be's memory (be must outlive the pool). Fails
 * (NULL, err) for bad geometry, an unsupported type or a head_dim that is
 * not a multiple of the type's block, a budget smaller than one page, or
 * when the backend cannot reserve the memory. */
kv_pool *kv_pool_create(const kv_pool_config *cfg, backend *be, larder_error *err);
void kv_pool_free(kv_pool *pool);

/* A new page with refcount 1 in *page; 0, or -1 with ERR_NOMEM when full.
 * Its contents are unspecified (callers write before they read). */
int kv_pool_alloc(kv_pool *pool, uint32_t *page, larder_error *err);
/* Adds a reference to a page in use. */
void kv_pool_ref(kv_pool *pool, uint32_t page);
/* Drops a reference; the last one frees the page. Returns the references
 * left (0: freed), or -1 if the page was not in use (a caller bug; ignored). */
int kv_pool_unref(kv_pool *pool, uint32_t page);
/* References a page has now (0 if free or out of range). */
int kv_pool_refcount(const kv_pool *pool, uint32_t page);
/* Copies the whole page src into dst (both in use): 0, or -1 with err when
 * the backend's copy fails. */
int kv_pool_page_copy(kv_pool *pool, uint32_t dst, uint32_t src, larder_error *err);

/* Geometry. */
const kv_pool_config *kv_pool_get_config(const kv_pool *pool);
size_t kv_pool_page_bytes(const kv_pool *pool);
size_t kv_pool_get_row_bytes(const kv_pool *pool); /* kv_pool_row_bytes of its config */
int64_t kv_pool_pages_total(const kv_pool *pool);
int64_t kv_pool_pages_free(const kv_pool *pool);
void kv_pool_get_stats(const kv_pool *pool, kv_pool_stats *out);
/* KV bytes one token takes in every layer (page_bytes / page_tokens). */
size_t kv_pool_bytes_per_token(const kv_pool *pool);

/* The backend holding the pages, and its KV memory (what the backend's KV
 * ops take). */
backend *kv_pool_backend(const kv_pool *pool);
backend_kv *kv_pool_memory(const kv_pool *pool);

#endif
