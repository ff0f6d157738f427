/*
 * kv_pool.c — the page pool's bookkeeping: refcounts and two free stacks
 * (warm: still committed; cold: released to the backend or never touched),
 * over a region of the backend's KV memory.
 *
 * alloc pops a warm page first (no page faults), then a cold one. free pushes
 * the page on the warm stack unless that already holds low_water pages, in
 * which case the page is released (its memory goes back) and it joins the
 * cold stack. The sum of committed pages is therefore at most used +
 * low_water.
 */
#include "kv/kv_pool.h"

#include <stdlib.h>
#include <string.h>

#include "tensor/dtype.h"

struct kv_pool {
    kv_pool_config cfg;
    size_t row_bytes;         /* one token's row of one head (kv_pool_row_bytes) */
    size_t page_bytes;        /* data bytes per page */
    size_t stride_bytes;      /* what the backend reserves per page */
    backend *be;              /* not owned */
    backend_kv *mem;          /* the pages' memory (owned) */
    uint32_t pages_total;
    int32_t low_water;
    uint32_t *refcount;       /* (pages_total) */
    uint32_t *warm;           /* (pages_total) stack of committed free pages */
    uint32_t n_warm;
    uint32_t *cold;           /* (pages_total) stack of uncommitted free pages */
    uint32_t n_cold;
    int64_t pages_used;
    int64_t pages_shared;
};

kv_pool *kv_pool_create(const kv_pool_config *cfg, backend *be, larder_error *err) {
    if (!be) {
        error_set(err, ERR_INVALID, "kv pool: no backend");
        return NULL;
    }
    if (!cfg || cfg->n_layers < 1 || cfg->n_kv_heads < 1 || cfg->head_dim < 1 || cfg->page_tokens < 1 ||
        cfg->page_tokens > KV_POOL_MAX_PAGE_TOKENS || cfg->n_layers > 100000 || cfg->n_kv_heads > 100000 ||
        cfg->head_dim > 100000) {
        error_set(err, ERR_INVALID, "kv pool: bad geometry");
        return NULL;
    }
    if (!kv_pool_type_supported(cfg->kv_type)) {
        error_set(err, ERR_UNSUPPORTED, "kv pool: KV type %u is not supported (f16, f32, bf16, q8_0, q4_0)",
                  cfg->kv_type);
        return NULL;
    }
    size_t row = kv_pool_row_bytes(cfg->kv_type, cfg->head_dim);
    if (row == 0) {
        error_set(err, ERR_UNSUPPORTED, "kv pool: head size %d is not a multiple of the %s block (%d)",
                  cfg->head_dim, tensor_type_get(cfg->kv_type)->name, tensor_type_get(cfg->kv_type)->block_elems);
        return NULL;
    }
    /* All factors are bounded above, so the product fits in 64 bits. */
    uint64_t head_bytes = (uint64_t)cfg->page_tokens * (uint64_t)row;
    uint64_t page_bytes = 2u * (uint64_t)cfg->n_layers * (uint64_t)cfg->n_kv_heads * head_bytes;
    uint64_t stride = backend_kv_page_stride(be, (size_t)page_bytes);
    uint64_t n = cfg->budget_bytes / stride;
    if (n < 1) {
        error_set(err, ERR_NOMEM, "kv pool: budget of %zu bytes is smaller than one page (%llu bytes)",
                  cfg->budget_bytes, (unsigned long long)stride);
        return NULL;
    }
    if (n > KV_POOL_MAX_PAGES) n = KV_POOL_MAX_PAGES;

    kv_pool *p = calloc(1, sizeof *p);
    if (!p) {
        error_set(err, ERR_NOMEM, "kv pool: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->row_bytes = row;
    p->page_bytes = (size_t)page_bytes;
    p->stride_bytes = (size_t)stride;
    p->be = be;
    p->pages_total = (uint32_t)n;
    p->low_water = cfg->low_water_pages < 0 ? KV_POOL_DEFAULT_LOW_WATER_PAGES : cfg->low_water_pages;
    p->refcount = calloc(n, sizeof *p->refcount);
    p->warm = malloc(n * sizeof *p->warm);
    p->cold = malloc(n * sizeof *p->cold);
    backend_kv_layout layout = {cfg->n_layers, cfg->n_kv_heads, cfg->head_dim, cfg->page_tokens, cfg->kv_type,
                                row, (size_t)page_bytes};
    if (!p->refcount || !p->warm || !p->cold) {
        error_set(err, ERR_NOMEM, "kv pool: out of memory");
        kv_pool_free(p);
        return NULL;
    }
    p->mem = backend_kv_create(be, &layout, (uint32_t)n, err);
    if (!p->mem) {
        kv_pool_free(p);
        return NULL;
    }
    /* Cold stack popped from the top: page 0 first. */
    for (uint32_t i = 0; i < (uint32_t)n; i++) p->cold[i] = (uint32_t)n - 1 - i;
    p->n_cold = (uint32_t)n;
    return p;
}

void kv_pool_free(kv_pool *p) {
    if (!p) return;
    if (p->mem) backend_kv_free(p->be, p->mem);
    free(p->refcount);
    free(p->warm);
    free(p->cold);
    free(p);
}

int kv_pool_alloc(kv_pool *p, uint32_t *page, larder_error *err) {
    uint32_t id;
    if (p->n_warm) id = p->warm[--p->n_warm];
    else if (p->n_cold) id = p->cold[--p->n_cold];
    else
        return error_set(err, ERR_NOMEM, "kv pool full: all %u pages (%zu bytes each) in use", p->pages_total,
                         p->stride_bytes);
    p->refcount[id] = 1;
    p->pages_used++;
    *page = id;
    return 0;
}

void kv_pool_ref(kv_pool *p, uint32_t page) {
    if (page >= p->pages_total || p->refcount[page] == 0) return; /* caller bug: ignored */
    if (++p->refcount[page] == 2) p->pages_shared++;
}

int kv_pool_unref(kv_pool *p, uint32_t page) {
    if (page >= p->pages_total || p->refcount[page] == 0) return -1;
    uint32_t left = --p->refcount[page];
    if (left == 1) p->pages_shared--;
    if (left > 0) return (int)(left > (uint32_t)INT32_MAX ? INT32_MAX : left);
    p->pages_used--;
    if ((int64_t)p->n_warm < p->low_water) {
        p->warm[p->n_warm++] = page;
    } else {
        /* Beyond the low-water mark: hand the memory back. */
        backend_kv_page_release(p->be, p->mem, page);
        p->cold[p->n_cold++] = page;
    }
    return 0;
}

int kv_pool_refcount(const kv_pool *p, uint32_t page) {
    if (page >= p->pages_total) return 0;
    return p->refcount[page] > (uint32_t)INT32_MAX ? INT32_MAX : (int)p->refcount[page];
}

int kv_pool_page_copy(kv_pool *p, uint32_t dst, uint32_t src, larder_error *err) {
    if (dst >= p->pages_total || src >= p->pages_total)
        return error_set(err, ERR_INVALID, "kv pool: page copy %u <- %u out of %u pages", dst, src, p->pages_total);
    return dst == src ? 0 : backend_kv_page_copy(p->be, p->mem, dst, src, err);
}

const kv_pool_config *kv_pool_get_config(const kv_pool *p) { return &p->cfg; }
size_t kv_pool_page_bytes(const kv_pool *p) { return p->page_bytes; }
size_t kv_pool_get_row_bytes(const kv_pool *p) { return p->row_bytes; }

bool kv_pool_type_supported(uint32_t t) {
    return t == TYPE_F16 || t == TYPE_F32 || t == TYPE_BF16 || t == TYPE_Q8_0 || t == TYPE_Q4_0;
}

int kv_pool_type_from_name(const char *name) {
    int t = tensor_type_from_name(name);
    return t >= 0 && kv_pool_type_supported((uint32_t)t) ? t : -1;
}

size_t kv_pool_row_bytes(uint32_t kv_type, int32_t head_dim) {
    return kv_pool_type_supported(kv_type) && head_dim > 0 ? tensor_row_bytes(kv_type, head_dim) : 0;
}
int64_t kv_pool_pages_total(const kv_pool *p) { return p->pages_total; }
int64_t kv_pool_pages_free(const kv_pool *p) { return (int64_t)p->pages_total - p->pages_used; }
size_t kv_pool_bytes_per_token(const kv_pool *p) { return p->page_bytes / (size_t)p->cfg.page_tokens; }

void kv_pool_get_stats(const kv_pool *p, kv_pool_stats *out) {
    out->pages_total = p->pages_total;
    out->pages_used = p->pages_used;
    out->pages_free = (int64_t)p->pages_total - p->pages_used;
    out->pages_shared = p->pages_shared;
    out->pages_committed = p->pages_used + p->n_warm;
    out->page_bytes = p->page_bytes;
    out->page_stride_bytes = p->stride_bytes;
}

backend *kv_pool_backend(const kv_pool *p) { return p->be; }
backend_kv *kv_pool_memory(const kv_pool *p) { return p->mem; }
