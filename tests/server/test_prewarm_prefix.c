/*
 * test_prewarm_prefix.c — what pre-warming computes (prewarm_prefix_tokens)
 * is a prefix of the request the client sends next, for real templates
 * (shared/templates) that rewrite history: the next request renders the
 * conversation with the assistant's answer and a new message (a user
 * message after a plain answer, a tool result after tool calls), and its
 * tokens must start with the pre-warmed ones, leaving only the new message
 * and the generation prompt to compute.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/prewarm.h"
#include "tokenizer/tokenizer.h"
#include "test_files.h"


static tokenizer *g_tok;

static int setup(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-qwen2.gguf", test_shared_dir());
    larder_error err = {0};
    g_tok = tokenizer_load_file(path, &err);
    if (!g_tok) fail_msg("%s: %s", path, err.message);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(g_tok);
    return 0;
}

static const char *HISTORY =
    "[{\"role\":\"system\",\"content\":\"You are a coding agent.\"},"
    "{\"role\":\"user\",\"content\":\"What does main.c do?\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"reasoning_content\":\"I should read main.c first.\","
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"read\",\"arguments\":\"{\\\"filePath\\\":\\\"/p/main.c\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"1: int main(void) { return helper(2); }\"}]";
static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"read\",\"description\":\"Read a file\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"filePath\":{\"type\":\"string\"}},\"required\":[\"filePath\"]}}}]";

/* The next request's tokens as the server would build them: messages +
 * answer + next message, with the generation prompt; with empty_content an
 * answer without content is sent back with content "" (as OpenCode does),
 * else null (as the openai client does). -1 when the template raises. */
static int next_request_tokens(const chat_prompt *cp, const prewarm_turn *turn, const char *next_json, bool empty_content,
                               token_list *out) {
    cJSON *msgs = prewarm_next_messages(turn);
    assert_non_null(msgs);
    cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1); /* the placeholder */
    cJSON *answer = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    if (empty_content && cJSON_IsNull(cJSON_GetObjectItem(answer, "content")))
        cJSON_ReplaceItemInObject(answer, "content", cJSON_CreateString(""));
    cJSON_AddItemToArray(msgs, cJSON_Parse(next_json));
    chat_prompt_input in = {msgs, turn->tools, NULL, NULL};
    size_t len = 0;
    larder_error err = {0};
    char *text = chat_prompt_render(cp, &in, &len, &err);
    cJSON_Delete(msgs);
    if (!text) return -1;
    assert_int_equal(tokenizer_encode(g_tok, text, len, TOKENIZE_PARSE_SPECIAL, out, &err), 0);
    free(text);
    return 0;
}

static void check_template(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/%s.jinja", test_shared_dir(), name);
    char *src = test_read_file(path);
    larder_error err = {0};
    chat_prompt *cp = chat_prompt_create(src, "", "<|im_end|>", &err);
    if (!cp) fail_msg("%s: %s", name, err.message);
    cJSON *history = cJSON_Parse(HISTORY), *tools = cJSON_Parse(TOOLS);
    char id[] = "call_abc", fn[] = "read", args[] = "{\"filePath\":\"/p/helper.c\"}";
    toolcall_call call = {id, fn, args};
    const struct {
        toolcall_result answer;
        const char *next;
    } cases[] = {
        /* a plain answer with reasoning: the user speaks next */
        {{"It calls helper(2).", 18, "main.c returns helper(2); done.", 31, NULL, 0},
         "{\"role\":\"user\",\"content\":\"And what does helper do, exactly?\"}"},
        /* an answer ending in a tool call: its result comes next */
        {{"", 0, "Now read helper.c.", 18, &call, 1},
         "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"name\":\"read\",\"content\":\"1: int helper(int x) { return x; }\"}"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        prewarm_turn turn = {history, tools, NULL, NULL, cases[c].answer};
        int rendered = 0;
        for (int empty = 0; empty < 2; empty++) { /* the answer sent back as null, then as "" */
            token_list prefix = {0}, full = {0};
            if (next_request_tokens(cp, &turn, cases[c].next, empty, &full)) continue; /* the template refuses it */
            rendered++;
            int rc = prewarm_prefix_tokens(cp, g_tok, &turn, empty, &prefix, &err);
            if (rc == 1) rc = prewarm_prefix_tokens(cp, g_tok, &turn, false, &prefix, &err); /* one shape only */
            if (rc) fail_msg("%s case %zu/%d: %s", name, c, empty, err.message);
            assert_true(prefix.n > 20);
            assert_true(prefix.n < full.n);
            for (size_t i = 0; i < prefix.n; i++)
                if (prefix.ids[i] != full.ids[i])
                    fail_msg("%s case %zu/%d: token %zu differs (prefix of %zu, request of %zu)", name, c, empty, i, prefix.n, full.n);
            /* what is left: the new message's content and the generation prompt */
            if (full.n - prefix.n > 40) fail_msg("%s case %zu/%d: %zu tokens left to compute", name, c, empty, full.n - prefix.n);
            token_list_free(&prefix);
            token_list_free(&full);
        }
        assert_true(rendered >= 1);
    }
    cJSON_Delete(history);
    cJSON_Delete(tools);
    chat_prompt_free(cp);
    free(src);
}

static void test_minimax_m2(void **state) { (void)state; check_template("MiniMax-M2"); }
static void test_qwen3(void **state) { (void)state; check_template("Qwen-Qwen3-0.6B"); }
static void test_qwen25(void **state) { (void)state; check_template("Qwen-Qwen2.5-7B-Instruct"); }
static void test_qwen3_coder(void **state) { (void)state; check_template("Qwen3-Coder"); }

/* A template that never renders a message's content: no prefix, an error. */
static void test_template_without_content_is_refused(void **state) {
    (void)state;
    larder_error err = {0};
    chat_prompt *cp = chat_prompt_create("{% for m in messages %}<{{ m.role }}>{% endfor %}", "", "", &err);
    assert_non_null(cp);
    cJSON *history = cJSON_Parse(HISTORY);
    prewarm_turn turn = {history, NULL, NULL, NULL, {"hi", 2, "", 0, NULL, 0}};
    token_list prefix = {0};
    assert_int_equal(prewarm_prefix_tokens(cp, g_tok, &turn, false, &prefix, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    token_list_free(&prefix);
    cJSON_Delete(history);
    chat_prompt_free(cp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimax_m2),
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_qwen25),
        cmocka_unit_test(test_qwen3_coder),
        cmocka_unit_test(test_template_without_content_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
