/*
 * metrics.c — atomic counters and fixed-bucket histograms, rendered as
 * Prometheus text (see metrics.h).
 */
#include "server/metrics.h"

#include "base/platform.h"

#include <stdio.h>
#include <string.h>

static const double latency_bounds_s[METRICS_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
/* Every status the server answers with (499: the client left before its answer). */
static const int status_codes[METRICS_STATUS_KINDS - 1] = {200, 204, 400, 401, 403, 404, 405, 408,
                                                           413, 415, 429, 499, 500, 501, 503};

void metrics_init(metrics *m) { memset(m, 0, sizeof *m); }

void metrics_count_status(metrics *m, int http_status) {
    int k = METRICS_STATUS_KINDS - 1;
    for (int i = 0; i < METRICS_STATUS_KINDS - 1; i++)
        if (status_codes[i] == http_status) k = i;
    atomic_fetch_add(&m->requests_by_status[k], 1);
}

void metrics_observe_us(metrics_histogram *h, int64_t us) {
    if (us < 0) us = 0;
    double s = (double)us / 1e6;
    int b = METRICS_LATENCY_BUCKETS;
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        if (s <= latency_bounds_s[i]) {
            b = i;
            break;
        }
    }
    atomic_fetch_add(&h->bucket[b], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)us);
}

void metrics_resident_bytes(int64_t *rss_bytes, int64_t *peak_bytes) {
    platform_resident_bytes(rss_bytes, peak_bytes);
}

static void render_histogram(strbuf *out, const char *name, const char *help, const metrics_histogram *h) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        cum += atomic_load(&h->bucket[i]);
        strbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, latency_bounds_s[i], (unsigned long long)cum);
    }
    cum += atomic_load(&h->bucket[METRICS_LATENCY_BUCKETS]);
    strbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    strbuf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_us) / 1e6, name,
                  (unsigned long long)atomic_load(&h->count));
}

static void counter(strbuf *out, const char *name, const char *help, uint64_t v) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static void gauge(strbuf *out, const char *name, const char *help, int64_t v) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, (long long)v);
}

void metrics_render(const metrics *m, const metrics_gauges *g, strbuf *out) {
    strbuf_puts(out, "# HELP larder_requests_total HTTP requests answered, by status.\n# TYPE larder_requests_total counter\n");
    for (int i = 0; i < METRICS_STATUS_KINDS; i++) {
        uint64_t v = atomic_load(&m->requests_by_status[i]);
        if (i < METRICS_STATUS_KINDS - 1)
            strbuf_printf(out, "larder_requests_total{status=\"%d\"} %llu\n", status_codes[i], (unsigned long long)v);
        else
            strbuf_printf(out, "larder_requests_total{status=\"other\"} %llu\n", (unsigned long long)v);
    }
    counter(out, "larder_prompt_tokens_total", "Prompt tokens of finished requests.", atomic_load(&m->prompt_tokens));
    counter(out, "larder_cached_prompt_tokens_total", "Prompt tokens served from the prompt cache.", atomic_load(&m->cached_prompt_tokens));
    counter(out, "larder_generated_tokens_total", "Tokens generated.", atomic_load(&m->generated_tokens));
    counter(out, "larder_preemptions_total", "Running sequences preempted for lack of KV pages.", atomic_load(&m->preemptions));
    render_histogram(out, "larder_time_to_first_token_seconds", "Time from request arrival to its first token.", &m->ttft);
    render_histogram(out, "larder_inter_token_latency_seconds", "Time between consecutive tokens of a request.", &m->inter_token);
    gauge(out, "larder_kv_pool_bytes_total", "KV pool budget (--kv-memory).", g->kv_bytes_total);
    gauge(out, "larder_kv_pool_bytes_running", "KV bytes held by running sequences.", g->kv_bytes_running);
    gauge(out, "larder_kv_pool_bytes_cached_idle", "KV bytes held only by the prompt cache.", g->kv_bytes_cached_idle);
    gauge(out, "larder_kv_pool_bytes_free", "KV bytes not in use.", g->kv_bytes_free);
    gauge(out, "larder_cache_entries", "Cached conversations (leaves of the radix tree).", g->cache_entries);
    counter(out, "larder_cache_evictions_total", "Cache entries evicted.", (uint64_t)g->cache_evictions);
    gauge(out, "larder_requests_running", "Requests being computed.", g->requests_running);
    gauge(out, "larder_requests_waiting", "Requests waiting for admission.", g->requests_waiting);
    int64_t rss, peak;
    metrics_resident_bytes(&rss, &peak);
    gauge(out, "larder_resident_memory_bytes", "Resident set size of the process.", rss);
    gauge(out, "larder_resident_memory_peak_bytes", "Peak resident set size of the process.", peak);
}
