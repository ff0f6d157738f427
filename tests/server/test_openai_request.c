/*
 * test_openai_request.c — request bodies: defaults, every field's type and
 * range check (a table of bad bodies), the limits of openai_request.h held
 * at their constants, messages validation, invalid UTF-8 and malformed JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "server/openai_request.h"

static int parse(const char *body, openai_kind kind, openai_request *req, larder_error *err) {
    return openai_request_parse(body, strlen(body), kind, req, err);
}

static void expect_400(const char *body, openai_kind kind, const char *needle) {
    openai_request req;
    larder_error err = {0};
    if (parse(body, kind, &req, &err) == 0) fail_msg("accepted: %s", body);
    assert_int_equal(err.code, ERR_INVALID);
    if (!strstr(err.message, needle)) fail_msg("message '%s' lacks '%s'", err.message, needle);
}

static void test_chat_defaults(void **state) {
    (void)state;
    openai_request req;
    larder_error err = {0};
    assert_int_equal(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", OPENAI_CHAT, &req, &err), 0);
    assert_int_equal(req.max_tokens, -1);
    assert_true(req.temperature == 1.0 && req.top_p == 1.0 && req.repetition_penalty == 1.0);
    assert_int_equal(req.n, 1);
    assert_false(req.stream);
    assert_int_equal(cJSON_GetArraySize(req.messages), 1);
    openai_request_free(&req);
}

static void test_chat_all_fields(void **state) {
    (void)state;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"r\"}],"
        "\"max_completion_tokens\":7,\"temperature\":0,\"top_p\":0.5,\"top_k\":40,\"min_p\":0.05,"
        "\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"repetition_penalty\":1.1,"
        "\"logit_bias\":{\"15\":-100,\"7\":2.5},\"seed\":42,\"stop\":[\"a\",\"bc\"],\"n\":3,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"logprobs\":true,\"top_logprobs\":5,"
        "\"tools\":[],\"tool_choice\":\"auto\",\"unknown_field\":{\"x\":1}}";
    openai_request req;
    larder_error err = {0};
    if (parse(body, OPENAI_CHAT, &req, &err)) fail_msg("%s", err.message);
    assert_int_equal(req.max_tokens, 7);
    assert_true(req.temperature == 0 && req.top_p == 0.5 && req.min_p == 0.05);
    assert_int_equal(req.top_k, 40);
    assert_int_equal(req.n_logit_bias, 2);
    assert_int_equal(req.logit_bias[0].token, 15);
    assert_true(req.logit_bias[0].bias == -100.0f);
    assert_true(req.has_seed && req.seed == 42);
    assert_int_equal(req.n_stop, 2);
    assert_string_equal(req.stop[1], "bc");
    assert_int_equal(req.n, 3);
    assert_true(req.stream && req.include_usage && req.logprobs);
    assert_int_equal(req.top_logprobs, 5);
    assert_string_equal(req.model, "m");
    openai_request_free(&req);
}

static void test_completion_prompt_forms(void **state) {
    (void)state;
    openai_request req;
    larder_error err = {0};
    assert_int_equal(parse("{\"prompt\":\"hello\",\"stop\":\"x\",\"logprobs\":3}", OPENAI_COMPLETION, &req, &err), 0);
    assert_string_equal(req.prompt, "hello");
    assert_int_equal(req.n_stop, 1);
    assert_true(req.logprobs);
    assert_int_equal(req.top_logprobs, 3);
    openai_request_free(&req);
    assert_int_equal(parse("{\"prompt\":[1,2,3]}", OPENAI_COMPLETION, &req, &err), 0);
    assert_int_equal(req.n_prompt_ids, 3);
    assert_int_equal(req.prompt_ids[2], 3);
    openai_request_free(&req);
}

/* A body that must be refused with ERR_INVALID and a message holding needle. */
typedef struct bad_body {
    const char *json;
    openai_kind kind;
    const char *needle;
} bad_body;

/* A valid chat body, open for more fields. */
#define CHAT_HEAD "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
#define CHAT_WITH(fields) CHAT_HEAD fields "}"

static const bad_body BAD_BODIES[] = {
    {"{", OPENAI_CHAT, "not valid JSON"},
    {"[1]", OPENAI_CHAT, "JSON object"},
    {"{} x", OPENAI_CHAT, "trailing"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", OPENAI_CHAT, "UTF-8"},
    {"{\"messages\":[]}", OPENAI_CHAT, "must not be empty"},
    {"{}", OPENAI_CHAT, "'messages' is required"},
    {"{\"messages\":\"hi\"}", OPENAI_CHAT, "'messages' must be an array"},
    {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", OPENAI_CHAT, "unknown role"},
    {"{\"messages\":[{\"role\":\"user\"}]}", OPENAI_CHAT, "content' is required"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", OPENAI_CHAT, "not supported"},
    {CHAT_WITH("\"max_tokens\":\"10\""), OPENAI_CHAT, "'max_tokens' must be an integer"},
    {CHAT_WITH("\"max_tokens\":1.5"), OPENAI_CHAT, "'max_tokens' must be an integer"},
    {CHAT_WITH("\"temperature\":-1"), OPENAI_CHAT, "'temperature' must be between"},
    {CHAT_WITH("\"top_p\":true"), OPENAI_CHAT, "'top_p' must be a number"},
    {CHAT_WITH("\"stream\":1"), OPENAI_CHAT, "'stream' must be a boolean"},
    {CHAT_WITH("\"n\":0"), OPENAI_CHAT, "'n' must be between"},
    {CHAT_WITH("\"stop\":[1]"), OPENAI_CHAT, "'stop[0]' must be a string"},
    {CHAT_WITH("\"logit_bias\":{\"abc\":1}"), OPENAI_CHAT, "not a token id"},
    {CHAT_WITH("\"top_logprobs\":3"), OPENAI_CHAT, "requires 'logprobs'"},
    {CHAT_WITH("\"stream_options\":{\"include_usage\":\"yes\"}"), OPENAI_CHAT, "include_usage"},
    {"{\"prompt\":[1,-2]}", OPENAI_COMPLETION, "token ids"},
    {"{\"prompt\":{}}", OPENAI_COMPLETION, "'prompt' must be"},
    {"{}", OPENAI_COMPLETION, "'prompt' is required"},
    /* silent truncation and ambiguity are refused */
    {"{\"messages\":[{\"role\":\"user\\u0000x\",\"content\":\"x\"}]}", OPENAI_CHAT, "\\u0000"},
    {"{\"prompt\":\"a\\u0000b\"}", OPENAI_COMPLETION, "\\u0000"},
    {CHAT_WITH("\"max_tokens\":null,\"max_tokens\":1e999"), OPENAI_CHAT, "'max_tokens' appears twice"},
    {CHAT_WITH("\"stop\":[{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"a\":0}]"),
     OPENAI_CHAT, "'a' appears twice"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"role\":\"system\"}]}", OPENAI_CHAT, "'role' appears twice"},
    {CHAT_WITH("\"chat_template_kwargs\":{\"x\":{\"y\":[{\"z\":1,\"z\":2}]}}"), OPENAI_CHAT, "'z' appears twice"},
};

static void test_bad_bodies_name_the_field(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof BAD_BODIES / sizeof BAD_BODIES[0]; i++)
        expect_400(BAD_BODIES[i].json, BAD_BODIES[i].kind, BAD_BODIES[i].needle);
}

/* An escaped backslash before "u0000" is text, not a NUL; the same key in
 * two different objects is no duplicate. */
static void test_strict_json_has_no_false_alarms(void **state) {
    (void)state;
    openai_request req;
    larder_error err = {0};
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\\\u0000b\"},"
                     "{\"role\":\"user\",\"content\":\"c\"}],\"stop\":[\"\\\\\"]}";
    if (parse(ok, OPENAI_CHAT, &req, &err)) fail_msg("%s: %s", ok, err.message);
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(req.messages, 0), "content");
    assert_string_equal(c->valuestring, "a\\u0000b");
    openai_request_free(&req);
}

/* A limit of openai_request.h, held on both sides: the body built for
 * `bound` is accepted, the one for bound + 1 refused. The body is head,
 * then the items, then tail: for a list, `count` items (item_fmt printed
 * with each index, joined by sep); else one, item_fmt printed with count. */
typedef struct bound_case {
    openai_kind kind;
    const char *head, *item_fmt, *sep, *tail;
    bool list;
    int bound;
    const char *needle;   /* in the refusal's message */
} bound_case;

static const bound_case BOUNDS[] = {
    {OPENAI_CHAT, CHAT_HEAD "\"n\":", "%d", "", "}", false, OPENAI_MAX_CHOICES, "'n' must be between"},
    {OPENAI_CHAT, CHAT_HEAD "\"logprobs\":true,\"top_logprobs\":", "%d", "", "}", false, OPENAI_MAX_TOP_LOGPROBS,
     "'top_logprobs' must be between"},
    {OPENAI_COMPLETION, "{\"prompt\":\"p\",\"logprobs\":", "%d", "", "}", false, OPENAI_MAX_TOP_LOGPROBS,
     "'logprobs' must be between"},
    {OPENAI_COMPLETION, "{\"prompt\":\"p\",\"stop\":[", "\"s%d\"", ",", "]}", true, OPENAI_MAX_STOP_STRINGS, "'stop' has"},
    {OPENAI_COMPLETION, "{\"prompt\":\"p\",\"stop\":\"", "a", "", "\"}", true, OPENAI_MAX_STOP_BYTES, "longer than"},
    {OPENAI_COMPLETION, "{\"prompt\":\"p\",\"logit_bias\":{", "\"%d\":1", ",", "}}", true, OPENAI_MAX_LOGIT_BIAS,
     "'logit_bias' has"},
    {OPENAI_COMPLETION, "{\"prompt\":[", "%d", ",", "]}", true, OPENAI_MAX_PROMPT_IDS, "'prompt' has"},
};

static char *bound_body(const bound_case *c, int count) {
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, c->head);
    for (int i = 0; i < (c->list ? count : 1); i++) {
        if (i) strbuf_puts(&b, c->sep);
        strbuf_printf(&b, c->item_fmt, c->list ? i : count);
    }
    strbuf_puts(&b, c->tail);
    char *s = strbuf_take(&b);
    assert_non_null(s);
    return s;
}

static void test_limits_hold_at_their_constants(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof BOUNDS / sizeof BOUNDS[0]; i++) {
        const bound_case *c = &BOUNDS[i];
        char *at = bound_body(c, c->bound), *past = bound_body(c, c->bound + 1);
        openai_request req;
        larder_error err = {0};
        if (parse(at, c->kind, &req, &err)) fail_msg("refused at the bound (%d): %s", c->bound, err.message);
        openai_request_free(&req);
        expect_400(past, c->kind, c->needle);
        free(at);
        free(past);
    }
}

static void test_null_fields_count_as_absent(void **state) {
    (void)state;
    openai_request req;
    larder_error err = {0};
    assert_int_equal(parse("{\"prompt\":\"p\",\"max_tokens\":null,\"stop\":null,\"seed\":null}", OPENAI_COMPLETION, &req, &err), 0);
    assert_int_equal(req.max_tokens, -1);
    assert_int_equal(req.n_stop, 0);
    assert_false(req.has_seed);
    openai_request_free(&req);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_defaults),
        cmocka_unit_test(test_chat_all_fields),
        cmocka_unit_test(test_completion_prompt_forms),
        cmocka_unit_test(test_bad_bodies_name_the_field),
        cmocka_unit_test(test_strict_json_has_no_false_alarms),
        cmocka_unit_test(test_limits_hold_at_their_constants),
        cmocka_unit_test(test_null_fields_count_as_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
