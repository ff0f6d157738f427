/*
 * thread_pool.c — fork-join pool: an atomic generation counter publishes each
 * run; workers spin on it briefly, then sleep on a condition variable.
 *
 * Protocol (all atomics sequentially consistent unless noted):
 *   caller:  fn, ctx = ...; pending = n-1; generation++;
 *            if (sleepers) broadcast(wake);          -- wakes sleeping workers
 *            fn(ctx, 0, n);
 *            wait until pending == 0 (spin, then sleep on `done`)
 *   worker:  wait until generation != seen (spin, then sleep on `wake`);
 *            fn(ctx, i, n); if (--pending == 0 && caller_sleeping) signal(done)
 * The sleep paths are Dekker-style: the sleeper announces itself (sleepers++ /
 * caller_sleeping = 1) under the mutex before re-checking the condition, and
 * the waker changes the condition before checking for sleepers, so with
 * sequentially consistent atomics at least one side sees the other and no
 * wake-up is lost. fn and ctx are plain fields: written before the
 * generation bump, read after observing it.
 */
#include "base/thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/timing.h"

/* Spin without yielding for this long first (microseconds): the common gap
 * between two runs of a forward pass is shorter. */
#define THREAD_POOL_PURE_SPIN_US 30

/* Keeps the spinning counters on their own cache lines (64-byte lines). */
#define CACHE_LINE_BYTES 64

struct thread_pool;

typedef struct worker {
    struct thread_pool *pool;
    int index;              /* 1..n_threads-1 */
    pthread_t thread;
    int started;            /* pthread_create succeeded */
} worker;

struct thread_pool {
    _Alignas(CACHE_LINE_BYTES) atomic_uint generation; /* bumped once per run (and at stop) */
    _Alignas(CACHE_LINE_BYTES) atomic_int pending;      /* workers still running this run */
    _Alignas(CACHE_LINE_BYTES) atomic_int sleepers;     /* workers asleep on `wake` */
    atomic_int caller_sleeping;                         /* caller asleep on `done` */
    atomic_int stop;                                    /* set by destroy */
    thread_pool_task fn;                                /* task of the current run */
    void *ctx;
    int n_threads;                                      /* caller included */
    pthread_mutex_t mutex;
    pthread_cond_t wake;                                /* workers: new generation */
    pthread_cond_t done;                                /* caller: pending reached 0 */
    worker *workers;                                    /* (n_threads - 1) */
};

/* A hint to the core that this is a spin loop (saves power, frees the
 * sibling hyper-thread). */
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Called every 256 spins: true once the spin window has passed. Past the
 * first THREAD_POOL_PURE_SPIN_US the spinner also yields its core, so when
 * there are more runnable threads than cores (a busy machine, or more
 * threads than cores) the thread we are waiting for gets to run. */
static bool spin_should_stop(int64_t t0) {
    int64_t waited = timing_now_us() - t0;
    if (waited > THREAD_POOL_SPIN_US) return true;
    if (waited > THREAD_POOL_PURE_SPIN_US) sched_yield();
    return false;
}

/* Waits until the generation differs from `seen`; returns the new value. */
static unsigned worker_wait_generation(thread_pool *pool, unsigned seen) {
    int64_t t0 = timing_now_us();
    for (unsigned i = 1;; i++) {
        unsigned g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 255) == 0 && spin_should_stop(t0)) break;
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add(&pool->sleepers, 1);
    unsigned g;
    while ((g = atomic_load(&pool->generation)) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    thread_pool *pool = w->pool;
    unsigned seen = 0; /* generation starts at 0: nothing published yet */
    for (;;) {
        seen = worker_wait_generation(pool, seen);
        if (atomic_load(&pool->stop)) break;
        pool->fn(pool->ctx, w->index, pool->n_threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return NULL;
}

/* Caller side: waits until every worker has finished the current run. */
static void pool_wait_done(thread_pool *pool) {
    int64_t t0 = timing_now_us();
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) return;
        cpu_relax();
        if ((i & 255) == 0 && spin_should_stop(t0)) break;
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->caller_sleeping, 1);
    while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->done, &pool->mutex);
    atomic_store(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->mutex);
}

/* Publishes a new generation and wakes sleeping workers. */
static void pool_publish(thread_pool *pool) {
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
}

static void pool_stop_workers(thread_pool *pool) {
    atomic_store(&pool->stop, 1);
    pool_publish(pool);
    for (int i = 0; i < pool->n_threads - 1; i++)
        if (pool->workers[i].started) pthread_join(pool->workers[i].thread, NULL);
}

thread_pool *thread_pool_create(int n_threads, larder_error *err) {
    if (n_threads < 1 || n_threads > THREAD_POOL_MAX_THREADS) {
        error_set(err, ERR_INVALID, "thread count %d out of range 1..%d", n_threads,
                  THREAD_POOL_MAX_THREADS);
        return NULL;
    }
    thread_pool *pool = aligned_alloc(CACHE_LINE_BYTES, (sizeof *pool + CACHE_LINE_BYTES - 1) /
                                                            CACHE_LINE_BYTES * CACHE_LINE_BYTES);
    if (!pool) {
        error_set(err, ERR_NOMEM, "out of memory creating a thread pool");
        return NULL;
    }
    memset(pool, 0, sizeof *pool);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_sleeping, 0);
    atomic_init(&pool->stop, 0);
    pool->n_threads = n_threads;
    if (pthread_mutex_init(&pool->mutex, NULL) != 0) {
        free(pool);
        error_set(err, ERR_NOMEM, "cannot create a mutex for the thread pool");
        return NULL;
    }
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->mutex);
        free(pool);
        error_set(err, ERR_NOMEM, "cannot create a condition variable for the thread pool");
        return NULL;
    }
    if (pthread_cond_init(&pool->done, NULL) != 0) {
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->mutex);
        free(pool);
        error_set(err, ERR_NOMEM, "cannot create a condition variable for the thread pool");
        return NULL;
    }
    if (n_threads > 1) {
        pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
        if (!pool->workers) {
            thread_pool_destroy(pool);
            error_set(err, ERR_NOMEM, "out of memory creating %d threads", n_threads);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            worker *w = &pool->workers[i];
            w->pool = pool;
            w->index = i + 1;
            int rc = pthread_create(&w->thread, NULL, worker_main, w);
            if (rc != 0) {
                thread_pool_destroy(pool);
                error_set(err, ERR_NOMEM, "cannot start compute thread %d of %d: %s", i + 2,
                          n_threads, strerror(rc));
                return NULL;
            }
            w->started = 1;
        }
    }
    return pool;
}

void thread_pool_destroy(thread_pool *pool) {
    if (!pool) return;
    if (pool->workers) pool_stop_workers(pool);
    free(pool->workers);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool);
}

int thread_pool_size(const thread_pool *pool) { return pool->n_threads; }

void thread_pool_run(thread_pool *pool, thread_pool_task fn, void *ctx) {
    if (pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n_threads - 1);
    pool_publish(pool);
    fn(ctx, 0, pool->n_threads);
    pool_wait_done(pool);
}
