/*
 * thread_pool.h — a fixed set of compute threads that run one task on every
 * thread at once ("fork-join"), with low dispatch latency.
 *
 * The forward pass calls thread_pool_run a few hundred times per decoded
 * token, each run lasting tens of microseconds, so waking threads must cost
 * far less than that. Key idea: a run is published by bumping an atomic
 * generation counter; idle workers spin on it for a short while
 * (THREAD_POOL_SPIN_US) and only then sleep on a condition variable, so
 * back-to-back runs never touch the kernel. The calling thread is thread 0
 * and does its share of the work; it then waits (spin, then sleep) until
 * every worker has finished.
 *
 * Use:
 *     thread_pool *pool = thread_pool_create(n_threads, &err);
 *     thread_pool_run(pool, my_task, &my_ctx);   // my_task(ctx, i, n) for i in 0..n-1
 *     thread_pool_destroy(pool);
 *
 * A task splits its work by thread index, e.g. with thread_pool_split. All
 * calls to thread_pool_run on one pool must come from one thread at a time
 * (the engine thread), and a task must not call thread_pool_run itself.
 * Memory written by the caller before thread_pool_run is visible to every
 * task, and memory written by tasks is visible to the caller after it returns.
 */
#ifndef LARDER_BASE_THREAD_POOL_H
#define LARDER_BASE_THREAD_POOL_H

#include <stdint.h>

#include "base/error.h"

/* Most threads a pool may have (caller included). Far above any core count
 * larder is run on; a bound so a mistyped --threads fails clearly. */
#define THREAD_POOL_MAX_THREADS 512

/* How long an idle worker (and a waiting caller) spins before sleeping, in
 * microseconds. Long enough to cover the gap between two runs of one
 * forward pass, short enough not to burn a core when the engine is idle. */
#define THREAD_POOL_SPIN_US 300

typedef struct thread_pool thread_pool;

/* One task: called once on every thread of the pool with its index
 * (0 = the caller of thread_pool_run) and the pool size. */
typedef void (*thread_pool_task)(void *ctx, int thread_index, int n_threads);

/* A pool of n_threads threads in total, the caller's included (so
 * n_threads - 1 workers are started). 1 <= n_threads <= THREAD_POOL_MAX_THREADS.
 * Returns NULL and fills err on a bad count or when a thread cannot start. */
thread_pool *thread_pool_create(int n_threads, larder_error *err);

/* Stops and joins the workers and frees the pool. NULL is a no-op. */
void thread_pool_destroy(thread_pool *pool);

/* Total number of threads (the caller's included). */
int thread_pool_size(const thread_pool *pool);

/* Runs fn(ctx, i, n) on every thread i of the pool (i = 0 on the calling
 * thread) and returns when all of them have returned. */
void thread_pool_run(thread_pool *pool, thread_pool_task fn, void *ctx);

/* Even split of n items over n_threads: thread i gets [*begin, *end).
 * The first n % n_threads threads get one item more. */
static inline void thread_pool_split(int64_t n, int thread_index, int n_threads,
                                     int64_t *begin, int64_t *end) {
    int64_t base = n / n_threads, extra = n % n_threads, i = thread_index;
    *begin = i * base + (i < extra ? i : extra);
    *end = *begin + base + (i < extra ? 1 : 0);
}

#endif
