/*
 * test_thread_pool.c — every run calls the task exactly once per thread
 * index, results written by tasks are visible to the caller, rapid
 * back-to-back runs and runs after the workers fell asleep both work, a
 * 1-thread pool runs inline, bad counts are rejected, and the split helper
 * covers a range exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/thread_pool.h"
#include "base/timing.h"

#define MAX_T 8

typedef struct {
    atomic_int calls[MAX_T];   /* calls per thread index in this run */
    int n_seen;                /* n_threads as the task saw it (thread 0 writes) */
    pthread_t tid[MAX_T];      /* which OS thread ran each index */
    int64_t sums[MAX_T];       /* per-thread partial sums, plain memory */
} run_record;

static void task_record(void *ctx, int i, int n) {
    run_record *r = ctx;
    atomic_fetch_add(&r->calls[i], 1);
    r->tid[i] = pthread_self();
    if (i == 0) r->n_seen = n;
    int64_t b, e, s = 0;
    thread_pool_split(1000003, i, n, &b, &e);
    for (int64_t k = b; k < e; k++) s += k;
    r->sums[i] = s;
}

static void check_run(thread_pool *pool, int n) {
    run_record r;
    memset(&r, 0, sizeof r);
    thread_pool_run(pool, task_record, &r);
    assert_int_equal(r.n_seen, n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&r.calls[i]), 1);
        total += r.sums[i];
    }
    for (int i = n; i < MAX_T; i++) assert_int_equal(atomic_load(&r.calls[i]), 0);
    assert_true(total == (int64_t)1000003 * 1000002 / 2);
    assert_true(pthread_equal(r.tid[0], pthread_self())); /* caller is thread 0 */
    for (int i = 1; i < n; i++) assert_false(pthread_equal(r.tid[i], pthread_self()));
}

static void test_each_index_runs_once(void **state) {
    (void)state;
    for (int n = 1; n <= 5; n++) { /* 4 and 5: more threads than the 2 cores of the test machine */
        larder_error err = {0};
        thread_pool *pool = thread_pool_create(n, &err);
        assert_non_null(pool);
        assert_int_equal(thread_pool_size(pool), n);
        for (int k = 0; k < 20; k++) check_run(pool, n);
        thread_pool_destroy(pool);
    }
}

typedef struct {
    int64_t *slots;   /* (n_threads) one counter per thread, plain memory */
} count_ctx;

static void task_count(void *ctx, int i, int n) {
    (void)n;
    count_ctx *c = ctx;
    c->slots[i]++;    /* plain increment: visibility must come from the pool */
}

static void test_many_rapid_runs(void **state) {
    (void)state;
    larder_error err = {0};
    thread_pool *pool = thread_pool_create(2, &err);
    assert_non_null(pool);
    int64_t slots[2] = {0};
    count_ctx c = {slots};
    const int runs = 20000;
    int64_t t0 = timing_now_us();
    for (int k = 0; k < runs; k++) thread_pool_run(pool, task_count, &c);
    int64_t dt = timing_now_us() - t0;
    for (int i = 0; i < 2; i++) assert_true(slots[i] == runs);
    printf("# %d empty runs on 2 threads: %.2f us per run\n", runs, (double)dt / runs);
    thread_pool_destroy(pool);
}

static void test_runs_after_workers_sleep(void **state) {
    (void)state;
    larder_error err = {0};
    thread_pool *pool = thread_pool_create(2, &err);
    assert_non_null(pool);
    for (int k = 0; k < 5; k++) {
        /* sleep well past the spin window so the worker sleeps on its condvar */
        struct timespec ts = {0, (THREAD_POOL_SPIN_US * 4 + 2000) * 1000L};
        nanosleep(&ts, NULL);
        check_run(pool, 2);
    }
    thread_pool_destroy(pool);
}

static void task_slow_worker(void *ctx, int i, int n) {
    (void)n;
    /* a worker finishes long after the caller: the caller must sleep and be woken */
    if (i == 1) {
        struct timespec ts = {0, (THREAD_POOL_SPIN_US * 4 + 2000) * 1000L};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static void test_caller_waits_for_slow_worker(void **state) {
    (void)state;
    larder_error err = {0};
    thread_pool *pool = thread_pool_create(2, &err);
    assert_non_null(pool);
    for (int k = 0; k < 3; k++) {
        atomic_int done = 0;
        thread_pool_run(pool, task_slow_worker, &done);
        assert_int_equal(atomic_load(&done), 2);
    }
    thread_pool_destroy(pool);
}

static void test_bad_counts_rejected(void **state) {
    (void)state;
    larder_error err = {0};
    assert_null(thread_pool_create(0, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.message, "thread count"));
    assert_null(thread_pool_create(THREAD_POOL_MAX_THREADS + 1, &err));
    assert_null(thread_pool_create(-3, NULL));
    thread_pool_destroy(NULL);
    /* creating and destroying without any run must not hang */
    thread_pool *pool = thread_pool_create(4, &err);
    assert_non_null(pool);
    thread_pool_destroy(pool);
}

static void test_split_covers_range(void **state) {
    (void)state;
    int64_t sizes[] = {0, 1, 2, 7, 64, 1001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int n = 1; n <= 9; n++) {
            int64_t expect = 0;
            for (int i = 0; i < n; i++) {
                int64_t b, e;
                thread_pool_split(sizes[s], i, n, &b, &e);
                assert_true(b == expect);
                assert_true(e >= b && e - b <= sizes[s] / n + 1);
                expect = e;
            }
            assert_true(expect == sizes[s]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_index_runs_once),
        cmocka_unit_test(test_many_rapid_runs),
        cmocka_unit_test(test_runs_after_workers_sleep),
        cmocka_unit_test(test_caller_waits_for_slow_worker),
        cmocka_unit_test(test_bad_counts_rejected),
        cmocka_unit_test(test_split_covers_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
