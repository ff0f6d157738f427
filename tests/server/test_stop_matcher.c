/*
 * test_stop_matcher.c — stop strings across piece boundaries: never emitted,
 * text before them released, held-back tails released at the end, earliest
 * of several stops wins, feeding byte by byte equals feeding whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/stop_matcher.h"

static char *run(char *const *stops, int n, const char *const *pieces, int n_pieces, bool *matched) {
    stop_matcher m;
    stop_matcher_init(&m, stops, n);
    strbuf out = STRBUF_INIT;
    *matched = false;
    for (int i = 0; i < n_pieces && !*matched; i++) *matched = stop_matcher_feed(&m, pieces[i], strlen(pieces[i]), &out);
    if (!*matched) stop_matcher_flush(&m, &out);
    stop_matcher_free(&m);
    return strbuf_take(&out);
}

static void test_stop_across_pieces(void **state) {
    (void)state;
    char *stops[] = {"END", "\n\n"};
    const char *pieces[] = {"Hello wor", "ld E", "N", "D more"};
    bool matched;
    char *s = run(stops, 2, pieces, 4, &matched);
    assert_true(matched);
    assert_string_equal(s, "Hello world ");
    free(s);
    const char *p2[] = {"a\n", "\nEND"};
    s = run(stops, 2, p2, 2, &matched);
    assert_true(matched);
    assert_string_equal(s, "a");
    free(s);
}

static void test_partial_stop_released_at_end(void **state) {
    (void)state;
    char *stops[] = {"STOP"};
    const char *pieces[] = {"abc ST", "O"};
    bool matched;
    char *s = run(stops, 1, pieces, 2, &matched);
    assert_false(matched);
    assert_string_equal(s, "abc STO");
    free(s);
}

static void test_byte_by_byte_equals_whole(void **state) {
    (void)state;
    char *stops[] = {"<|x|>", "xyz", "日本"};
    const char *text = "one <|x two xy three 日 本 four xyz five";
    const char *whole[] = {text};
    bool m1, m2;
    char *a = run(stops, 3, whole, 1, &m1);
    const char *bytes[64];
    char buf[64][2];
    int n = (int)strlen(text);
    for (int i = 0; i < n; i++) { buf[i][0] = text[i]; buf[i][1] = 0; bytes[i] = buf[i]; }
    char *b = run(stops, 3, bytes, n, &m2);
    assert_true(m1 && m2);
    assert_string_equal(a, b);
    assert_string_equal(a, "one <|x two xy three 日 本 four ");
    free(a);
    free(b);
}

static void test_no_stops_passes_through(void **state) {
    (void)state;
    const char *pieces[] = {"a", "b"};
    bool matched;
    char *s = run(NULL, 0, pieces, 2, &matched);
    assert_string_equal(s, "ab");
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_across_pieces),
        cmocka_unit_test(test_partial_stop_released_at_end),
        cmocka_unit_test(test_byte_by_byte_equals_whole),
        cmocka_unit_test(test_no_stops_passes_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
