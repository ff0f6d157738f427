/*
 * radix_cache.h — the prompt cache: a radix tree over token ids whose nodes
 * own KV pages.
 *
 * Key idea (DESIGN.md, "The radix prefix cache"): a cached prefix is never
 * copied. Each node covers a run of tokens that is a whole number of pages
 * (page_tokens tokens each) and holds one page id per page of its run; the
 * root covers nothing. A request whose prompt starts with a cached prefix
 * gets that prefix's page ids and takes its own references on them; a request
 * that ends inserts its tokens and pages, and the tree takes references on the
 * pages it did not already have. Runs are page aligned; a key's partially
 * filled last page hangs off the node its whole pages end at, as that node's
 * "tail" (one per node: its tokens and the page). A match may end inside a
 * page: a key that agrees with the first t tokens of the page after its
 * whole-page match (in a run, a child's first page, or a tail) gets that page
 * too, with a match t tokens into it; the caller shares the page and must
 * copy it before writing its next token there (the page holds another
 * key's K/V after slot t). A
 * key that goes on through a whole page drops the tail it extends (the new
 * page holds those tokens). So a follow-up turn recomputes nothing it sent
 * before, not even the last page's tokens.
 *
 * Pages are the KV pool's (src/kv/kv_pool.h); the tree only calls the
 * page_ref / page_unref hooks, so it knows nothing of their bytes.
 *
 * Pinning: a running sequence pins the node its prefix ended at (and so every
 * ancestor): pinned nodes are never evicted, so a shared system prompt in use
 * stays. Eviction removes least-recently-used unpinned leaves, whole; their
 * parents become leaves in turn, so a prefix shared by many conversations is
 * evicted last.
 *
 * Not thread-safe: owned by the engine thread.
 */
#ifndef LARDER_KV_RADIX_CACHE_H
#define LARDER_KV_RADIX_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct radix_cache radix_cache;
typedef struct radix_node radix_node;

/* How the tree takes and drops references on pool pages. */
typedef struct radix_cache_hooks {
    void (*page_ref)(void *ctx, uint32_t page);
    void (*page_unref)(void *ctx, uint32_t page);
    /* Optional: number of references a page has now; eviction counts a page
     * as freed when the tree held its last one. NULL: every page counts. */
    int (*page_refcount)(void *ctx, uint32_t page);
    void *ctx;
} radix_cache_hooks;

typedef struct radix_cache_stats {
    int64_t nodes;            /* nodes besides the root */
    int64_t leaves;           /* cached conversations: nodes without children */
    int64_t idle_leaves;      /* leaves no running sequence pins */
    int64_t pinned_nodes;     /* nodes with a pin count > 0 */
    int64_t pages;            /* pages referenced by the tree */
    int64_t idle_pages;       /* pages of unpinned nodes (what eviction can drop) */
    int64_t evicted_leaves;   /* since creation */
    int64_t evicted_pages;    /* since creation */
    int64_t lookups, hit_tokens, lookup_tokens; /* since creation */
} radix_cache_stats;

/* page_tokens >= 1. Returns NULL with err set on failure. */
radix_cache *radix_cache_create(int32_t page_tokens, radix_cache_hooks hooks, larder_error *err);

/* Unrefs every page the tree holds and frees it. Pins must be released first
 * (pinned nodes are dropped too; callers must not use their handles after). */
void radix_cache_destroy(radix_cache *rc);

/*
 * Longest cached prefix of tokens[0, n_tokens): returns its length in tokens
 * (whole pages, plus the agreeing start of one more page) and writes its page ids
 * to pages_out (ceil(length / page_tokens) of them; room for max_pages; the
 * match stops there). The pages are borrowed: the caller takes
 * its own references before the next call that can evict. *node_out (may be
 * NULL) receives the deepest node matched, for radix_cache_pin; the root when
 * nothing matched. Matched nodes count as used now (LRU).
 */
int32_t radix_cache_match(radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                          uint32_t *pages_out, int32_t max_pages, radix_node **node_out);

/*
 * Inserts tokens[0, n_tokens) whose KV lives in pages[0, ceil(n_tokens /
 * page_tokens)). The partial last page is stored as a tail only if tail_want
 * (and the key is longer than one page); the caller must not write that page
 * afterwards (it is shared). Where the tree already caches a prefix, its own
 * pages are kept and the caller's duplicates ignored; for pages newly stored
 * the tree takes a reference. Returns the number of tokens now cached for
 * this key or -1 on allocation failure (the tree is unchanged then; a tail
 * that cannot be stored is simply not stored). *node_out (may be NULL)
 * receives the deepest node of the key, for pinning.
 */
int32_t radix_cache_insert(radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                           const uint32_t *pages, bool tail_want, radix_node **node_out, larder_error *err);

/* Pins node and its ancestors (counted); unpin undoes one pin. The root is a
 * valid argument and is a no-op. */
void radix_cache_pin(radix_cache *rc, radix_node *node);
void radix_cache_unpin(radix_cache *rc, radix_node *node);

/*
 * Evicts the least recently used unpinned leaf, whole. Returns the number of
 * pages whose last reference the tree dropped (pages actually freed), or -1
 * when no unpinned leaf exists.
 */
int64_t radix_cache_evict_one(radix_cache *rc);

/* Evicts LRU leaves until at least pages_wanted pages were freed or nothing is
 * evictable; returns pages freed. */
int64_t radix_cache_evict_pages(radix_cache *rc, int64_t pages_wanted);

/* Evicts unpinned leaves, least recently used first, until at most max_leaves
 * unpinned leaves remain (--prompt-cache-size: conversations kept idle;
 * leaves pinned by running sequences are not counted). Returns pages freed. */
int64_t radix_cache_trim_leaves(radix_cache *rc, int64_t max_leaves);

/* Evicts unpinned leaves last used before the tick `older_than` (ticks come
 * from radix_cache_now). Returns pages freed. */
int64_t radix_cache_evict_older_than(radix_cache *rc, uint64_t older_than);

/* Drops every unpinned node (DELETE /v1/cache). Returns pages freed. */
int64_t radix_cache_clear_idle(radix_cache *rc);

/* The cache's clock: a counter set by the caller (e.g. milliseconds since
 * start); nodes record it when matched or inserted. */
void radix_cache_set_now(radix_cache *rc, uint64_t now);
uint64_t radix_cache_now(const radix_cache *rc);

radix_cache_stats radix_cache_get_stats(const radix_cache *rc);

/* Checks every invariant (page alignment, child keys distinct, counts);
 * returns 0 or -1 with err set. For tests. */
int radix_cache_check(const radix_cache *rc, larder_error *err);

#endif
