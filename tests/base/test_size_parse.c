/*
 * test_size_parse.c — sizes with 1024-based suffixes parse exactly; garbage,
 * signs and overflow are rejected with a message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/size_parse.h"

static uint64_t parse_ok(const char *s) {
    uint64_t v = 0;
    larder_error err = {0};
    if (size_parse(s, &v, &err) != 0) fail_msg("'%s' rejected: %s", s, err.message);
    return v;
}

static void test_units_are_1024_based(void **state) {
    (void)state;
    assert_true(parse_ok("0") == 0);
    assert_true(parse_ok("512") == 512);
    assert_true(parse_ok("512B") == 512);
    assert_true(parse_ok("512KiB") == 512 * 1024);
    assert_true(parse_ok("32M") == 32ULL << 20);
    assert_true(parse_ok("32mb") == 32ULL << 20);
    assert_true(parse_ok("1GiB") == 1ULL << 30);
    assert_true(parse_ok("1g") == 1ULL << 30);
    assert_true(parse_ok("2T") == 2ULL << 40);
    assert_true(parse_ok("1.5G") == 1610612736ULL);
    assert_true(parse_ok(".5K") == 512);
    assert_true(parse_ok("0.1K") == 102); /* rounded down to whole bytes */
    assert_true(parse_ok("16777215T") == 16777215ULL << 40);
}

static void test_garbage_and_overflow_rejected(void **state) {
    (void)state;
    const char *bad[] = {"", "G", "-1", "+1", "1.5", "1.", "1 G", "1GG", "1Q", "abc", "1e9", "0x10",
                         "18446744073709551616", "16777216T", "99999999999999999999999K", ".K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 77;
        larder_error err = {0};
        if (size_parse(bad[i], &v, &err) == 0) fail_msg("'%s' accepted as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(err.code, ERR_INVALID);
        assert_true(strlen(err.message) > 0);
        assert_true(v == 77);
    }
    uint64_t v;
    assert_int_not_equal(size_parse(NULL, &v, NULL), 0);
}

static void test_format(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(size_format(512, buf, sizeof buf), "512 B");
    assert_string_equal(size_format(1536, buf, sizeof buf), "1.50 KiB");
    assert_string_equal(size_format(3ULL << 30, buf, sizeof buf), "3.00 GiB");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_are_1024_based),
        cmocka_unit_test(test_garbage_and_overflow_rejected),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
