/*
 * test_toolcall_templates.c — each tool-call syntax against the template it
 * was chosen from (shared/templates): the template renders a conversation
 * in which the assistant called two tools; the call block it wrote is fed to
 * the output parser (whole, byte by byte and in random pieces, through the
 * harness) and must come back as the same two calls — the same function
 * names and arguments equal as JSON (templates re-serialize them; XML-style
 * syntaxes type the values from the tool schema).
 */
#include "test_toolcall_harness.h"

#include <cjson/cJSON.h>

#include "chat/chat_prompt.h"
#include "chat/toolcall_format.h"

static const char CALL_ARGS_1[] = "{\"city\": \"Paris\", \"days\": 3}";
static const char CALL_ARGS_2[] = "{\"path\": \"a.txt\", \"content\": \"x\\ny \\\"q\\\" <b>\"}";

static const char MESSAGES[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Weather, then write it.\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 3}\"}},"
    "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"write_file\",\"arguments\":"
    "\"{\\\"path\\\": \\\"a.txt\\\", \\\"content\\\": \\\"x\\\\ny \\\\\\\"q\\\\\\\" <b>\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"ok\"},"
    "{\"role\":\"user\",\"content\":\"Thanks.\"}]";


/* n_calls: how many of the two calls the template writes (gpt-oss's writes the first only). */
static void check_template(const char *name, const char *syntax, size_t n_calls) {
    char *src = test_read_template(name);
    toolcall_format f = toolcall_format_from_template(src);
    assert_string_equal(toolcall_syntax_name(f.syntax), syntax);
    char *text = h_render_template(name, src, MESSAGES);
    /* the block the template wrote for the assistant's calls */
    /* (after the user's request: tool instructions in the system part may quote the markers) */
    const char *asked = strstr(text, "Weather, then write it.");
    assert_non_null(asked);
    const char *open = strstr(asked, f.call_open);
    if (!open) fail_msg("%s: no %s in the rendered prompt:\n%s", name, f.call_open, text);
    /* up to the last close marker before the first tool result (some syntaxes write one block per call) */
    const char *result = strstr(open, "sunny"), *close = NULL;
    assert_non_null(result);
    for (const char *c = strstr(open, f.call_close); c && c < result; c = strstr(c + 1, f.call_close)) close = c;
    assert_non_null(close);
    size_t n = (size_t)(close + strlen(f.call_close) - open);
    char *block = strndup(open, n);
    print_message("%s: %s\n", name, block);
    toolcall_parser_options o = h_opts(&f, TOOLS_JSON, false);
    h_out r;
    h_run_all(&o, block, &r);
    assert_string_equal(r.content, "");
    assert_int_equal(r.n_calls, n_calls);
    assert_string_equal(r.name[0], "get_weather");
    if (!h_json_equal(r.args[0], CALL_ARGS_1)) fail_msg("%s: arguments %s", name, r.args[0]);
    if (n_calls > 1) {
        assert_string_equal(r.name[1], "write_file");
        if (!h_json_equal(r.args[1], CALL_ARGS_2)) fail_msg("%s: arguments %s", name, r.args[1]);
    }
    h_out_free(&r);
    free(block);
    free(text);
    free(src);
}

static void test_new_syntaxes(void **state) {
    (void)state;
    check_template("moonshotai-Kimi-K2", "kimi", 2);
    /* these two queue the call ids with list.append / pop on a list of their own (mutate_own_values) */
    check_template("Kimi-K2-Instruct", "kimi", 2);
    check_template("Kimi-K2-Thinking", "kimi", 2);
    check_template("deepseek-ai-DeepSeek-V3.1", "deepseek", 2);
    check_template("deepseek-ai-DeepSeek-V3.2", "dsml", 2);
    check_template("openai-gpt-oss-120b", "harmony", 1);
    check_template("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "command_r", 2);
    check_template("Cohere2MoE", "command_r", 2);
    check_template("CohereForAI-c4ai-command-r-plus-tool_use", "command_r_plus", 2);
    check_template("google-gemma-4-31B-it", "gemma", 2);
    check_template("google-gemma-4-31B-it-interleaved", "gemma", 2);
}

static void test_known_syntaxes(void **state) {
    (void)state;
    check_template("Qwen-Qwen2.5-7B-Instruct", "hermes", 2);
    check_template("Qwen3-Coder", "xml_function", 2);
    check_template("MiniMax-M2", "minimax", 2);
    check_template("GLM-4.6", "glm", 2);
}

int main(void) {
    (void)h_expect; /* the harness's; not needed here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_syntaxes),
        cmocka_unit_test(test_known_syntaxes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
