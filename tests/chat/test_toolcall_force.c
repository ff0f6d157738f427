/*
 * test_toolcall_force.c — the forced-call openers (toolcall_force_prefix,
 * the syntax table's force_head / force_tail) against the templates they
 * were taken from (shared/templates).
 *
 * For each template: it renders a conversation in which the assistant
 * called get_weather; the named opener must occur in that rendering
 * verbatim (the model was trained to write exactly that text), the any-tool
 * opener must begin the named one, and the opener followed by the rest of
 * the template's call — what a model continuing from the opener writes — is
 * parsed (whole, byte by byte, in random pieces: the harness) as one call of
 * get_weather with the template's arguments. A prompt that left the
 * reasoning block open gets the block closed first, and the answer has no
 * reasoning. Templates without a known call syntax, and names the opener
 * cannot hold, are refused.
 */
#include "test_toolcall_harness.h"

#include <cjson/cJSON.h>

#include "chat/chat_prompt.h"
#include "chat/toolcall_format.h"

static const char CALL_ARGS[] = "{\"city\": \"Paris\", \"days\": 3}";

/* One call; ids of 9 alphanumerics (Mistral's templates demand it). */
static const char MESSAGES[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
    "{\"id\":\"abcdefgh1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 3}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"abcdefgh1\",\"name\":\"get_weather\",\"content\":\"sunny\"}]";


static char *concat(const char *a, const char *b, size_t bn) {
    size_t an = strlen(a);
    char *s = malloc(an + bn + 1);
    assert_non_null(s);
    memcpy(s, a, an);
    memcpy(s + an, b, bn);
    s[an + bn] = '\0';
    return s;
}

/* Parses text (the opener and what follows) as the answer: one call of get_weather with CALL_ARGS. */
static void expect_call(const char *name, const toolcall_format *f, const char *text, bool in_reasoning) {
    toolcall_parser_options o = h_opts(f, TOOLS_JSON, in_reasoning);
    h_out r;
    h_run_all(&o, text, &r);
    if (r.n_calls != 1) fail_msg("%s: %zu calls from [%s] (content [%s])", name, r.n_calls, text, r.content);
    assert_string_equal(r.name[0], "get_weather");
    if (!h_json_equal(r.args[0], CALL_ARGS)) fail_msg("%s: arguments %s", name, r.args[0]);
    assert_string_equal(r.reasoning, "");
    h_out_free(&r);
}

/* end: where the template's call ends (a marker after the opener), NULL: its
 * call_close; `tail` instead of the rendering's rest: what follows the
 * opener when the call has no close marker to cut at. */
static void check_template(const char *name, const char *syntax, const char *end, const char *tail) {
    char *src = test_read_template(name);
    toolcall_format f = toolcall_format_from_template(src);
    assert_string_equal(toolcall_syntax_name(f.syntax), syntax);
    larder_error err = {0};
    char *text = h_render_template(name, src, MESSAGES);

    char *named = toolcall_force_prefix(&f, "get_weather", false, &err);
    char *any = toolcall_force_prefix(&f, NULL, false, &err);
    assert_non_null(named);
    assert_non_null(any);
    if (strncmp(named, any, strlen(any)) != 0) fail_msg("%s: any-tool opener [%s] does not begin [%s]", name, any, named);
    /* the named opener is what the template writes for the call (after the user's question:
     * tool instructions in the system part may quote markers) */
    const char *asked = strstr(text, "Weather in Paris?");
    assert_non_null(asked);
    const char *at = strstr(asked, named);
    if (!at) fail_msg("%s: the opener [%s] is not in the rendering:\n%s", name, named, text);
    const char *rest = at + strlen(named);
    size_t rest_len;
    if (tail) {
        rest = tail;
        rest_len = strlen(tail);
    } else {
        const char *close = strstr(rest, end ? end : f.call_close);
        assert_non_null(close);
        rest_len = (size_t)(close + strlen(end ? end : f.call_close) - rest);
    }
    char *answer = concat(named, rest, rest_len);
    print_message("%s: %s\n", name, answer);
    expect_call(name, &f, answer, false);
    free(answer);

    /* a prompt that opened the reasoning block: the opener closes it first */
    if (f.think_open) {
        char *closing = toolcall_force_prefix(&f, "get_weather", true, &err);
        assert_non_null(closing);
        assert_true(strncmp(closing, f.think_close, strlen(f.think_close)) == 0);
        answer = concat(closing, rest, rest_len);
        expect_call(name, &f, answer, true);
        free(answer);
        free(closing);
    }
    free(named);
    free(any);
    free(text);
    free(src);
}

static void test_openers_match_their_templates(void **state) {
    (void)state;
    check_template("Qwen-Qwen2.5-7B-Instruct", "hermes", NULL, NULL);
    check_template("Qwen-Qwen3-0.6B", "hermes", NULL, NULL);
    check_template("Qwen3-Coder", "xml_function", NULL, NULL);
    check_template("Qwen3.5-4B", "xml_function", NULL, NULL);
    check_template("MiniMax-M2", "minimax", NULL, NULL);
    check_template("GLM-4.6", "glm", NULL, NULL);
    check_template("GLM-4.7-Flash", "glm", NULL, NULL);
    check_template("moonshotai-Kimi-K2", "kimi", NULL, NULL);
    check_template("Kimi-K2-Instruct", "kimi", NULL, NULL);
    check_template("Kimi-K2-Thinking", "kimi", NULL, NULL);
    check_template("deepseek-ai-DeepSeek-V3.1", "deepseek", NULL, NULL);
    check_template("deepseek-ai-DeepSeek-V3.2", "dsml", NULL, NULL);
    check_template("openai-gpt-oss-120b", "harmony", NULL, NULL);
    check_template("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "command_r", NULL, NULL);
    check_template("Cohere2MoE", "command_r", NULL, NULL);
    check_template("CohereForAI-c4ai-command-r-plus-tool_use", "command_r_plus", "]```", NULL);
    check_template("google-gemma-4-31B-it", "gemma", NULL, NULL);
    check_template("unsloth-mistral-Devstral-Small-2507", "mistral", NULL, "{\"city\": \"Paris\", \"days\": 3}");
    check_template("Mistral-Small-3.2-24B-Instruct-2506", "mistral", NULL, "abcdefgh1[ARGS]{\"city\": \"Paris\", \"days\": 3}");
    check_template("mistralai-Ministral-3-14B-Reasoning-2512", "mistral", NULL, "{\"city\": \"Paris\", \"days\": 3}");
    check_template("mistralai-Mistral-Nemo-Instruct-2407", "mistral", NULL, " {\"city\": \"Paris\", \"days\": 3}}]");
    check_template("meta-llama-Llama-3.1-8B-Instruct", "llama3_json", NULL, " {\"city\": \"Paris\", \"days\": 3}}");
}

static void test_unforceable_and_bad_names_are_refused(void **state) {
    (void)state;
    char *src = test_read_template("google-gemma-2-2b-it");
    toolcall_format f = toolcall_format_from_template(src);
    assert_string_equal(toolcall_syntax_name(f.syntax), "none");
    larder_error err = {0};
    assert_null(toolcall_force_prefix(&f, NULL, false, &err));
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "cannot be forced"));
    free(src);
    src = test_read_template("Qwen-Qwen2.5-7B-Instruct");
    f = toolcall_format_from_template(src);
    const char *bad[] = {"", "read file", "a\"b", "x<y", "tab\tname"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (larder_error){0};
        assert_null(toolcall_force_prefix(&f, bad[i], false, &err));
        assert_int_equal(err.code, ERR_INVALID);
    }
    char longname[TOOLCALL_MAX_FORCED_NAME_BYTES + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(toolcall_force_prefix(&f, longname, false, &err));
    char *ok = toolcall_force_prefix(&f, "ns.tool-1:x", false, &err);
    assert_non_null(ok);
    assert_string_equal(ok, "<tool_call>\n{\"name\": \"ns.tool-1:x\", \"arguments\":");
    free(ok);
    free(src);
}

int main(void) {
    (void)h_expect;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openers_match_their_templates),
        cmocka_unit_test(test_unforceable_and_bad_names_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
