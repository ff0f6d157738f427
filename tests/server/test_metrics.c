/*
 * test_metrics.c — Prometheus exposition: cumulative histogram buckets,
 * status counting, gauges and resident memory present.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/metrics.h"

static void test_histogram_buckets_are_cumulative(void **state) {
    (void)state;
    static metrics m;
    metrics_init(&m);
    metrics_observe_us(&m.ttft, 3000);     /* 0.003 s: first bucket */
    metrics_observe_us(&m.ttft, 70000);    /* 0.07 s: le=0.1 */
    metrics_observe_us(&m.ttft, 400000000);/* 400 s: +Inf only */
    metrics_count_status(&m, 200);
    metrics_count_status(&m, 200);
    metrics_count_status(&m, 418);
    metrics_gauges g = {.kv_bytes_total = 1024, .cache_entries = 3};
    strbuf out = STRBUF_INIT;
    metrics_render(&m, &g, &out);
    assert_false(out.failed);
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"));
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_bucket{le=\"0.1\"} 2\n"));
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_bucket{le=\"300\"} 2\n"));
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "larder_time_to_first_token_seconds_count 3\n"));
    assert_non_null(strstr(out.data, "larder_requests_total{status=\"200\"} 2\n"));
    assert_non_null(strstr(out.data, "larder_requests_total{status=\"other\"} 1\n"));
    assert_non_null(strstr(out.data, "larder_kv_pool_bytes_total 1024\n"));
    assert_non_null(strstr(out.data, "larder_cache_entries 3\n"));
    assert_non_null(strstr(out.data, "larder_resident_memory_bytes "));
    assert_null(strstr(out.data, "larder_resident_memory_bytes 0\n"));
    strbuf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_histogram_buckets_are_cumulative)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
