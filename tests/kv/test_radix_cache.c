/*
 * test_radix_cache.c — the radix prompt cache against a fake page pool that
 * counts references: matches are longest page-aligned prefixes (plus the
 * agreeing part of a partial-page tail), pages are
 * shared never copied, eviction is LRU over unpinned leaves and frees only
 * pages nobody else holds, and a randomized workload keeps every invariant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv/radix_cache.h"

#define MAX_PAGES 4096

typedef struct { int refs[MAX_PAGES]; uint32_t next; } fake_pool;

static void fp_ref(void *ctx, uint32_t p) { ((fake_pool *)ctx)->refs[p]++; }
static void fp_unref(void *ctx, uint32_t p) {
    fake_pool *fp = ctx;
    assert_true(fp->refs[p] > 0);
    fp->refs[p]--;
}
static int fp_count(void *ctx, uint32_t p) { return ((fake_pool *)ctx)->refs[p]; }

/* A "sequence" allocating its own pages (ref 1 each), as the engine does. */
static void alloc_pages(fake_pool *fp, uint32_t *pages, int n) {
    for (int i = 0; i < n; i++) {
        assert_true(fp->next < MAX_PAGES);
        pages[i] = fp->next++;
        fp->refs[pages[i]] = 1;
    }
}
static void release_pages(fake_pool *fp, const uint32_t *pages, int n) {
    for (int i = 0; i < n; i++) fp_unref(fp, pages[i]);
}

static radix_cache *make_cache(fake_pool *fp, int page_tokens) {
    radix_cache_hooks h = {fp_ref, fp_unref, fp_count, fp};
    larder_error err;
    radix_cache *rc = radix_cache_create(page_tokens, h, &err);
    assert_non_null(rc);
    return rc;
}

static void check(radix_cache *rc) {
    larder_error err = {0};
    if (radix_cache_check(rc, &err)) fail_msg("%s", err.message);
}

static void test_match_returns_longest_prefix(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 4);
    int32_t toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint32_t pages[3];
    alloc_pages(fp, pages, 2);
    assert_int_equal(radix_cache_insert(rc, toks, 10, pages, false, NULL, NULL), 8); /* partial tail ignored */
    release_pages(fp, pages, 2);
    assert_int_equal(fp->refs[pages[0]], 1); /* the tree's reference */

    uint32_t got[4];
    int32_t q1[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assert_int_equal(radix_cache_match(rc, q1, 12, got, 4, NULL), 8);
    assert_int_equal(got[0], pages[0]);
    assert_int_equal(got[1], pages[1]);
    int32_t q2[8] = {1, 2, 3, 4, 5, 6, 0, 8};
    assert_int_equal(radix_cache_match(rc, q2, 8, got, 4, NULL), 6); /* ends 2 tokens into page 1 */
    assert_int_equal(got[1], pages[1]);
    int32_t q3[8] = {9, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(radix_cache_match(rc, q3, 8, got, 4, NULL), 0);
    assert_int_equal(radix_cache_match(rc, q1, 7, got, 4, NULL), 7); /* no further than the query */
    assert_int_equal(radix_cache_match(rc, q1, 12, got, 1, NULL), 4); /* max_pages respected */
    check(rc);
    radix_cache_destroy(rc);
    for (int i = 0; i < 2; i++) assert_int_equal(fp->refs[pages[i]], 0);
    free(fp);
}

static void test_shared_prefix_is_stored_once(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 2);
    /* Two conversations share the first 4 tokens (2 pages). */
    int32_t a[8] = {1, 2, 3, 4, 10, 11, 12, 13};
    int32_t b[8] = {1, 2, 3, 4, 20, 21, 22, 23};
    uint32_t pa[4], pb[4];
    alloc_pages(fp, pa, 4);
    assert_int_equal(radix_cache_insert(rc, a, 8, pa, false, NULL, NULL), 8);
    release_pages(fp, pa, 4);

    /* b reuses a's first two pages, as the engine would after a match. */
    uint32_t got[4];
    assert_int_equal(radix_cache_match(rc, b, 8, got, 4, NULL), 4);
    pb[0] = got[0]; fp_ref(fp, pb[0]);
    pb[1] = got[1]; fp_ref(fp, pb[1]);
    alloc_pages(fp, pb + 2, 2);
    assert_int_equal(radix_cache_insert(rc, b, 8, pb, false, NULL, NULL), 8);
    release_pages(fp, pb, 4);

    radix_cache_stats s = radix_cache_get_stats(rc);
    assert_int_equal(s.pages, 6);  /* 2 shared + 2 + 2, not 8 */
    assert_int_equal(s.leaves, 2);
    assert_int_equal(s.nodes, 3);
    assert_int_equal(fp->refs[pa[0]], 1);
    check(rc);
    radix_cache_destroy(rc);
    free(fp);
}

static void test_eviction_keeps_shared_prefix(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 2);
    int32_t sys[4] = {7, 7, 7, 7};
    uint32_t sp[2];
    alloc_pages(fp, sp, 2);
    radix_cache_insert(rc, sys, 4, sp, false, NULL, NULL);
    release_pages(fp, sp, 2);
    /* Three conversations under the shared system prompt, used at t=1,2,3. */
    for (int c = 0; c < 3; c++) {
        radix_cache_set_now(rc, (uint64_t)(c + 1));
        int32_t t[6] = {7, 7, 7, 7, 100 + c, 200 + c};
        uint32_t p[3] = {sp[0], sp[1], 0};
        fp_ref(fp, sp[0]);
        fp_ref(fp, sp[1]);
        alloc_pages(fp, p + 2, 1);
        assert_int_equal(radix_cache_insert(rc, t, 6, p, false, NULL, NULL), 6);
        release_pages(fp, p, 3);
    }
    assert_int_equal(radix_cache_get_stats(rc).leaves, 3);
    /* LRU: conversation 0 goes first, then 1; the shared prefix stays. */
    assert_int_equal(radix_cache_evict_one(rc), 1);
    int32_t q0[6] = {7, 7, 7, 7, 100, 200};
    int32_t q2[6] = {7, 7, 7, 7, 102, 202};
    uint32_t got[3];
    assert_int_equal(radix_cache_match(rc, q0, 6, got, 3, NULL), 4);
    assert_int_equal(radix_cache_match(rc, q2, 6, got, 3, NULL), 6);
    assert_int_equal(radix_cache_evict_one(rc), 1); /* conversation 1, the oldest now */
    assert_int_equal(radix_cache_evict_one(rc), 1); /* conversation 2 */
    assert_int_equal(radix_cache_match(rc, q2, 6, got, 3, NULL), 4); /* prefix still there */
    assert_int_equal(radix_cache_evict_one(rc), 2); /* finally the prefix */
    assert_int_equal(radix_cache_evict_one(rc), -1);
    assert_int_equal(radix_cache_get_stats(rc).pages, 0);
    for (uint32_t i = 0; i < fp->next; i++) assert_int_equal(fp->refs[i], 0);
    check(rc);
    radix_cache_destroy(rc);
    free(fp);
}

static void test_pinned_nodes_are_not_evicted(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 1);
    int32_t t[3] = {1, 2, 3};
    uint32_t p[3];
    alloc_pages(fp, p, 3);
    radix_node *node;
    radix_cache_insert(rc, t, 3, p, false, &node, NULL);
    radix_cache_pin(rc, node);
    /* The sequence still holds its pages: eviction would free nothing anyway. */
    assert_int_equal(radix_cache_evict_one(rc), -1);
    assert_int_equal(radix_cache_get_stats(rc).idle_pages, 0);
    radix_cache_unpin(rc, node);
    assert_int_equal(radix_cache_get_stats(rc).idle_pages, 3);
    /* Still referenced by the sequence: evicting frees no page. */
    assert_int_equal(radix_cache_evict_one(rc), 0);
    release_pages(fp, p, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(fp->refs[p[i]], 0);
    radix_cache_destroy(rc);
    free(fp);
}

static void test_split_keeps_pins_and_pages(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 1);
    int32_t a[4] = {1, 2, 3, 4};
    uint32_t pa[4];
    alloc_pages(fp, pa, 4);
    radix_node *na;
    radix_cache_insert(rc, a, 4, pa, false, &na, NULL);
    radix_cache_pin(rc, na);
    int32_t b[4] = {1, 2, 9, 9};
    uint32_t pb[4] = {pa[0], pa[1], 0, 0};
    fp_ref(fp, pa[0]);
    fp_ref(fp, pa[1]);
    alloc_pages(fp, pb + 2, 2);
    radix_cache_insert(rc, b, 4, pb, false, NULL, NULL); /* splits a's node after 2 pages */
    check(rc);
    /* b's leaf is unpinned and evictable; a's path is pinned. */
    release_pages(fp, pb, 4);
    assert_int_equal(radix_cache_evict_one(rc), 2);
    assert_int_equal(radix_cache_evict_one(rc), -1);
    radix_cache_unpin(rc, na);
    check(rc);
    release_pages(fp, pa, 4);
    assert_int_equal(radix_cache_clear_idle(rc), 4);
    assert_int_equal(radix_cache_get_stats(rc).nodes, 0);
    radix_cache_destroy(rc);
    free(fp);
}

static void test_trim_leaves_and_ttl(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 1);
    for (int c = 0; c < 5; c++) {
        radix_cache_set_now(rc, (uint64_t)(10 * c));
        int32_t t[2] = {c, c};
        uint32_t p[2];
        alloc_pages(fp, p, 2);
        radix_cache_insert(rc, t, 2, p, false, NULL, NULL);
        release_pages(fp, p, 2);
    }
    assert_int_equal(radix_cache_trim_leaves(rc, 3), 4);
    assert_int_equal(radix_cache_get_stats(rc).leaves, 3);
    assert_int_equal(radix_cache_evict_older_than(rc, 35), 4); /* used at 20 and 30 */
    assert_int_equal(radix_cache_get_stats(rc).leaves, 1);
    assert_int_equal(radix_cache_trim_leaves(rc, 0), 2);
    assert_int_equal(radix_cache_get_stats(rc).pages, 0);
    radix_cache_destroy(rc);
    free(fp);
}

/* Random inserts (half with tails), matches, pins and evictions: invariants
 * hold, the tree's page count equals the references it holds, nothing
 * leaks. */
static void test_random_workload_keeps_invariants(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 2);
    uint64_t rng = 12345;
    radix_node *pinned[8] = {0};
    for (int step = 0; step < 400; step++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int op = (int)(rng >> 60) % 4;
        radix_cache_set_now(rc, (uint64_t)step);
        int32_t toks[24];
        int len = 2 + (int)((rng >> 20) % 22);
        for (int i = 0; i < len; i++) toks[i] = (int32_t)((rng >> (i % 16)) & 3); /* few distinct prefixes */
        if (op <= 1 && fp->next + 16 < MAX_PAGES) {
            uint32_t pages[12], got[12];
            int32_t m = radix_cache_match(rc, toks, len, got, 12, NULL);
            for (int i = 0; i < m / 2; i++) { pages[i] = got[i]; fp_ref(fp, got[i]); }
            /* own pages from there on (a matched tail page is copied before
             * it is written, so it is never reused as is) */
            alloc_pages(fp, pages + m / 2, (len + 1) / 2 - m / 2);
            radix_node *n;
            bool want_tail = (rng >> 50) & 1;
            assert_int_equal(radix_cache_insert(rc, toks, len, pages, want_tail, &n, NULL),
                             (len / 2) * 2 + (want_tail && len % 2 && len >= 3));
            release_pages(fp, pages, (len + 1) / 2);
            int slot = (int)(rng >> 40) % 8;
            if (!pinned[slot]) { radix_cache_pin(rc, n); pinned[slot] = n; }
        } else if (op == 2) {
            int slot = (int)(rng >> 40) % 8;
            if (pinned[slot]) { radix_cache_unpin(rc, pinned[slot]); pinned[slot] = NULL; }
        } else {
            radix_cache_evict_one(rc);
        }
        check(rc);
        radix_cache_stats s = radix_cache_get_stats(rc);
        int64_t refs = 0;
        for (uint32_t i = 0; i < fp->next; i++) refs += fp->refs[i];
        assert_int_equal(refs, s.pages); /* only the tree holds pages between steps */
    }
    for (int i = 0; i < 8; i++) if (pinned[i]) radix_cache_unpin(rc, pinned[i]);
    radix_cache_clear_idle(rc);
    assert_int_equal(radix_cache_get_stats(rc).pages, 0);
    radix_cache_destroy(rc);
    free(fp);
}

/* A key's partial last page is kept as its node's tail: a later key gets the
 * tail's page for the tokens that agree; a key going on through a whole page
 * drops the tail it extends; a node can hold a tail and children. */
static void test_partial_page_tail(void **state) {
    (void)state;
    fake_pool *fp = calloc(1, sizeof *fp);
    radix_cache *rc = make_cache(fp, 4);
    int32_t a[14] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    uint32_t pa[3], got[4];
    alloc_pages(fp, pa, 3);
    assert_int_equal(radix_cache_insert(rc, a, 10, pa, true, NULL, NULL), 10);
    release_pages(fp, pa, 3);
    assert_int_equal(radix_cache_get_stats(rc).pages, 3);
    assert_int_equal(radix_cache_match(rc, a, 13, got, 4, NULL), 10);          /* whole tail */
    assert_int_equal(got[2], pa[2]);
    assert_int_equal(radix_cache_match(rc, a, 9, got, 4, NULL), 9);            /* part of it */
    assert_int_equal(radix_cache_match(rc, a, 13, got, 2, NULL), 8);           /* no room for its page */
    int32_t other[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 99};
    assert_int_equal(radix_cache_match(rc, other, 10, got, 4, NULL), 9);       /* agrees on one token */
    other[8] = 50;
    assert_int_equal(radix_cache_match(rc, other, 10, got, 4, NULL), 8);
    /* the same tokens but longer, with a whole page over the tail: tail dropped */
    uint32_t pb[4] = {pa[0], pa[1], 0, 0};
    fp_ref(fp, pa[0]), fp_ref(fp, pa[1]);
    alloc_pages(fp, pb + 2, 2);
    assert_int_equal(radix_cache_insert(rc, a, 14, pb, true, NULL, NULL), 14);
    release_pages(fp, pb, 4);
    assert_int_equal(fp->refs[pa[2]], 0);
    assert_int_equal(radix_cache_get_stats(rc).pages, 4);
    assert_int_equal(radix_cache_match(rc, a, 14, got, 4, NULL), 14);
    assert_int_equal(got[3], pb[3]);
    /* a branch ending mid-page after the first two pages: a tail beside a child */
    int32_t c[11] = {1, 2, 3, 4, 5, 6, 7, 8, 77, 78, 79};
    uint32_t pc[3] = {pa[0], pa[1], 0};
    fp_ref(fp, pa[0]), fp_ref(fp, pa[1]);
    alloc_pages(fp, pc + 2, 1);
    assert_int_equal(radix_cache_insert(rc, c, 11, pc, true, NULL, NULL), 11);
    release_pages(fp, pc, 3);
    check(rc);
    assert_int_equal(radix_cache_match(rc, c, 10, got, 4, NULL), 10);
    assert_int_equal(got[2], pc[2]);
    assert_int_equal(radix_cache_match(rc, a, 14, got, 4, NULL), 14);
    assert_int_equal(radix_cache_get_stats(rc).pages, 5);
    radix_cache_clear_idle(rc);
    for (uint32_t i = 0; i < fp->next; i++) assert_int_equal(fp->refs[i], 0);
    radix_cache_destroy(rc);
    free(fp);
}

static void test_create_rejects_bad_arguments(void **state) {
    (void)state;
    larder_error err = {0};
    radix_cache_hooks h = {fp_ref, fp_unref, NULL, NULL};
    assert_null(radix_cache_create(0, h, &err));
    assert_int_equal(err.code, ERR_INVALID);
    radix_cache_hooks none = {0};
    assert_null(radix_cache_create(16, none, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_returns_longest_prefix),
        cmocka_unit_test(test_shared_prefix_is_stored_once),
        cmocka_unit_test(test_eviction_keeps_shared_prefix),
        cmocka_unit_test(test_pinned_nodes_are_not_evicted),
        cmocka_unit_test(test_split_keeps_pins_and_pages),
        cmocka_unit_test(test_trim_leaves_and_ttl),
        cmocka_unit_test(test_random_workload_keeps_invariants),
        cmocka_unit_test(test_partial_page_tail),
        cmocka_unit_test(test_create_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
