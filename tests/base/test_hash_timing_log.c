/*
 * test_hash_timing_log.c — the hash is deterministic and spreads its low
 * bits; the monotonic clock advances; log lines are leveled, timestamped,
 * one line each, and truncated at LOG_LINE_MAX_BYTES.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/timing.h"

static void test_hash_deterministic_and_spread(void **state) {
    (void)state;
    assert_true(hash_string("abc") == hash_bytes("abc", 3));
    assert_true(hash_string("abc") != hash_string("abd"));
    assert_true(hash_bytes("a\0b", 3) != hash_bytes("a\0c", 3));
    assert_true(hash_bytes("", 0) != hash_bytes("\0", 1));
    /* 4096 keys into 1024 buckets by the low bits: no bucket badly overfull. */
    int buckets[1024] = {0};
    char key[32];
    for (int i = 0; i < 4096; i++) {
        snprintf(key, sizeof key, "blk.%d.attn_q.weight", i);
        buckets[hash_string(key) & 1023]++;
    }
    for (int b = 0; b < 1024; b++) assert_true(buckets[b] < 16);
    assert_true(hash_combine(1, 2) != hash_combine(2, 1));
}

static void test_monotonic_clock_advances(void **state) {
    (void)state;
    int64_t a = timing_now_us();
    double ma = timing_now_ms();
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    int64_t b = timing_now_us();
    assert_true(b - a >= 2000);
    assert_true(timing_now_ms() - ma >= 2.0);
    assert_true(timing_unix_s() > 1600000000);
}

static char *read_all(FILE *fp) {
    fflush(fp);
    long n = ftell(fp);
    char *s = calloc((size_t)n + 1, 1);
    rewind(fp);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    return s;
}

static void test_log_levels_and_truncation(void **state) {
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    log_set_fd(fileno(fp));
    log_set_level(LOG_INFO);
    log_debug("hidden %d", 1);
    log_info("shown %d", 2);
    log_error("bad %s", "thing");
    char *big = malloc(LOG_LINE_MAX_BYTES * 2);
    memset(big, 'x', LOG_LINE_MAX_BYTES * 2 - 1);
    big[LOG_LINE_MAX_BYTES * 2 - 1] = '\0';
    log_warn("%s", big);
    free(big);
    log_set_fd(2);
    char *s = read_all(fp);
    fclose(fp);
    assert_null(strstr(s, "hidden"));
    char *l1 = strstr(s, " I shown 2\n");
    assert_non_null(l1);
    assert_non_null(strstr(s, " E bad thing\n"));
    /* Timestamp: 2024-05-01T12:00:00.123Z */
    assert_true(s[4] == '-' && s[10] == 'T' && s[23] == 'Z');
    char *w = strstr(s, " W x");
    assert_non_null(w);
    char *nl = strchr(w, '\n');
    assert_non_null(nl);
    assert_true(nl[1] == '\0');
    assert_true((size_t)(nl - s) < 3 * LOG_LINE_MAX_BYTES);
    size_t line_start = 0;
    for (char *p = w; p > s && p[-1] != '\n'; p--) line_start++;
    assert_true((size_t)(nl - w) + line_start + 1 <= LOG_LINE_MAX_BYTES);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_deterministic_and_spread),
        cmocka_unit_test(test_monotonic_clock_advances),
        cmocka_unit_test(test_log_levels_and_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
