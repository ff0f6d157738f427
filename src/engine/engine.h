/*
 * engine.h — the engine thread: admission, continuous batching, the prompt
 * cache and memory budgets, in one place.
 *
 * One thread owns the model's forward pass, the KV pool and the radix
 * cache, so none of them needs a lock. HTTP threads submit jobs (token ids
 * already rendered and tokenized) and read results from each job's channel
 * (engine/channel.h). The engine knows the model only as a forward function
 * over tokens placed in the pool's pages (model/forward.h; tests give it a
 * fake), and the vocabulary only as its size and end-of-generation ids.
 *
 * Every step the engine:
 *   1. takes new jobs from the submission queue (bounded: past --max-queue
 *      waiting jobs, engine_submit answers "busy" and the server sends 503);
 *   2. ends sequences whose channel was cancelled (client gone, stop string);
 *   3. admits waiting jobs while fewer than --parallel sequences run and the
 *      pool has room: the radix cache gives the longest cached prefix, whose
 *      pages the sequence references (never copies);
 *   4. builds one batch: one decode token for every generating sequence, then
 *      prefill chunks of the uncached prompt tails up to --batch-tokens;
 *   5. runs the forward pass, samples, pushes tokens to channels;
 *   6. finished sequences insert prompt + output into the cache (so the next
 *      turn of the conversation hits) and drop their references; the cache
 *      limits (--prompt-cache-size/-bytes/-ttl) are enforced right there.
 * When the pool runs out of pages mid-step, idle cache pages are evicted
 * first; if that is not enough the youngest running sequence is preempted:
 * its computed tokens go into the cache, its pages are released, and it waits
 * again at the head of the queue (resuming mostly from the cache).
 *
 * With a rotating window (--max-kv-size N --keep K) a token attends to the
 * first K tokens and the last N - K (itself included); pages wholly between
 * the two are dropped as the sequence moves on, so one sequence holds about
 * N tokens of KV however long it runs. A windowed sequence is cached up to
 * its first dropped page, and at most N tokens of it (its K/V beyond N
 * depend on the window, so they are only valid for the same --max-kv-size).
 *
 * A choice of n > 1 runs as n sequences; choices after the first start when
 * the first has computed the prompt, and find its pages in the cache.
 *
 * Pre-warming (engine_job.prefill_only, src/server/prewarm.h): a job that
 * computes its prompt's K/V into the cache and generates nothing. It is the
 * lowest priority there is: it is admitted only while no other job runs,
 * waits or is parked, one at a time, and the moment any other job arrives it
 * is stopped (the pages it computed stay cached) and goes back to the head
 * of its own list, to resume from the cache once the engine is idle again.
 * So it never shares a forward pass with a real request; a request that
 * arrives during a pre-warming step waits for that one step at most. At most
 * ENGINE_MAX_PREWARM_JOBS wait (newest first; the oldest is dropped). Its
 * channel gets one DONE event (prompt_tokens, cached_tokens = what the cache
 * held when it started) and nothing else.
 */
#ifndef LARDER_ENGINE_ENGINE_H
#define LARDER_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/channel.h"
#include "kv/kv_pool.h"
#include "model/forward.h"
#include "sample/sample.h"

/* Most end-of-generation ids an engine takes. */
#define ENGINE_MAX_EOG_TOKENS 64
/* Most pre-warming jobs waiting; a newer one drops the oldest. */
#define ENGINE_MAX_PREWARM_JOBS 16

typedef struct engine engine;
struct kv_disk;

typedef struct engine_config {
    kv_pool *pool;                  /* the whole KV pool, running + cached (not owned;
                                     * its page_tokens is the cache's page size) */
    forward_fn forward;             /* the model's forward pass over the pool's pages */
    void *forward_ctx;              /* its first argument (forward_batch_fn: a forward_ctx) */
    int32_t n_vocab;                /* rows of logits the forward pass writes */
    const int32_t *eog_tokens;      /* ids that end a generation (copied; at most */
    int32_t n_eog_tokens;           /* ENGINE_MAX_EOG_TOKENS) */
    int32_t ctx_tokens;             /* most tokens of one sequence */
    int32_t max_kv_tokens;          /* rotating window (0: none): a sequence keeps K/V */
    int32_t keep_tokens;            /* of its first keep_tokens and its last
                                     * max_kv_tokens - keep_tokens tokens */
    int32_t parallel;               /* most sequences computed together */
    int32_t batch_tokens;           /* most tokens in one forward pass */
    int32_t max_queue;              /* most jobs waiting for admission */
    int64_t cache_max_entries;      /* idle cached conversations kept (0: none) */
    size_t cache_max_bytes;         /* idle cached KV bytes kept (0: no limit) */
    double cache_ttl_s;             /* idle entries older than this go (0: no limit) */
    struct kv_disk *disk;           /* optional disk tier (kv/kv_disk.h; not owned): a finished
                                     * sequence's whole pages are saved there, and at admission a
                                     * prompt's next pages found there are restored into the cache
                                     * when reading is measured cheaper than computing them
                                     * (not with a rotating window) */
} engine_config;

/* What one request asks the engine to compute. */
typedef struct engine_job {
    const int32_t *prompt;          /* copied by engine_submit */
    int32_t n_prompt;
    int32_t n_choices;              /* 1..CHANNEL_MAX_CHOICES */
    int32_t max_tokens;             /* per choice; capped at the context's end */
    sampler_params sampling;        /* bias array copied by engine_submit */
    uint64_t seed;                  /* choice i uses seed + i */
    int32_t top_logprobs;           /* alternatives per token (0..20); -1: no logprobs */
    bool ignore_eos;
    bool prefill_only;              /* pre-warming (see above): n_choices 1, nothing sampled */
} engine_job;

/* A snapshot for /metrics and /v1/cache (taken under a lock). */
typedef struct engine_stats {
    int64_t kv_bytes_total, kv_bytes_running, kv_bytes_cached_idle, kv_bytes_free;
    int64_t page_bytes, pages_total, pages_free;
    int64_t cache_entries, cache_nodes, cache_pages, cache_evictions, cache_evicted_pages;
    int64_t cache_lookups, cache_hit_tokens, cache_lookup_tokens;
    int64_t running, waiting, preemptions;
    int64_t steps;
    double engine_busy_s;           /* time spent in steps */
    double cache_bookkeeping_s;     /* of which radix-cache work */
    int64_t prewarm_jobs;           /* pre-warming jobs that ran to their end */
    int64_t prewarm_stopped;        /* times one was stopped for a real request */
    int64_t prewarm_dropped;        /* dropped unrun (list full, or cache already held it) */
    int64_t prewarm_tokens;         /* tokens whose K/V pre-warming computed */
    int64_t prewarm_hit_tokens;     /* cached prompt tokens of real requests served from pages
                                     * pre-warming computed */
} engine_stats;

/* Creates the cache and starts the engine thread. */
engine *engine_start(const engine_config *cfg, larder_error *err);

/* Stops the thread (running jobs end with an error event) and frees. */
void engine_stop(engine *e);

/*
 * Queues a job whose output goes to ch (the engine releases its channel
 * reference when the job ends). Returns 0, or -1 with err:
 *   ERR_LIMIT   the queue is full (HTTP 503, retry later)
 *   ERR_INVALID the prompt does not fit the context or the pool (HTTP 400)
 * On failure ch is untouched (the caller still owns both references).
 */
int engine_submit(engine *e, const engine_job *job, channel *ch, larder_error *err);

engine_stats engine_get_stats(engine *e);

/* Drops every idle cached entry (DELETE /v1/cache); returns after it is done. */
void engine_clear_cache(engine *e);

/* Bytes of KV per token of the pool (for the start-up memory plan). */
size_t engine_kv_bytes_per_token(const engine *e);

#endif
