/*
 * metrics.h — the server's counters and histograms, rendered in Prometheus
 * text format for GET /metrics.
 *
 * Counters and histogram buckets are atomics, so HTTP threads and the engine
 * thread update them without locks. Gauges that belong to other owners (KV
 * pool bytes, cache entries) are read at render time through a callback, so
 * they are never stale copies.
 */
#ifndef LARDER_SERVER_METRICS_H
#define LARDER_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/strbuf.h"

/* Histogram bucket upper bounds in seconds (Prometheus `le`), plus +Inf. */
#define METRICS_LATENCY_BUCKETS 14

typedef struct metrics_histogram {
    atomic_uint_least64_t bucket[METRICS_LATENCY_BUCKETS + 1]; /* last: +Inf */
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum_us;
} metrics_histogram;

/* HTTP statuses counted one by one; others go to "other". */
#define METRICS_STATUS_KINDS 16

typedef struct metrics {
    atomic_uint_least64_t requests_by_status[METRICS_STATUS_KINDS]; /* 200 204 400 401 403 404 405 408 413 415 429 499 500 501 503 other */
    atomic_uint_least64_t prompt_tokens;
    atomic_uint_least64_t cached_prompt_tokens;
    atomic_uint_least64_t generated_tokens;
    atomic_uint_least64_t preemptions;
    metrics_histogram ttft;            /* time to first token, seconds */
    metrics_histogram inter_token;     /* time between streamed tokens, seconds */
} metrics;

/* Gauges read at render time (bytes and counts owned by the engine). */
typedef struct metrics_gauges {
    int64_t kv_bytes_total, kv_bytes_running, kv_bytes_cached_idle, kv_bytes_free;
    int64_t cache_entries, cache_evictions;
    int64_t requests_running, requests_waiting;
} metrics_gauges;

void metrics_init(metrics *m);
void metrics_count_status(metrics *m, int http_status);
void metrics_observe_us(metrics_histogram *h, int64_t us);

/* Appends the whole exposition (counters, histograms, gauges, resident memory
 * and its peak, from base/platform.h) to out. */
void metrics_render(const metrics *m, const metrics_gauges *g, strbuf *out);

/* Resident set size and its peak, in bytes (0 when unknown). */
void metrics_resident_bytes(int64_t *rss_bytes, int64_t *peak_bytes);

#endif
