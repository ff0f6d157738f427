/*
 * kv_seq.c — page tables: growth, attach of shared pages, copy-on-write,
 * truncation. Each page id in a table carries one reference of the table.
 */
#include "kv/kv_seq.h"

#include <stdlib.h>

/* Largest page table, in pages (2^24 pages of >= 1 token: far beyond any
 * context; keeps capacity arithmetic in int32). */
#define KV_SEQ_MAX_PAGES (1 << 24)

void kv_seq_init(kv_seq *s) {
    s->pages = NULL;
    s->n_pages = s->cap_pages = s->n_tokens = 0;
    s->keep_tokens = s->window_tokens = 0;
}

void kv_seq_release(kv_seq *s, kv_pool *pool) {
    for (int32_t i = 0; i < s->n_pages; i++)
        if (s->pages[i] != KV_SEQ_NO_PAGE) kv_pool_unref(pool, s->pages[i]);
    free(s->pages);
    s->pages = NULL;
    s->n_pages = s->cap_pages = s->n_tokens = 0;
}

static int reserve(kv_seq *s, int32_t n_pages, larder_error *err) {
    if (n_pages <= s->cap_pages) return 0;
    if (n_pages > KV_SEQ_MAX_PAGES) return error_set(err, ERR_LIMIT, "sequence longer than %d pages", KV_SEQ_MAX_PAGES);
    int32_t cap = s->cap_pages ? s->cap_pages : 8;
    while (cap < n_pages) cap = cap > KV_SEQ_MAX_PAGES / 2 ? KV_SEQ_MAX_PAGES : cap * 2;
    uint32_t *p = realloc(s->pages, (size_t)cap * sizeof *p);
    if (!p) return error_set(err, ERR_NOMEM, "out of memory growing a page table");
    s->pages = p;
    s->cap_pages = cap;
    return 0;
}

int kv_seq_attach(kv_seq *s, kv_pool *pool, const uint32_t *pages, int32_t n_pages, int32_t n_tokens,
                  larder_error *err) {
    int32_t P = kv_pool_get_config(pool)->page_tokens;
    if (s->n_pages || n_pages < 0 || n_tokens < 0 || n_tokens > (int64_t)n_pages * P ||
        (n_pages > 0 && n_tokens <= (int64_t)(n_pages - 1) * P))
        return error_set(err, ERR_INVALID, "kv_seq_attach: %d tokens do not fit %d pages", n_tokens, n_pages);
    if (reserve(s, n_pages, err)) return -1;
    for (int32_t i = 0; i < n_pages; i++) {
        kv_pool_ref(pool, pages[i]);
        s->pages[i] = pages[i];
    }
    s->n_pages = n_pages;
    s->n_tokens = n_tokens;
    return 0;
}

int kv_seq_make_writable(kv_seq *s, kv_pool *pool, int32_t pos, larder_error *err) {
    int32_t P = kv_pool_get_config(pool)->page_tokens;
    int32_t i = pos / P;
    if (pos < 0 || i >= s->n_pages) return 0;
    uint32_t old = s->pages[i];
    if (old == KV_SEQ_NO_PAGE || kv_pool_refcount(pool, old) <= 1) return 0;
    uint32_t fresh;
    if (kv_pool_alloc(pool, &fresh, err)) return -1;
    if (kv_pool_page_copy(pool, fresh, old, err)) {
        kv_pool_unref(pool, fresh);
        return -1;
    }
    kv_pool_unref(pool, old);
    s->pages[i] = fresh;
    return 0;
}

/* For n_new more tokens: the pages the table must then have (returned), how
 * many of them to add, and whether the page of the first new position must
 * be copied first (only a partially filled page can be shared and still
 * receive tokens). */
static int32_t prepare_counts(const kv_seq *s, const kv_pool *pool, int32_t n_new, int32_t *add, int *cow) {
    int32_t P = kv_pool_get_config(pool)->page_tokens;
    int32_t need = (int32_t)(((int64_t)s->n_tokens + n_new + P - 1) / P);
    *add = need > s->n_pages ? need - s->n_pages : 0;
    int32_t i = s->n_tokens / P;
    *cow = n_new > 0 && i < s->n_pages && s->pages[i] != KV_SEQ_NO_PAGE && kv_pool_refcount(pool, s->pages[i]) > 1;
    return need;
}

int32_t kv_seq_pages_needed(const kv_seq *s, const kv_pool *pool, int32_t n_new) {
    if (n_new <= 0 || s->n_tokens > INT32_MAX - n_new) return 0;
    int32_t add;
    int cow;
    prepare_counts(s, pool, n_new, &add, &cow);
    return add + cow;
}

int kv_seq_prepare(kv_seq *s, kv_pool *pool, int32_t n_new, larder_error *err) {
    if (n_new < 0 || s->n_tokens > INT32_MAX - n_new)
        return error_set(err, ERR_INVALID, "kv_seq_prepare: bad token count %d", n_new);
    if (n_new == 0) return 0;
    int32_t add;
    int cow;
    int32_t need = prepare_counts(s, pool, n_new, &add, &cow);
    if (kv_pool_pages_free(pool) < add + cow)
        return error_set(err, ERR_NOMEM, "kv pool full: %d pages needed, %lld free", add + cow,
                         (long long)kv_pool_pages_free(pool));
    if (reserve(s, need, err)) return -1;
    if (cow && kv_seq_make_writable(s, pool, s->n_tokens, err)) return -1;
    for (int32_t i = 0; i < add; i++) {
        uint32_t pg;
        if (kv_pool_alloc(pool, &pg, err)) return -1; /* cannot happen: counted above */
        s->pages[s->n_pages++] = pg;
    }
    return 0;
}

void kv_seq_advance(kv_seq *s, int32_t n) { s->n_tokens += n; }

void kv_seq_truncate(kv_seq *s, kv_pool *pool, int32_t n_tokens) {
    int32_t P = kv_pool_get_config(pool)->page_tokens;
    if (n_tokens < 0) n_tokens = 0;
    if (n_tokens > s->n_tokens) return;
    int32_t keep = (int32_t)(((int64_t)n_tokens + P - 1) / P);
    while (s->n_pages > keep) {
        uint32_t pg = s->pages[--s->n_pages];
        if (pg != KV_SEQ_NO_PAGE) kv_pool_unref(pool, pg);
    }
    s->n_tokens = n_tokens;
}

void kv_seq_drop_pages(kv_seq *s, kv_pool *pool, int32_t first, int32_t end) {
    if (first < 0) first = 0;
    if (end > s->n_pages) end = s->n_pages;
    for (int32_t i = first; i < end; i++)
        if (s->pages[i] != KV_SEQ_NO_PAGE) {
            kv_pool_unref(pool, s->pages[i]);
            s->pages[i] = KV_SEQ_NO_PAGE;
        }
}
