/*
 * test_platform.c — base/platform.h and base/sort.h: both the branch this
 * system compiles (Linux here) and the portable fallback (platform.c
 * compiled a second time into this test with LARDER_PLATFORM_FALLBACK, its
 * functions renamed fb_*), which is what macOS and other systems get for
 * the condition-variable clock and page release:
 *   released pages read as zero, stay writable and leave the resident size;
 *   a timed wait on a platform condition variable times out after about
 *   the timeout (not at once, not much later);
 *   the resident size is reported (fallback: the peak only);
 *   the executable path names this test (fallback: unknown, -1);
 *   sort_r sorts like qsort for many sizes, with its context.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/platform.h"
#include "base/sort.h"
#include "base/timing.h"

#define platform_cond_init fb_platform_cond_init
#define platform_cond_deadline fb_platform_cond_deadline
#define platform_resident_bytes fb_platform_resident_bytes
#define platform_executable_path fb_platform_executable_path
#define platform_release_pages fb_platform_release_pages
#define LARDER_PLATFORM_FALLBACK
#include "base/platform.c"
#undef platform_cond_init
#undef platform_cond_deadline
#undef platform_resident_bytes
#undef platform_executable_path
#undef platform_release_pages

typedef struct platform_fns {
    int (*cond_init)(pthread_cond_t *);
    void (*cond_deadline)(struct timespec *, int64_t);
    void (*resident)(int64_t *, int64_t *);
    int64_t (*exe)(char *, size_t);
    int (*release)(void *, size_t);
    int fallback;
} platform_fns;

static const platform_fns native = {platform_cond_init, platform_cond_deadline, platform_resident_bytes,
                                    platform_executable_path, platform_release_pages, 0};
static const platform_fns fallback = {fb_platform_cond_init, fb_platform_cond_deadline, fb_platform_resident_bytes,
                                      fb_platform_executable_path, fb_platform_release_pages, 1};

static void check_release(const platform_fns *f) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 4096; /* 16 MiB of 4 KiB pages: far above the
                                                           * kernel's batching of RSS counts */
    uint8_t *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    int64_t rss0, peak0, rss1, peak1;
    memset(p, 0xab, n * page);
    f->resident(&rss0, &peak0);
    assert_int_equal(f->release(p + page, (n - 2) * page), 0);
    f->resident(&rss1, &peak1);
    assert_int_equal(p[0], 0xab);                      /* outside the range: kept */
    assert_int_equal(p[(n - 1) * page], 0xab);
    for (size_t i = page; i < (n - 1) * page; i += 97) assert_int_equal(p[i], 0);
    p[page + 5] = 7;                                   /* still writable */
    assert_int_equal(p[page + 5], 7);
    if (!f->fallback) assert_true(rss1 <= rss0 - (int64_t)((n - 2) * page) / 2); /* the memory left */
    munmap(p, n * page);
}

static void check_timed_wait(const platform_fns *f) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    assert_int_equal(f->cond_init(&c), 0);
    struct timespec ts;
    double t0 = timing_now_ms();
    f->cond_deadline(&ts, 120);
    pthread_mutex_lock(&m);
    int rc = 0;
    while (rc != ETIMEDOUT) rc = pthread_cond_timedwait(&c, &m, &ts);
    pthread_mutex_unlock(&m);
    double waited = timing_now_ms() - t0;
    assert_true(waited >= 100 && waited < 5000);
    f->cond_deadline(&ts, 1999); /* nanoseconds carried into seconds */
    assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    pthread_cond_destroy(&c);
}

static void check_identity(const platform_fns *f) {
    int64_t rss, peak;
    f->resident(&rss, &peak);
    assert_true(peak > 0);
    if (!f->fallback) assert_true(rss > 0 && rss <= peak);
    char path[4096];
    int64_t n = f->exe(path, sizeof path);
    if (f->fallback) {
        assert_int_equal(n, -1);
    } else {
        assert_true(n > 0 && (size_t)n == strlen(path) && path[0] == '/');
        assert_non_null(strstr(path, "test_platform"));
        assert_int_equal(f->exe(path, 4), -1); /* too small */
    }
}

static void test_native(void **state) {
    (void)state;
    check_release(&native);
    check_timed_wait(&native);
    check_identity(&native);
}

static void test_fallback(void **state) {
    (void)state;
    check_release(&fallback);
    check_timed_wait(&fallback);
    check_identity(&fallback);
}

static int cmp_int_ctx(const void *a, const void *b, void *ctx) {
    int x = *(const int *)a, y = *(const int *)b;
    (*(int *)ctx)++;
    return x < y ? -1 : x > y;
}
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

typedef struct rec {
    char name[10];
    int key;
} rec;
static int cmp_rec(const void *a, const void *b, void *ctx) {
    (*(int *)ctx)++;
    return cmp_int(&((const rec *)a)->key, &((const rec *)b)->key);
}

static void test_sort_r_matches_qsort(void **state) {
    (void)state;
    unsigned s = 12345;
    for (size_t n = 0; n < 300; n += n < 10 ? 1 : 37) {
        int a[300], b[300], calls = 0;
        for (size_t i = 0; i < n; i++) s = s * 1103515245u + 12345u, a[i] = b[i] = (int)(s >> 16) % 50 - 25;
        sort_r(a, n, sizeof *a, cmp_int_ctx, &calls);
        qsort(b, n, sizeof *b, cmp_int);
        assert_memory_equal(a, b, n * sizeof *a);
        if (n > 1) assert_true(calls > 0);
    }
    /* elements wider than a word, sorted by a field that is not first */
    rec r[5] = {{"e", 5}, {"a", 1}, {"d", 4}, {"b", 2}, {"c", 3}};
    int calls = 0;
    sort_r(r, 5, sizeof r[0], cmp_rec, &calls);
    for (int i = 0; i < 5; i++) assert_true(r[i].key == i + 1 && r[i].name[0] == 'a' + i);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_sort_r_matches_qsort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
