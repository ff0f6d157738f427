/*
 * test_reasoning_parse.c — reasoning blocks out of model text: <think> at
 * the start, a block the prompt opened, never-closed blocks, markers that are
 * not at the start, the families' other markers, and reasoning followed by
 * content and a tool call. Every case also runs byte by byte and in random
 * splits (harness).
 */
#include "test_toolcall_harness.h"

#include "chat/toolcall_format.h"

static toolcall_format F_QWEN3, F_NOCALLS, F_MINISTRAL;

static int setup(void **state) {
    (void)state;
    F_QWEN3 = toolcall_format_from_template("<tool_call> <think> </think>");
    F_NOCALLS = toolcall_format_from_template("<｜Assistant｜><think>\n");
    F_MINISTRAL = toolcall_format_from_template("[TOOL_CALLS] [ARGS] [THINK] [/THINK]");
    return 0;
}

static void test_think_block_at_start(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_QWEN3, TOOLS_JSON, false);
    h_expect(&o, "<think>\nThe user says hi.\nBe brief.\n</think>\n\nHello!", "Hello!", "The user says hi.\nBe brief.", 0);
    h_expect(&o, "\n<think>\n\n</think>\n\nHi", "Hi", "", 0);                 /* empty reasoning */
    h_expect(&o, "Hello <think>x</think> there", "Hello <think>x</think> there", "", 0);   /* not at the start */
    h_expect(&o, "<thinking>no</thinking>", "<thinking>no</thinking>", "", 0);
    h_expect(&o, "<think>never closed </thi", "", "never closed </thi", 0);
}

static void test_prompt_opened_reasoning(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_NOCALLS, NULL, true);
    h_expect(&o, "Okay, 2+2.\n</think>\n\nIt is 4.", "It is 4.", "Okay, 2+2.", 0);
    h_expect(&o, "<think>\nrepeated open\n</think>answer", "answer", "repeated open", 0);
    h_expect(&o, "still thinking when the output ended", "", "still thinking when the output ended", 0);
    h_expect(&o, "</think>direct", "direct", "", 0);
    /* the same text without the prompt opening it: all content */
    o = h_opts(&F_NOCALLS, NULL, false);
    h_expect(&o, "Okay, 2+2.\n</think>\n\nIt is 4.", "Okay, 2+2.\n</think>\n\nIt is 4.", "", 0);
}

static void test_reasoning_then_content_then_tool_call(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_QWEN3, TOOLS_JSON, false);
    h_expect(&o,
             "<think>\nI need the weather; a <tool_call> here is only thought.\n</think>\n\nLet me check.\n"
             "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
             "Let me check.", "I need the weather; a <tool_call> here is only thought.", 1, "get_weather",
             "{\"city\": \"Paris\"}");
}

static void test_ministral_think_markers(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MINISTRAL, TOOLS_JSON, false);
    h_expect(&o, "[THINK]Weather needed.[/THINK]Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Nice\"}", "Sure.",
             "Weather needed.", 1, "get_weather", "{\"city\": \"Nice\"}");
}

static void test_reasoning_streams_before_the_close(void **state) {
    (void)state;
    larder_error err;
    toolcall_parser_options o = h_opts(&F_QWEN3, TOOLS_JSON, false);
    toolcall_parser *p = toolcall_parser_create(&o, &err);
    assert_non_null(p);
    assert_int_equal(toolcall_parser_feed(p, "<thi", 4, &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 0);           /* could be <think> */
    assert_int_equal(toolcall_parser_feed(p, "nk>\nstep one\n", 13, &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 1);
    toolcall_event e = toolcall_parser_event(p, 0);
    assert_int_equal(e.kind, TOOLCALL_EVENT_REASONING);
    assert_int_equal(e.len, 8);
    assert_memory_equal(e.text, "step one", 8);                  /* trailing newline held */
    assert_int_equal(toolcall_parser_feed(p, "step two</", 10, &err), 0);
    e = toolcall_parser_event(p, 0);
    assert_int_equal(e.kind, TOOLCALL_EVENT_REASONING);
    assert_int_equal(e.len, 9);
    assert_memory_equal(e.text, "\nstep two", 9);
    assert_int_equal(toolcall_parser_feed(p, "think>Answer", 12, &err), 0);
    e = toolcall_parser_event(p, 0);
    assert_int_equal(e.kind, TOOLCALL_EVENT_CONTENT);
    assert_memory_equal(e.text, "Answer", 6);
    assert_int_equal(toolcall_parser_finish(p, &err), 0);
    assert_int_equal(toolcall_parser_finish(p, &err), 0);        /* twice is harmless */
    toolcall_result r = toolcall_parser_result(p);
    assert_string_equal(r.reasoning, "step one\nstep two");
    assert_string_equal(r.content, "Answer");
    toolcall_parser_free(p);
}

static void test_no_markers_means_plain_content(void **state) {
    (void)state;
    toolcall_parser_options o = {NULL, NULL, true, 1};
    h_expect(&o, "  <think>a</think> b ", "<think>a</think> b", "", 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_think_block_at_start),
        cmocka_unit_test(test_prompt_opened_reasoning),
        cmocka_unit_test(test_reasoning_then_content_then_tool_call),
        cmocka_unit_test(test_ministral_think_markers),
        cmocka_unit_test(test_reasoning_streams_before_the_close),
        cmocka_unit_test(test_no_markers_means_plain_content),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
