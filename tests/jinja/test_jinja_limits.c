/*
 * test_jinja_limits.c — every resource limit of the Jinja engine
 * (src/jinja/jinja.h) is hit by a hostile template and answered with an error
 * (ERR_LIMIT), never a crash or an unbounded allocation: template size, parse
 * nesting, loop iterations, macro recursion, evaluation nesting, output size,
 * memory, range() length, value nesting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "jinja/jinja.h"

/* Renders src (context JSON text ctx, limits lim); expects a failure with
 * code and a message containing needle. */
static void expect_limit(const char *src, const char *ctx, const jinja_limits *lim, int code, const char *needle) {
    larder_error err = {0};
    jinja_template *t = jinja_template_parse(src, strlen(src), &err);
    if (t) {
        jinja_render_options opt = {0};
        opt.limits = lim;
        char *out = jinja_render_json_text(t, ctx ? ctx : "{}", ctx ? strlen(ctx) : 2, &opt, NULL, &err);
        jinja_template_free(t);
        if (out) { free(out); fail_msg("render of %.60s should hit a limit", src); }
    }
    if (err.code != code) fail_msg("%.60s: code %d (%s), want %d", src, err.code, err.message, code);
    if (!strstr(err.message, needle)) fail_msg("%.60s: message [%s] lacks [%s]", src, err.message, needle);
}

static char *repeat(const char *a, int n, const char *mid, const char *b) {
    strbuf s = STRBUF_INIT;
    for (int i = 0; i < n; i++) strbuf_puts(&s, a);
    strbuf_puts(&s, mid);
    for (int i = 0; i < n; i++) strbuf_puts(&s, b);
    return strbuf_take(&s);
}

static void test_template_size_limit(void **st) {
    (void)st;
    size_t n = (size_t)JINJA_MAX_TEMPLATE_BYTES + 1;
    char *src = malloc(n + 1);
    assert_non_null(src);
    memset(src, 'x', n);
    src[n] = '\0';
    larder_error err = {0};
    assert_null(jinja_template_parse(src, n, &err));
    assert_int_equal(err.code, ERR_LIMIT);
    free(src);
}

static void test_parse_depth_limit(void **st) {
    (void)st;
    char *parens = repeat("(", JINJA_MAX_PARSE_DEPTH + 10, "1", ")");
    char *src = malloc(strlen(parens) + 8);
    sprintf(src, "{{ %s }}", parens);
    expect_limit(src, NULL, NULL, ERR_LIMIT, "deeper");
    free(src);
    free(parens);
    char *nots = repeat("not ", JINJA_MAX_PARSE_DEPTH + 10, "1", "");
    src = malloc(strlen(nots) + 8);
    sprintf(src, "{{ %s }}", nots);
    expect_limit(src, NULL, NULL, ERR_LIMIT, "deeper");
    free(src);
    free(nots);
    char *ifs = repeat("{% if 1 %}", JINJA_MAX_PARSE_DEPTH + 10, "x", "{% endif %}");
    expect_limit(ifs, NULL, NULL, ERR_LIMIT, "deeper");
    free(ifs);
    /* within the limit parses and renders */
    char *ok = repeat("(", 50, "1", ")");
    src = malloc(strlen(ok) + 8);
    sprintf(src, "{{ %s }}", ok);
    larder_error err = {0};
    jinja_template *t = jinja_template_parse(src, strlen(src), &err);
    assert_non_null(t);
    jinja_template_free(t);
    free(src);
    free(ok);
}

static void test_loop_iteration_limit(void **st) {
    (void)st;
    /* default limit: 100000 x 11 nested iterations */
    expect_limit("{% for i in range(100000) %}{% for j in range(11) %}{% endfor %}{% endfor %}", NULL, NULL, ERR_LIMIT,
                 "loop iterations");
    jinja_limits lim = {.max_loop_iterations = 10};
    expect_limit("{% for i in range(11) %}{% endfor %}", NULL, &lim, ERR_LIMIT, "more than 10 loop iterations");
}

static void test_macro_recursion_limit(void **st) {
    (void)st;
    expect_limit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, ERR_LIMIT, "macro calls nested deeper");
    jinja_limits lim = {.max_call_depth = 3};
    expect_limit("{% macro f(n) %}{{ f(n + 1) if n < 5 }}{% endmacro %}{{ f(0) }}", NULL, &lim, ERR_LIMIT, "deeper than 3");
}

static void test_eval_depth_limit(void **st) {
    (void)st;
    /* each recursive call nests ~150 evaluation levels (not not ... f()): the
     * evaluation bound trips before the call-depth bound */
    char *inner = repeat("not ", 150, "f(n + 1)", "");
    char *src = malloc(strlen(inner) + 128);
    sprintf(src, "{%% macro f(n) %%}{{ %s }}{%% endmacro %%}{{ f(0) }}", inner);
    expect_limit(src, NULL, NULL, ERR_LIMIT, "evaluation nested deeper");
    free(src);
    free(inner);
}

static void test_output_limit(void **st) {
    (void)st;
    expect_limit("{% for i in range(100000) %}{{ 'x' * 400 }}{% endfor %}", NULL, NULL, ERR_LIMIT, "output longer");
    jinja_limits lim = {.max_output_bytes = 100};
    expect_limit("{{ 'x' * 101 }}", NULL, &lim, ERR_LIMIT, "output longer than 100");
}

static void test_memory_limit(void **st) {
    (void)st;
    /* doubling a string 40 times would need a terabyte */
    jinja_limits lim = {.max_memory_bytes = 1 << 20};
    expect_limit("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL, &lim,
                 ERR_LIMIT, "memory");
    expect_limit("{{ ('x' * 1000000000) | length }}", NULL, NULL, ERR_LIMIT, "too large");
}

static void test_range_limit(void **st) {
    (void)st;
    expect_limit("{{ range(JINJA) }}", "{\"JINJA\": 100001}", NULL, ERR_LIMIT, "Range too big");
}

static void test_value_depth_limit(void **st) {
    (void)st;
    char *ctx = repeat("[", JINJA_MAX_VALUE_DEPTH + 5, "1", "]");
    char *full = malloc(strlen(ctx) + 16);
    sprintf(full, "{\"x\": %s}", ctx);
    expect_limit("{{ x | tojson }}", full, NULL, ERR_LIMIT, "nested deeper");
    free(full);
    free(ctx);
}

/* allow_mutation lets a list contain itself: printing and comparing stop at
 * JINJA_MAX_VALUE_DEPTH, tojson refuses; nothing recurses without bound. */
static void test_self_containing_list_is_bounded(void **st) {
    (void)st;
    const char *src = "{% set l = [1] %}{% set _ = l.append(l) %}{{ l | length }}|{{ (l | string)[:12] }}|{{ l == l }}";
    larder_error err = {0};
    jinja_template *t = jinja_template_parse(src, strlen(src), &err);
    assert_non_null(t);
    jinja_render_options opt = {0};
    opt.allow_mutation = true;
    char *out = jinja_render_json_text(t, "{}", 2, &opt, NULL, &err);
    if (!out) fail_msg("%s", err.message);
    assert_string_equal(out, "2|[1, [1, [1, |False");
    free(out);
    jinja_template_free(t);
    src = "{% set l = [1] %}{% set _ = l.append(l) %}{{ l | tojson }}";
    t = jinja_template_parse(src, strlen(src), &err);
    assert_non_null(t);
    out = jinja_render_json_text(t, "{}", 2, &opt, NULL, &err);
    assert_null(out);
    assert_int_equal(err.code, ERR_LIMIT);
    jinja_template_free(t);
}

/* mutate_own_values: items a template appends to its own lists live in the
 * render's arena, so max_memory_bytes bounds them; the same loop without
 * the append fits. */
static void test_appended_items_count_toward_memory(void **st) {
    (void)st;
    jinja_limits lim = {JINJA_MAX_LOOP_ITERATIONS, JINJA_MAX_CALL_DEPTH, JINJA_MAX_OUTPUT_BYTES, (size_t)2 << 20};
    jinja_render_options opt = {.mutate_own_values = true, .limits = &lim};
    const char *srcs[2] = {
        "{% set ns = namespace(l=[]) %}{% set s = 'x' %}{% for i in range(100000) %}{% endfor %}{{ ns.l | length }}",
        "{% set ns = namespace(l=[]) %}{% set s = 'x' %}{% for i in range(100000) %}{% set _ = ns.l.append(s) %}{% endfor %}{{ ns.l | length }}",
    };
    for (int k = 0; k < 2; k++) {
        larder_error err = {0};
        jinja_template *t = jinja_template_parse(srcs[k], strlen(srcs[k]), &err);
        assert_non_null(t);
        char *out = jinja_render_json_text(t, "{}", 2, &opt, NULL, &err);
        jinja_template_free(t);
        if (k == 0) {
            if (!out) fail_msg("the loop alone: %s", err.message);
            assert_string_equal(out, "0");
            free(out);
        } else {
            if (out) fail_msg("100000 appended items fit 2 MiB: %s", out);
            assert_int_equal(err.code, ERR_LIMIT);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_size_limit), cmocka_unit_test(test_parse_depth_limit),
        cmocka_unit_test(test_loop_iteration_limit), cmocka_unit_test(test_macro_recursion_limit),
        cmocka_unit_test(test_eval_depth_limit), cmocka_unit_test(test_output_limit),
        cmocka_unit_test(test_memory_limit), cmocka_unit_test(test_range_limit),
        cmocka_unit_test(test_value_depth_limit), cmocka_unit_test(test_self_containing_list_is_bounded),
        cmocka_unit_test(test_appended_items_count_toward_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
