/*
 * test_json_stream.c — tjson_stream (chat/toolcall_json.h), the validating
 * reader that lets tool-call arguments be sent while generated. Properties,
 * over a set of valid and invalid JSON texts and every prefix of them:
 *   - a valid text ends exactly at its end, with safe == its length;
 *   - after any prefix, text[0, safe) + closer is one valid JSON value, and
 *     safe never goes back as more text comes;
 *   - feeding the text in one piece or byte by byte gives the same states;
 *   - an invalid text is refused (tjson_value_end with utf8_valid_prefix agrees).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "chat/toolcall_json.h"

static const char *const VALID[] = {
    "{}", "[]", "{\"a\": 1}", "{\"a\": \"xy\\\"z\\\\\", \"b\": [1, -2.5e+3, 0, true, false, null, {}]}",
    "{\"path\": \"main.c\", \"lines\": [1, 2, 3], \"opts\": {\"deep\": [[{\"x\": \"\\u00e9\\n\"}]]}}",
    "{\"t\": \"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}", "  { \"a\" : [ ] , \"b\" : { } }", "{\"n\": -0.5E-7}",
    "[\"a\", [\"b\", [\"c\"]], 10]", "{\"k\": 123456789012345678901234567890}",
};
static const char *const INVALID[] = {
    "{a: 1}", "{\"a\" 1}", "{\"a\": tru}", "{\"a\": 01}", "{\"a\": 1,}", "[1,]", "{\"a\": \"x\\q\"}", "{\"a\": -}",
    "{\"a\": 1.}", "{\"a\": \"\x01\"}", "{\"a\": \"\xff\"}", "{\"a\": \"\xc3(\"}", "{,}", "[}", "{\"a\": 1]", "{\"a\": nul}",
    "{\"a\": \"\\u12g4\"}", "{\"a\": .5}",
};

static void check_prefixes(const char *text) {
    size_t n = strlen(text);
    tjson_stream whole, bytes;
    tjson_stream_init(&bytes);
    size_t last_safe = 0;
    for (size_t k = 0; k <= n; k++) {
        tjson_stream_init(&whole);
        int r = tjson_stream_feed(&whole, text, k);
        int rb = k ? tjson_stream_feed(&bytes, text + k - 1, 1) : 0;
        assert_int_equal(r, rb);
        assert_int_equal(whole.safe, bytes.safe);
        assert_int_equal(whole.closer_len, bytes.closer_len);
        assert_true(r >= 0);
        assert_true(whole.safe <= k);
        assert_true(whole.safe >= last_safe);
        last_safe = whole.safe;
        if (whole.safe > 0) {
            char buf[4096];
            assert_true(whole.safe + (size_t)whole.closer_len < sizeof buf);
            memcpy(buf, text, whole.safe);
            memcpy(buf + whole.safe, whole.closer, (size_t)whole.closer_len);
            assert_true(tjson_is_value(buf, whole.safe + (size_t)whole.closer_len));
        }
        if (k == n) {
            /* a value that ends with the text: whitespace may trail */
            size_t end = n;
            while (end > 0 && strchr(" \t\n\r", text[end - 1])) end--;
            assert_int_equal(r, 1);
            assert_int_equal(whole.pos, end);
            assert_int_equal(whole.safe, end);
        }
    }
}

static void test_valid_texts_every_prefix(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) {
        assert_true(tjson_is_value(VALID[i], strlen(VALID[i])));
        check_prefixes(VALID[i]);
    }
}

static void test_invalid_texts_are_refused(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof INVALID / sizeof *INVALID; i++) {
        tjson_stream st;
        tjson_stream_init(&st);
        int r = tjson_stream_feed(&st, INVALID[i], strlen(INVALID[i]));
        if (r != -1) fail_msg("accepted: %s", INVALID[i]);
        assert_true(st.bad);
        assert_int_equal(tjson_stream_feed(&st, "}", 1), -1);   /* stays refused */
        /* the whole-text check agrees (it leaves UTF-8 to utf8_valid_prefix) */
        size_t n = strlen(INVALID[i]);
        assert_false(tjson_is_value(INVALID[i], n) && utf8_valid_prefix(INVALID[i], n) == n);
        /* what was safe before the break still closes into a valid value */
        if (st.safe > 0) {
            char buf[256];
            memcpy(buf, INVALID[i], st.safe);
            memcpy(buf + st.safe, st.closer, (size_t)st.closer_len);
            assert_true(tjson_is_value(buf, st.safe + (size_t)st.closer_len));
        }
    }
}

static void test_depth_limit(void **state) {
    (void)state;
    char t[2 * TJSON_MAX_DEPTH + 8];
    size_t k = 0;
    for (int i = 0; i < TJSON_MAX_DEPTH + 1; i++) t[k++] = '[';
    t[k] = 0;
    tjson_stream st;
    tjson_stream_init(&st);
    assert_int_equal(tjson_stream_feed(&st, t, k), -1);
    assert_int_equal(st.safe, TJSON_MAX_DEPTH);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_texts_every_prefix),
        cmocka_unit_test(test_invalid_texts_are_refused),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
