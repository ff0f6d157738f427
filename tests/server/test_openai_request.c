/*
 * test_openai_request.c — request bodies: defaults, every field's type and
 * range check, messages validation, invalid UTF-8 and malformed JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

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

static void test_bad_bodies_name_the_field(void **state) {
    (void)state;
    expect_400("{", OPENAI_CHAT, "not valid JSON");
    expect_400("[1]", OPENAI_CHAT, "JSON object");
    expect_400("{} x", OPENAI_CHAT, "trailing");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", OPENAI_CHAT, "UTF-8");
    expect_400("{\"messages\":[]}", OPENAI_CHAT, "must not be empty");
    expect_400("{}", OPENAI_CHAT, "'messages' is required");
    expect_400("{\"messages\":\"hi\"}", OPENAI_CHAT, "'messages' must be an array");
    expect_400("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", OPENAI_CHAT, "unknown role");
    expect_400("{\"messages\":[{\"role\":\"user\"}]}", OPENAI_CHAT, "content' is required");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", OPENAI_CHAT, "not supported");
    const char *m = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
    snprintf(b, sizeof b, "{%s,\"max_tokens\":\"10\"}", m);
    expect_400(b, OPENAI_CHAT, "'max_tokens' must be an integer");
    snprintf(b, sizeof b, "{%s,\"max_tokens\":1.5}", m);
    expect_400(b, OPENAI_CHAT, "'max_tokens' must be an integer");
    snprintf(b, sizeof b, "{%s,\"temperature\":-1}", m);
    expect_400(b, OPENAI_CHAT, "'temperature' must be between");
    snprintf(b, sizeof b, "{%s,\"top_p\":true}", m);
    expect_400(b, OPENAI_CHAT, "'top_p' must be a number");
    snprintf(b, sizeof b, "{%s,\"stream\":1}", m);
    expect_400(b, OPENAI_CHAT, "'stream' must be a boolean");
    snprintf(b, sizeof b, "{%s,\"n\":0}", m);
    expect_400(b, OPENAI_CHAT, "'n' must be between");
    snprintf(b, sizeof b, "{%s,\"stop\":[1]}", m);
    expect_400(b, OPENAI_CHAT, "'stop[0]' must be a string");
    snprintf(b, sizeof b, "{%s,\"logit_bias\":{\"abc\":1}}", m);
    expect_400(b, OPENAI_CHAT, "not a token id");
    snprintf(b, sizeof b, "{%s,\"top_logprobs\":3}", m);
    expect_400(b, OPENAI_CHAT, "requires 'logprobs'");
    snprintf(b, sizeof b, "{%s,\"top_logprobs\":21,\"logprobs\":true}", m);
    expect_400(b, OPENAI_CHAT, "'top_logprobs' must be between");
    snprintf(b, sizeof b, "{%s,\"stream_options\":{\"include_usage\":\"yes\"}}", m);
    expect_400(b, OPENAI_CHAT, "include_usage");
    expect_400("{\"prompt\":[1,-2]}", OPENAI_COMPLETION, "token ids");
    expect_400("{\"prompt\":{}}", OPENAI_COMPLETION, "'prompt' must be");
    expect_400("{}", OPENAI_COMPLETION, "'prompt' is required");
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
        cmocka_unit_test(test_null_fields_count_as_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
