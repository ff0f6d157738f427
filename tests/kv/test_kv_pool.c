/*
 * test_kv_pool.c — the page pool and page tables: the budget is never
 * exceeded, refcounts free pages at the last unref, freed pages are reused,
 * copy-on-write leaves the shared page untouched, and freed memory goes back
 * to the OS beyond the low-water mark.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/platform.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "tensor/dtype.h"
#include "test_backend.h"

static backend *g_be; /* the pools' memory (LARDER_BACKEND) */

static kv_pool *make_pool(size_t budget, int32_t page_tokens, int32_t low_water) {
    kv_pool_config c = {.n_layers = 2, .n_kv_heads = 2, .head_dim = 8, .page_tokens = page_tokens,
                        .kv_type = TYPE_F16, .budget_bytes = budget, .low_water_pages = low_water};
    larder_error err;
    kv_pool *p = kv_pool_create(&c, g_be, &err);
    assert_non_null(p);
    return p;
}

/* Sets every byte of a page to v, through the backend. */
static void page_fill(kv_pool *p, uint32_t page, int v) {
    size_t n = kv_pool_page_bytes(p);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, v, n);
    assert_int_equal(backend_kv_page_write(g_be, kv_pool_memory(p), page, buf, NULL), 0);
    free(buf);
}

/* Byte `off` of a page, read back through the backend. */
static int page_byte(kv_pool *p, uint32_t page, size_t off) {
    size_t n = kv_pool_page_bytes(p);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(backend_kv_page_read(g_be, kv_pool_memory(p), page, buf, NULL), 0);
    int v = buf[off];
    free(buf);
    return v;
}

static void test_geometry_and_budget_never_exceeded(void **state) {
    (void)state;
    long osp = sysconf(_SC_PAGESIZE);
    /* 2 layers * 2 (K,V) * 2 heads * 8 dims * 16 tokens * 2 bytes = 2048 bytes -> stride one OS page */
    kv_pool *p = make_pool((size_t)osp * 5 + 100, 16, -1);
    kv_pool_stats st;
    kv_pool_get_stats(p, &st);
    assert_int_equal(st.page_bytes, 2048);
    assert_int_equal(st.page_stride_bytes, (size_t)osp);
    assert_int_equal(st.pages_total, 5);
    assert_int_equal(kv_pool_bytes_per_token(p), 128);
    assert_true(st.pages_total * st.page_stride_bytes <= (size_t)osp * 5 + 100);
    uint32_t ids[5];
    larder_error err;
    for (int i = 0; i < 5; i++) assert_int_equal(kv_pool_alloc(p, &ids[i], &err), 0);
    uint32_t extra;
    assert_int_equal(kv_pool_alloc(p, &extra, &err), -1);
    assert_int_equal(err.code, ERR_NOMEM);
    assert_non_null(strstr(err.message, "full"));
    assert_int_equal(kv_pool_pages_free(p), 0);
    /* every page distinct and writable over its whole size */
    for (int i = 0; i < 5; i++) {
        for (int j = i + 1; j < 5; j++) assert_int_not_equal(ids[i], ids[j]);
        page_fill(p, ids[i], i + 1);
    }
    for (int i = 0; i < 5; i++) assert_int_equal(page_byte(p, ids[i], st.page_bytes - 1), i + 1);
    kv_pool_free(p);
}

static void test_budget_below_one_page_fails(void **state) {
    (void)state;
    kv_pool_config c = {.n_layers = 2, .n_kv_heads = 2, .head_dim = 8, .page_tokens = 16, .kv_type = TYPE_F16,
                        .budget_bytes = 100, .low_water_pages = -1};
    larder_error err;
    assert_null(kv_pool_create(&c, g_be, &err));
    assert_int_equal(err.code, ERR_NOMEM);
    c.budget_bytes = 1 << 20;
    c.kv_type = TYPE_Q4_K;
    assert_null(kv_pool_create(&c, g_be, &err));
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    c.kv_type = TYPE_F32;
    c.page_tokens = 0;
    assert_null(kv_pool_create(&c, g_be, &err));
    c.page_tokens = 16;
    assert_null(kv_pool_create(&c, NULL, &err)); /* no backend for the memory */
    assert_int_equal(err.code, ERR_INVALID);
}

static void test_refcounts_and_reuse(void **state) {
    (void)state;
    kv_pool *p = make_pool(1 << 20, 16, -1);
    uint32_t a, b;
    assert_int_equal(kv_pool_alloc(p, &a, NULL), 0);
    assert_int_equal(kv_pool_refcount(p, a), 1);
    kv_pool_ref(p, a);
    kv_pool_ref(p, a);
    assert_int_equal(kv_pool_refcount(p, a), 3);
    kv_pool_stats st;
    kv_pool_get_stats(p, &st);
    assert_int_equal(st.pages_shared, 1);
    assert_int_equal(kv_pool_unref(p, a), 2);
    assert_int_equal(kv_pool_unref(p, a), 1);
    int64_t free_before = kv_pool_pages_free(p);
    assert_int_equal(kv_pool_unref(p, a), 0);
    assert_int_equal(kv_pool_pages_free(p), free_before + 1);
    assert_int_equal(kv_pool_unref(p, a), -1); /* already free: ignored */
    assert_int_equal(kv_pool_refcount(p, a), 0);
    /* the freed (warm) page is the next one handed out */
    assert_int_equal(kv_pool_alloc(p, &b, NULL), 0);
    assert_int_equal(b, a);
    kv_pool_get_stats(p, &st);
    assert_int_equal(st.pages_shared, 0);
    assert_int_equal(st.pages_used, 1);
    kv_pool_free(p);
}

/* Resident pages of this process (base/platform.h: /proc on Linux, task_info on macOS). */
static long rss_pages(void) {
    int64_t rss, peak;
    platform_resident_bytes(&rss, &peak);
    return (long)(rss / sysconf(_SC_PAGESIZE));
}

static void test_freed_memory_returns_to_os(void **state) {
    (void)state;
    /* pages of 2 layers * (K,V) * 2 heads * 8 dims * 4096 tokens * 2 bytes = 512 KiB */
    kv_pool *p = make_pool((size_t)64 << 20, 4096, 2);
    uint32_t ids[64];
    uint8_t *ones = malloc(kv_pool_page_bytes(p)); /* one buffer before r0: the test's own memory stays out */
    assert_non_null(ones);
    memset(ones, 1, kv_pool_page_bytes(p));
    long r0 = rss_pages();
    for (int i = 0; i < 64; i++) {
        assert_int_equal(kv_pool_alloc(p, &ids[i], NULL), 0);
        assert_int_equal(backend_kv_page_write(g_be, kv_pool_memory(p), ids[i], ones, NULL), 0);
    }
    long r1 = rss_pages();
    long osp = sysconf(_SC_PAGESIZE);
    assert_true((r1 - r0) * osp >= (long)30 << 20);
    for (int i = 0; i < 64; i++) kv_pool_unref(p, ids[i]);
    long r2 = rss_pages();
    kv_pool_stats st;
    kv_pool_get_stats(p, &st);
    assert_int_equal(st.pages_committed, 2); /* low-water mark */
    assert_true((r2 - r0) * osp <= (long)4 << 20);
    free(ones);
    kv_pool_free(p);
}

static void test_seq_prepare_and_cow(void **state) {
    (void)state;
    kv_pool *p = make_pool(1 << 20, 4, -1);
    kv_seq a;
    kv_seq_init(&a);
    larder_error err;
    assert_int_equal(kv_seq_prepare(&a, p, 6, &err), 0); /* 6 tokens: 2 pages */
    assert_int_equal(a.n_pages, 2);
    for (int i = 0; i < 2; i++) page_fill(p, a.pages[i], 10 + i);
    kv_seq_advance(&a, 6);
    /* b shares a's pages: the last one is partially filled (2 of 4 tokens) */
    kv_seq b;
    kv_seq_init(&b);
    assert_int_equal(kv_seq_attach(&b, p, a.pages, a.n_pages, 6, &err), 0);
    assert_int_equal(kv_pool_refcount(p, a.pages[0]), 2);
    assert_int_equal(kv_pool_refcount(p, a.pages[1]), 2);
    /* b writes a 7th token: its last page is copied first */
    assert_int_equal(kv_seq_prepare(&b, p, 1, &err), 0);
    assert_int_equal(b.pages[0], a.pages[0]);
    assert_int_not_equal(b.pages[1], a.pages[1]);
    assert_int_equal(kv_pool_refcount(p, a.pages[1]), 1);
    assert_int_equal(kv_pool_refcount(p, b.pages[1]), 1);
    assert_int_equal(page_byte(p, b.pages[1], 0), 11);
    assert_int_equal(page_byte(p, b.pages[1], kv_pool_page_bytes(p) - 1), 11);
    page_fill(p, b.pages[1], 99);
    assert_int_equal(page_byte(p, a.pages[1], 0), 11); /* a untouched */
    kv_seq_advance(&b, 1);
    /* a prepares 3 more tokens: fills page 1 and needs page 2; page 1 is its own now */
    uint32_t a1 = a.pages[1];
    assert_int_equal(kv_seq_prepare(&a, p, 3, &err), 0);
    assert_int_equal(a.pages[1], a1);
    assert_int_equal(a.n_pages, 3);
    kv_seq_advance(&a, 3);
    kv_seq_truncate(&a, p, 4);
    assert_int_equal(a.n_pages, 1);
    assert_int_equal(a.n_tokens, 4);
    kv_seq_release(&a, p);
    kv_seq_release(&b, p);
    assert_int_equal(kv_pool_pages_free(p), kv_pool_pages_total(p));
    kv_pool_free(p);
}

static void test_seq_prepare_all_or_nothing(void **state) {
    (void)state;
    long osp = sysconf(_SC_PAGESIZE);
    kv_pool *p = make_pool((size_t)osp * 3, 16, -1); /* 3 pages */
    kv_seq a;
    kv_seq_init(&a);
    larder_error err;
    assert_int_equal(kv_seq_prepare(&a, p, 40, &err), 0); /* 3 pages */
    kv_seq_advance(&a, 40);
    kv_seq b;
    kv_seq_init(&b);
    assert_int_equal(kv_seq_attach(&b, p, a.pages, 3, 40, &err), 0);
    /* b's write into the shared partial page needs a copy: no page left */
    assert_int_equal(kv_seq_prepare(&b, p, 1, &err), -1);
    assert_int_equal(err.code, ERR_NOMEM);
    assert_int_equal(b.n_pages, 3);
    assert_int_equal(b.pages[2], a.pages[2]);
    assert_int_equal(kv_pool_refcount(p, a.pages[2]), 2);
    /* a asks for more than the pool has: unchanged */
    assert_int_equal(kv_seq_prepare(&a, p, 100, &err), -1);
    assert_int_equal(a.n_pages, 3);
    assert_int_equal(kv_pool_pages_free(p), 0);
    kv_seq_release(&b, p);
    /* a alone: its partial page is no longer shared, fits 8 more tokens in place */
    assert_int_equal(kv_seq_prepare(&a, p, 8, &err), 0);
    assert_int_equal(a.n_pages, 3);
    kv_seq_release(&a, p);
    assert_int_equal(kv_seq_attach(&a, p, (uint32_t[]){0, 1}, 2, 40, &err), -1); /* 40 > 2*16 */
    kv_pool_free(p);
}

/* Rotating window: dropped pages go back to the pool and are skipped by
 * truncate and release; pages_needed counts what prepare takes. */
static void test_seq_drop_pages_and_pages_needed(void **state) {
    (void)state;
    kv_pool *p = make_pool(1 << 20, 4, -1);
    int64_t total = kv_pool_pages_total(p);
    kv_seq a;
    kv_seq_init(&a);
    larder_error err;
    assert_int_equal(kv_seq_pages_needed(&a, p, 10), 3);
    assert_int_equal(kv_seq_prepare(&a, p, 10, &err), 0);
    kv_seq_advance(&a, 10);
    assert_int_equal(kv_seq_pages_needed(&a, p, 2), 0); /* fits page 2 */
    assert_int_equal(kv_seq_pages_needed(&a, p, 3), 1);
    kv_seq_drop_pages(&a, p, 0, 2);
    assert_int_equal(a.pages[0], KV_SEQ_NO_PAGE);
    assert_int_equal(a.pages[1], KV_SEQ_NO_PAGE);
    assert_int_equal(kv_pool_pages_free(p), total - 1);
    kv_seq_drop_pages(&a, p, 1, 2); /* already dropped: nothing */
    assert_int_equal(kv_pool_pages_free(p), total - 1);
    /* a shared partial last page counts one copy */
    kv_seq b, c;
    kv_seq_init(&b), kv_seq_init(&c);
    assert_int_equal(kv_seq_prepare(&b, p, 6, &err), 0);
    kv_seq_advance(&b, 6);
    assert_int_equal(kv_seq_attach(&c, p, b.pages, 2, 6, &err), 0);
    assert_int_equal(kv_seq_pages_needed(&c, p, 1), 1); /* the copy */
    assert_int_equal(kv_seq_pages_needed(&c, p, 3), 2); /* the copy and a new page */
    kv_seq_release(&c, p), kv_seq_release(&b, p);
    kv_seq_truncate(&a, p, 9); /* keeps the 3 entries, two of them dropped */
    assert_int_equal(a.n_pages, 3);
    kv_seq_release(&a, p);
    assert_int_equal(kv_pool_pages_free(p), total);
    assert_int_equal(a.n_pages, 0);
    kv_pool_free(p);
}

static int group_setup(void **state) {
    (void)state;
    g_be = test_backend_create(1);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    backend_free(g_be);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_drop_pages_and_pages_needed),
        cmocka_unit_test(test_geometry_and_budget_never_exceeded),
        cmocka_unit_test(test_budget_below_one_page_fails),
        cmocka_unit_test(test_refcounts_and_reuse),
        cmocka_unit_test(test_freed_memory_returns_to_os),
        cmocka_unit_test(test_seq_prepare_and_cow),
        cmocka_unit_test(test_seq_prepare_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
