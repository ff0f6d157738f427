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
}

void kv_seq_release(kv_seq *s, kv_pool *pool) {
    for (int32_t i = 0; i < s->n_pages; i++) kv_pool_unref(pool, s->pages[i]);
    free(s->pages);
    kv_seq_init(s);
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

int kv_seq_push_page(kv_seq *s, uint32_t page, larder_error *err) {
    if (reserve(s, s->n_pages + 1, err)) return -1;
    s->pages[s->n_pages++] = page;
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
    if (kv_pool_refcount(pool, old) <= 1) return 0;
    uint32_t fresh;
    if (kv_pool_alloc(pool, &fresh, err)) return -1;
    kv_pool_page_copy(pool, fresh, old);
    kv_pool_unref(pool, old);
    s->pages[i] = fresh;
    return 0;
}

int kv_seq_prepare(kv_seq *s, kv_pool *pool, int32_t n_new, larder_error *err) {
    int32_t P = kv_pool_get_config(pool)->page_tokens;
    if (n_new < 0 || s->n_tokens > INT32_MAX - n_new)
        return error_set(err, ERR_INVALID, "kv_seq_prepare: bad token count %d", n_new);
    if (n_new == 0) return 0;
    int32_t end = s->n_tokens + n_new;
    int32_t need = (int32_t)(((int64_t)end + P - 1) / P);
    int32_t add = need > s->n_pages ? need - s->n_pages : 0;
    /* COW of the page holding the first new position (only a partially
     * filled page can be shared and still receive tokens). */
    int cow = s->n_tokens / P < s->n_pages && kv_pool_refcount(pool, s->pages[s->n_tokens / P]) > 1;
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
    while (s->n_pages > keep) kv_pool_unref(pool, s->pages[--s->n_pages]);
    s->n_tokens = n_tokens;
}
