/*
 * kv_seq.h — one sequence's page table: page i holds K/V of positions
 * [i·P, (i+1)·P) (P = the pool's page_tokens), plus the sequence's length.
 *
 * A sequence may start from pages it shares with the prompt cache or other
 * sequences (kv_seq_attach: refcount + 1 each). Shared pages are never
 * written: before K/V of new positions go into a page that is shared — only
 * ever the partially filled last page — kv_seq_prepare copies it into a
 * fresh page of its own (copy-on-write) and drops its reference on the old.
 *
 * Rotating window (keep_tokens, window_tokens; both 0: none): position p
 * sees j < keep_tokens and p - window_tokens < j <= p. Pages wholly between
 * the two are dropped as the sequence moves on (kv_seq_drop_pages): their
 * entries become KV_SEQ_NO_PAGE, never read nor written again.
 *
 * Typical use, one forward step of n tokens:
 *     kv_seq_prepare(&s, pool, n, err);      // COW + new pages; all or nothing
 *     ... forward writes K/V at positions s.n_tokens .. s.n_tokens+n-1 ...
 *     kv_seq_advance(&s, n);
 * A caller that may evict to make room first asks kv_seq_pages_needed.
 */
#ifndef LARDER_KV_KV_SEQ_H
#define LARDER_KV_KV_SEQ_H

#include <stdint.h>

#include "base/error.h"
#include "kv/kv_pool.h"

/* A page table entry whose page was dropped (behind a rotating window). */
#define KV_SEQ_NO_PAGE BACKEND_NO_PAGE

typedef struct kv_seq {
    uint32_t *pages;   /* (cap_pages) page ids, one reference held on each of [0, n_pages)
                        * but KV_SEQ_NO_PAGE entries */
    int32_t n_pages;
    int32_t cap_pages;
    int32_t n_tokens;  /* positions [0, n_tokens) hold computed K/V */
    int32_t keep_tokens;   /* rotating window (both 0: none), see above */
    int32_t window_tokens;
} kv_seq;

/* One token's place in the KV: its sequence and its position there (its
 * K/V go to page pos / P, row pos % P). What the engine, the forward pass
 * and (through the step's batch descriptor) the backend know of a token's
 * KV. */
typedef struct kv_ref {
    const kv_seq *seq;
    int32_t pos;
} kv_ref;

/* An empty sequence without a window (no allocation). */
void kv_seq_init(kv_seq *s);
/* Drops every page reference and frees the table; s becomes empty (its
 * window stays). */
void kv_seq_release(kv_seq *s, kv_pool *pool);

/* Appends n_pages shared pages (taking a reference on each) holding the
 * sequence's first n_tokens tokens; s must be empty. n_tokens must fit in
 * the pages: (n_pages-1)·P < n_tokens <= n_pages·P (or both 0). */
int kv_seq_attach(kv_seq *s, kv_pool *pool, const uint32_t *pages, int32_t n_pages, int32_t n_tokens,
                  larder_error *err);

/* Free pages kv_seq_prepare(s, pool, n_new) takes from the pool: new pages
 * plus one when the page the first new position falls into is shared. */
int32_t kv_seq_pages_needed(const kv_seq *s, const kv_pool *pool, int32_t n_new);

/* Makes positions [n_tokens, n_tokens + n_new) writable: copies a shared
 * last page that they fall into (COW), then allocates the pages still
 * missing. All or nothing: on ERR_NOMEM, s is as before. */
int kv_seq_prepare(kv_seq *s, kv_pool *pool, int32_t n_new, larder_error *err);

/* Copy-on-write of the page holding position `pos` if it is shared:
 * afterwards that page has refcount 1. 0, or -1 with ERR_NOMEM. */
int kv_seq_make_writable(kv_seq *s, kv_pool *pool, int32_t pos, larder_error *err);

/* n_tokens += n (after the forward pass wrote their K/V). */
void kv_seq_advance(kv_seq *s, int32_t n);

/* Rotating window: drops pages [first, end) (references released, entries
 * KV_SEQ_NO_PAGE; already dropped ones skipped). */
void kv_seq_drop_pages(kv_seq *s, kv_pool *pool, int32_t first, int32_t end);

/* Shortens the sequence to n_tokens (<= current), dropping pages no longer
 * needed. */
void kv_seq_truncate(kv_seq *s, kv_pool *pool, int32_t n_tokens);

#endif
