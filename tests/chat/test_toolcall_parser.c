/*
 * test_toolcall_parser.c — tool calls out of model text, per format: whole
 * text, byte by byte and random splits agree and their deltas add up (the
 * harness checks that on every case); several calls; content around calls;
 * malformed blocks stay content verbatim; the limits.
 */
#include "test_toolcall_harness.h"

#include "chat/toolcall_format.h"
#include "chat/toolcall_json.h"

static toolcall_format F_HERMES, F_XML, F_SEED, F_LLAMA, F_MISTRAL, F_MINIMAX, F_GLM, F_KIMI, F_DEEPSEEK, F_DSML, F_HARMONY, F_COHERE,
    F_COHERE_PLUS, F_GEMMA;

#define DS_BAR "\xef\xbd\x9c"          /* ｜ */
#define DS_SPACE "\xe2\x96\x81"       /* ▁ */

static int setup(void **state) {
    (void)state;
    F_HERMES = toolcall_format_from_template("{{ '<tool_call>' }}");
    F_XML = toolcall_format_from_template("<tool_call>\n<function=x>\n<parameter=y>");
    F_SEED = toolcall_format_from_template("<seed:tool_call><function=x><parameter=y><seed:think>");
    F_LLAMA = toolcall_format_from_template("<|start_header_id|> \"parameters\": <|python_tag|>");
    F_MISTRAL = toolcall_format_from_template("[TOOL_CALLS] [ARGS]");
    F_MINIMAX = toolcall_format_from_template("<minimax:tool_call><invoke name=<think></think>");
    F_GLM = toolcall_format_from_template("<tool_call>{{ name }}<arg_key>");
    F_KIMI = toolcall_format_from_template("<|tool_calls_section_begin|><think>");
    F_DEEPSEEK = toolcall_format_from_template("<" DS_BAR "tool" DS_SPACE "calls" DS_SPACE "begin" DS_BAR "><" DS_BAR "tool" DS_SPACE "sep" DS_BAR "><think>");
    F_DSML = toolcall_format_from_template(DS_BAR "DSML" DS_BAR " function_calls <think>");
    F_HARMONY = toolcall_format_from_template("<|channel|>analysis<|message|> <|call|> functions.");
    F_COHERE = toolcall_format_from_template("<|START_THINKING|><|END_THINKING|><|START_ACTION|><|END_ACTION|>");
    F_GEMMA = toolcall_format_from_template("<|tool_call> <tool_call|> <|channel>thought <channel|>");
    F_COHERE_PLUS = toolcall_format_from_template("{{ '\\nAction:\\n```json\\n[\\n' }} \"tool_name\": ");
    return 0;
}

/* ---- Hermes / Qwen2.5 */

static void test_hermes_one_call_after_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    h_expect(&o,
             "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
             "Let me check.", "", 1, "get_weather", "{\"city\": \"Paris\", \"days\": 3}");
}

static void test_hermes_several_calls_and_content_after(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    h_expect(&o,
             "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
             "<tool_call>\n{\"name\": \"list_files\", \"arguments\": {}}\n</tool_call>\nDone — both sent.",
             "Done — both sent.", "", 2, "get_weather", "{\"city\": \"Paris\"}", "list_files", "{}");
}

static void test_hermes_arguments_as_string_and_markers_in_strings(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    /* arguments given as a JSON string holding the object */
    h_expect(&o, "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\"}</tool_call>",
             "", "", 1, "get_weather", "{\"city\": \"Rome\"}");
    /* a close marker inside a JSON string does not end the block; numbers keep every digit */
    h_expect(&o,
             "<tool_call>{\"name\": \"write_file\", \"parameters\": {\"path\": \"a</tool_call>.xml\", \"n\": 12345678901234567890}}</tool_call>",
             "", "", 1, "write_file", "{\"path\": \"a</tool_call>.xml\", \"n\": 12345678901234567890}");
    /* a JSON array of calls inside one block (Apriel style) */
    h_expect(&o, "<tool_call>[{\"name\": \"list_files\", \"arguments\": {}}, {\"name\": \"get_weather\"}]</tool_call>",
             "", "", 2, "list_files", "{}", "get_weather", "{}");
}

static void test_hermes_malformed_stays_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    const char *cases[] = {
        /* unknown function */
        "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
        /* unclosed before the arguments began */
        "text <tool_call>\n{\"name\": \"get_weather\", \"argu",
        /* arguments before the name: not streamed, and unclosed */
        "<tool_call>{\"arguments\": {}, \"name\": \"get_weather\"",
        /* arguments not an object */
        "<tool_call>{\"name\": \"get_weather\", \"arguments\": [1, 2]}</tool_call>",
        /* not JSON at all, and junk after the JSON */
        "Use the <tool_call> tag like <tool_call>this</tool_call>.",
        /* prefixes of the marker that never complete */
        "a < b, <tool and <tool_cal end <",
        "ends with a partial marker <tool_ca",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* once {"name": N, "arguments": { is read the call streams and stays a
     * call: broken arguments are cut at their last complete point and closed,
     * and the text from where the block broke is content */
    h_expect(&o, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": Paris}}\n</tool_call>",
             "Paris}}\n</tool_call>", "", 1, "get_weather", "{}");
    h_expect(&o, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": paris}}\n</tool_call>", "", "", 1,
             "get_weather", "{}");
    h_expect(&o, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\", \"days\": 1.}}</tool_call> x", "x", "",
             1, "get_weather", "{\"city\": \"P\"}");
    h_expect(&o, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\"}</tool_call>", "</tool_call>", "", 1,
             "get_weather", "{\"city\": \"P\"}");
    h_expect(&o, "text <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", "text", "", 1,
             "get_weather", "{\"city\": \"Paris\"}");
    h_expect(&o, "text <tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"content\": \"a\\nb\\u00e9", "text", "", 1,
             "write_file", "{\"content\": \"a\\nb\\u00e9\"}");
    h_expect(&o, "<tool_call>{\"name\": \"list_files\", \"arguments\": {}} trailing</tool_call>", "trailing</tool_call>", "", 1,
             "list_files", "{}");
    /* a broken block followed by a good one: the good one is still a call */
    h_expect(&o, "<tool_call>oops<tool_call>{\"name\": \"list_files\"}</tool_call>", "<tool_call>oops", "", 1,
             "list_files", "{}");
}

static void test_hermes_without_tools_is_content(void **state) {
    (void)state;
    const char *t = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>";
    toolcall_parser_options o = h_opts(&F_HERMES, NULL, false);
    h_expect(&o, t, t, "", 0);
    o = h_opts(&F_HERMES, "[]", false);
    h_expect(&o, t, t, "", 0);
}

static void test_hermes_streams_content_early_and_holds_markers(void **state) {
    (void)state;
    larder_error err;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    toolcall_parser *p = toolcall_parser_create(&o, &err);
    assert_non_null(p);
    assert_int_equal(toolcall_parser_feed(p, "Hello wor", 9, &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 1);
    toolcall_event e = toolcall_parser_event(p, 0);
    assert_int_equal(e.kind, TOOLCALL_EVENT_CONTENT);
    assert_int_equal(e.len, 9);
    assert_memory_equal(e.text, "Hello wor", 9);
    /* "<tool" could begin a marker: held back, as is the space before it */
    assert_int_equal(toolcall_parser_feed(p, "ld <tool", 8, &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 1);
    e = toolcall_parser_event(p, 0);
    assert_int_equal(e.len, 2);
    assert_memory_equal(e.text, "ld", 2);
    const char *rest = "_call>{\"name\": \"list_files\", \"arguments\": {}}";
    assert_int_equal(toolcall_parser_feed(p, rest, strlen(rest), &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 2);   /* the call streams before its block closes */
    e = toolcall_parser_event(p, 0);
    assert_int_equal(e.kind, TOOLCALL_EVENT_CALL_START);
    assert_string_equal(e.name, "list_files");
    assert_int_equal(strncmp(e.id, "call_", 5), 0);
    assert_int_equal(strlen(e.id), 29);
    e = toolcall_parser_event(p, 1);
    assert_int_equal(e.kind, TOOLCALL_EVENT_CALL_ARGS);
    assert_memory_equal(e.text, "{}", 2);
    assert_int_equal(toolcall_parser_feed(p, "</tool_call>", 12, &err), 0);
    assert_int_equal(toolcall_parser_event_count(p), 0);
    assert_int_equal(toolcall_parser_finish(p, &err), 0);
    assert_int_equal(toolcall_parser_feed(p, "x", 1, &err), -1);   /* fed after finish */
    toolcall_result r = toolcall_parser_result(p);
    assert_string_equal(r.content, "Hello world");
    assert_int_equal(r.n_calls, 1);
    toolcall_parser_free(p);
}

/* ---- Qwen3-Coder / Qwen3.5 XML */

static void test_xml_function_calls_typed_by_schema(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_XML, TOOLS_JSON, false);
    h_expect(&o,
             "I'll write it.\n<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a.txt\n</parameter>\n"
             "<parameter=content>\nline1\n  \"quoted\" <b>x</b>\n\nline2\n</parameter>\n</function>\n</tool_call>",
             "I'll write it.", "", 1, "write_file",
             "{\"path\": \"/tmp/a.txt\", \"content\": \"line1\\n  \\\"quoted\\\" <b>x</b>\\n\\nline2\"}");
    /* integer and boolean by schema; a string-typed "123" stays a string; unknown
     * parameters are JSON when they parse; ["string","null"] takes null */
    h_expect(&o,
             "<tool_call>\n<function=get_weather>\n<parameter=city>\n123\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
             "<parameter=metric>\ntrue\n</parameter>\n<parameter=zip>\nnull\n</parameter>\n<parameter=extra>\n{\"a\": [1, 2]}\n</parameter>\n"
             "<parameter=note>\nhello\n</parameter>\n</function>\n</tool_call>\n"
             "<tool_call>\n<function=list_files>\n</function>\n</tool_call>",
             "", "", 2, "get_weather",
             "{\"city\": \"123\", \"days\": 3, \"metric\": true, \"zip\": null, \"extra\": {\"a\": [1, 2]}, \"note\": \"hello\"}",
             "list_files", "{}");
    /* a wrong-typed value becomes a string rather than failing */
    h_expect(&o, "<tool_call>\n<function=get_weather>\n<parameter=days>\nthree\n</parameter>\n</function>\n</tool_call>", "",
             "", 1, "get_weather", "{\"days\": \"three\"}");
}

static void test_xml_function_malformed_stays_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_XML, TOOLS_JSON, false);
    /* no call was committed (no known function name): content, byte for byte */
    const char *cases[] = {
        "<tool_call>\n<function=nope>\n</function>\n</tool_call>",
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>",
        "<tool_call>\n<function=get\nweather>\n</function>\n</tool_call>",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* a call streams from its name on: when the block then breaks, or the
     * output ends inside it, the call is closed where it stands and the text
     * from the break on is content */
    h_expect(&o, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</tool_call> after",
             "</tool_call> after", "", 1, "get_weather", "{\"city\": \"Paris\"}");
    h_expect(&o, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>", "", "", 1,
             "get_weather", "{\"city\": \"Paris\"}");
    h_expect(&o, "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar", "", "", 1, "get_weather",
             "{\"city\": \"Par\"}");
    h_expect(&o, "<tool_call>\n<function=get_weather>\n<parameter=days>\n3", "", "", 1, "get_weather", "{}");
    /* a second function that is unknown: the first stays a call; the block fails at its end */
    h_expect(&o, "<tool_call>\n<function=list_files>\n</function>\n<function=nope>\n</function>\n</tool_call>",
             "", "", 1, "list_files", "{}");
}

/* Arguments are sent while the block is still open: fed byte by byte, the
 * call starts and its text value arrives before the block's close marker
 * has been fed; fragments of every split join to the same arguments (the
 * harness checks that under many splits). */
static void test_xml_arguments_stream_before_the_block_ends(void **state) {
    (void)state;
    struct { const toolcall_format *f; const char *text; const char *close; const char *args; } cases[] = {
        {&F_XML, "<tool_call>\n<function=write_file>\n<parameter=path>\na.txt\n</parameter>\n<parameter=content>\n"
                 "h\u00e9llo \"w\"\n\n</parameter>\n<parameter=opts>\n{\"x\": 1}\n</parameter>\n</function>\n</tool_call>",
         "</tool_call>", "{\"path\": \"a.txt\", \"content\": \"h\u00e9llo \\\"w\\\"\\n\", \"opts\": {\"x\": 1}}"},
        {&F_MINIMAX, "<minimax:tool_call>\n<invoke name=\"write_file\">\n<parameter name=\"content\">a < b </param</parameter>\n"
                     "<parameter name=\"content\">dup</parameter>\n</invoke>\n</minimax:tool_call>",
         "</minimax:tool_call>", "{\"content\": \"a < b </param\"}"},
        {&F_GLM, "<tool_call>write_file\n<arg_key>content</arg_key>\n<arg_value>x\ty</arg_value>\n</tool_call>",
         "</tool_call>", "{\"content\": \"x\\ty\"}"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        toolcall_parser_options o = h_opts(cases[c].f, TOOLS_JSON, false);
        h_expect(&o, cases[c].text, "", "", 1, strstr(cases[c].text, "write_file") ? "write_file" : "", cases[c].args);
        larder_error err;
        toolcall_parser *p = toolcall_parser_create(&o, &err);
        assert_non_null(p);
        const char *t = cases[c].text;
        size_t close_at = (size_t)(strstr(t, cases[c].close) - t), started_at = 0, args_before_close = 0;
        bool started = false;
        for (size_t i = 0; i < close_at; i++) {
            assert_int_equal(toolcall_parser_feed(p, t + i, 1, &err), 0);
            for (size_t k = 0; k < toolcall_parser_event_count(p); k++) {
                toolcall_event e = toolcall_parser_event(p, k);
                if (e.kind == TOOLCALL_EVENT_CALL_START && !started) { started = true; started_at = i; }
                if (e.kind == TOOLCALL_EVENT_CALL_ARGS) args_before_close += e.len;
            }
        }
        assert_true(started);
        assert_true(started_at < close_at);
        /* all of the arguments but the closing brace came before the close marker */
        assert_int_equal(args_before_close, strlen(cases[c].args) - 1);
        toolcall_parser_free(p);
    }
}

static void test_xml_function_seed_markers(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_SEED, TOOLS_JSON, false);
    h_expect(&o,
             "<seed:think>plan</seed:think>Calling.\n<seed:tool_call>\n<function=get_weather>\n"
             "<parameter=city>Paris</parameter>\n</function>\n</seed:tool_call>",
             "Calling.", "plan", 1, "get_weather", "{\"city\": \"Paris\"}");
}

/* ---- Llama 3.x JSON */

static void test_llama3_json_calls(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_LLAMA, TOOLS_JSON, false);
    h_expect(&o, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "", 1, "get_weather",
             "{\"city\": \"Paris\"}");
    h_expect(&o, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}", "", "", 1,
             "get_weather", "{\"city\": \"Oslo\"}");
    h_expect(&o,
             "  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"A\"}}; {\"name\": \"list_files\", \"arguments\": {}}\nDone",
             "Done", "", 2, "get_weather", "{\"city\": \"A\"}", "list_files", "{}");
}

static void test_llama3_non_calls_stay_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_LLAMA, TOOLS_JSON, false);
    const char *cases[] = {
        "{\"foo\": 1}",
        "{\"name\": \"unknown_fn\", \"parameters\": {}}",
        "Sure! {\"name\": \"get_weather\", \"parameters\": {}}",
        "<|python_tag|>brave_search.call(query=\"x\")",
        "{not json at all}",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* unclosed after its arguments: a call (it streamed) */
    h_expect(&o, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}", "", "", 1, "get_weather",
             "{\"city\": \"Paris\"}");
}

/* ---- Mistral [TOOL_CALLS] */

static void test_mistral_args_form(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MISTRAL, TOOLS_JSON, false);
    h_expect(&o,
             "Checking.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]list_files[ARGS]{}",
             "Checking.", "", 2, "get_weather", "{\"city\": \"Paris\"}", "list_files", "{}");
    h_expect(&o, "[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"days\": 2}", "", "", 1, "get_weather",
             "{\"days\": 2}");
    /* ids: 9 alphanumerics, as Mistral's templates require */
    h_out r;
    h_run_all(&o, "[TOOL_CALLS]list_files[ARGS]{}", &r);
    assert_int_equal(strlen(r.id[0]), 9);
    for (size_t i = 0; i < 9; i++)
        assert_true((r.id[0][i] >= '0' && r.id[0][i] <= '9') || (r.id[0][i] >= 'a' && r.id[0][i] <= 'z') ||
                    (r.id[0][i] >= 'A' && r.id[0][i] <= 'Z'));
    h_out_free(&r);
}

static void test_mistral_array_form(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MISTRAL, TOOLS_JSON, false);
    h_expect(&o,
             "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcdefghi\"}, "
             "{\"name\": \"list_files\", \"arguments\": {}}]",
             "", "", 2, "get_weather", "{\"city\": \"Paris\"}", "list_files", "{}");
}

static void test_mistral_malformed_stays_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MISTRAL, TOOLS_JSON, false);
    const char *cases[] = {
        "[TOOL_CALLS]nope[ARGS]{}",
        "[TOOL_CALLS]get weather[ARGS]{}",
        "[TOOL_CALLS][{\"name\": \"get_weather\"}, 3]",
        "[TOOL_CALLS]get_weather[ARG",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* the arguments stream from [ARGS]{ on: broken or unclosed, the call is closed */
    h_expect(&o, "[TOOL_CALLS]get_weather[ARGS]{\"city\": }", "", "", 1, "get_weather", "{}");
    h_expect(&o, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"", "", "", 1, "get_weather", "{\"city\": \"Paris\"}");
}

/* ---- MiniMax-M2 */

static void test_minimax_invokes(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MINIMAX, TOOLS_JSON, true);
    h_expect(&o,
             "The user wants weather.\n</think>\n\nI'll look.\n<minimax:tool_call>\n<invoke name=\"get_weather\">\n"
             "<parameter name=\"city\">São Paulo</parameter>\n<parameter name=\"days\">3</parameter>\n</invoke>\n"
             "<invoke name=\"write_file\">\n<parameter name=\"path\">a.md</parameter>\n<parameter name=\"opts\">{\"x\": 1}</parameter>\n"
             "</invoke>\n</minimax:tool_call>",
             "I'll look.", "The user wants weather.", 2, "get_weather", "{\"city\": \"São Paulo\", \"days\": 3}",
             "write_file", "{\"path\": \"a.md\", \"opts\": {\"x\": 1}}");
}

static void test_minimax_malformed_stays_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_MINIMAX, TOOLS_JSON, false);
    const char *cases[] = {
        "<minimax:tool_call>\n</minimax:tool_call>",
        "<minimax:tool_call>\n<invoke name=\"nope\">\n</invoke>\n</minimax:tool_call>",
        "<minimax:tool_call>\n<invoke name=get_weather>\n</invoke>\n</minimax:tool_call>",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* committed calls close where they stand */
    h_expect(&o, "<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"city\">Paris</parameter>\n</minimax:tool_call>",
             "</minimax:tool_call>", "", 1, "get_weather", "{\"city\": \"Paris\"}");
    h_expect(&o, "<minimax:tool_call>\n<invoke name=\"get_weather\">\n</invoke>", "", "", 1, "get_weather", "{}");
}

/* ---- GLM <arg_key> */

static void test_glm_calls(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_GLM, TOOLS_JSON, false);
    /* GLM-4.6 writes newlines between the parts, GLM-4.7 none */
    h_expect(&o,
             "Checking.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
             "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>"
             "<tool_call>write_file<arg_key>path</arg_key><arg_value>a b.txt</arg_value><arg_key>opts</arg_key>"
             "<arg_value>{\"mode\": \"w\"}</arg_value></tool_call><tool_call>list_files</tool_call>",
             "Checking.", "", 3, "get_weather", "{\"city\": \"Paris\", \"days\": 2}", "write_file",
             "{\"path\": \"a b.txt\", \"opts\": {\"mode\": \"w\"}}", "list_files", "{}");
}

static void test_glm_malformed_stays_content(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_GLM, TOOLS_JSON, false);
    const char *cases[] = {
        "<tool_call>nope\n</tool_call>",
        "<tool_call>{\"name\": \"get_weather\"}</tool_call>",
    };
    h_expect_all_content(&o, cases, sizeof cases / sizeof *cases);
    /* committed calls close where they stand */
    h_expect(&o, "<tool_call>get_weather\n<arg_key>city</arg_key>\nParis\n</tool_call>", "Paris\n</tool_call>", "", 1, "get_weather", "{}");
    h_expect(&o, "<tool_call>get_weather\n<arg_key>city</arg_key><arg_value>Paris</tool_call>", "", "", 1, "get_weather",
             "{\"city\": \"Paris</tool_call>\"}");
    h_expect(&o, "<tool_call>get_weather\n<arg_key>city</arg_key><arg_value>Paris</arg_value>", "", "", 1, "get_weather",
             "{\"city\": \"Paris\"}");
}

/* ---- Kimi K2, DeepSeek V3.1, DeepSeek V3.2 (the templates' own renderings: test_toolcall_templates.c) */

static void test_section_and_dsml_syntaxes(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_KIMI, TOOLS_JSON, false);
    h_expect(&o, "<think>plan</think>Checking.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
                 "<|tool_call_argument_begin|>{\"city\": \"Oslo\"}<|tool_call_end|><|tool_calls_section_end|>",
             "Checking.", "plan", 1, "get_weather", "{\"city\": \"Oslo\"}");
    const char *kimi_bad[] = {
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.nope:0<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>",
        "<|tool_calls_section_begin|><|tool_calls_section_end|>",
    };
    h_expect_all_content(&o, kimi_bad, 2);
    /* unclosed after its arguments began: the call streamed and is closed */
    h_expect(&o, "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Os",
             "", "", 1, "get_weather", "{\"city\": \"Os\"}");
    o = h_opts(&F_DEEPSEEK, TOOLS_JSON, false);
    h_expect(&o, "<" DS_BAR "tool" DS_SPACE "calls" DS_SPACE "begin" DS_BAR "><" DS_BAR "tool" DS_SPACE "call" DS_SPACE "begin" DS_BAR
                 ">list_files<" DS_BAR "tool" DS_SPACE "sep" DS_BAR ">{}<" DS_BAR "tool" DS_SPACE "call" DS_SPACE "end" DS_BAR "><"
                 DS_BAR "tool" DS_SPACE "calls" DS_SPACE "end" DS_BAR ">",
             "", "", 1, "list_files", "{}");
    o = h_opts(&F_DSML, TOOLS_JSON, false);
    h_expect(&o, "<" DS_BAR "DSML" DS_BAR "function_calls>\n<" DS_BAR "DSML" DS_BAR "invoke name=\"get_weather\">\n<" DS_BAR "DSML" DS_BAR
                 "parameter name=\"city\" string=\"true\">Paris</" DS_BAR "DSML" DS_BAR "parameter>\n<" DS_BAR "DSML" DS_BAR
                 "parameter name=\"days\" string=\"false\">2</" DS_BAR "DSML" DS_BAR "parameter>\n</" DS_BAR "DSML" DS_BAR "invoke>\n</"
                 DS_BAR "DSML" DS_BAR "function_calls>",
             "", "", 1, "get_weather", "{\"city\": \"Paris\", \"days\": 2}");
    const char *dsml_bad[] = {
        "<" DS_BAR "DSML" DS_BAR "function_calls><" DS_BAR "DSML" DS_BAR "invoke name=\"nope\"></" DS_BAR "DSML" DS_BAR "invoke></" DS_BAR
        "DSML" DS_BAR "function_calls>",
    };
    h_expect_all_content(&o, dsml_bad, 1);
}

/* ---- gpt-oss harmony, Command R7B / Command A */

static void test_harmony_and_cohere(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HARMONY, TOOLS_JSON, false);
    /* analysis channel = reasoning, final channel = content (headers dropped) */
    h_expect(&o, "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hello <b>there</b>",
             "Hello <b>there</b>", "Think.", 0);
    /* a call, closed by <|call|> or (it ends generation) by the end of the text */
    h_expect(&o, "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant to=functions.get_weather<|channel|>"
                 "commentary <|constrain|>json<|message|>{\"city\": \"Oslo\"}<|call|>",
             "", "Need weather.", 1, "get_weather", "{\"city\": \"Oslo\"}");
    h_expect(&o, " to=functions.list_files<|channel|>commentary json<|message|>{}", "", "", 1, "list_files", "{}");
    const char *bad[] = {"x to=functions.nope<|channel|>commentary json<|message|>{}<|call|>"};
    h_expect_all_content(&o, bad, 1);
    /* without tools the headers still go */
    o = h_opts(&F_HARMONY, NULL, false);
    h_expect(&o, "<|channel|>final<|message|>Just text.<|return|>", "Just text.", "", 0);
    o = h_opts(&F_COHERE, TOOLS_JSON, false);
    h_expect(&o, "<|START_THINKING|>Plan: get weather.<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", "
                 "\"tool_name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}\n]<|END_ACTION|>",
             "", "Plan: get weather.", 1, "get_weather", "{\"city\": \"Rome\"}");
    h_expect(&o, "<|START_THINKING|><|END_THINKING|><|START_RESPONSE|>It is sunny.<|END_RESPONSE|>", "It is sunny.", "", 0);
}

/* ---- Command R+ ("Action: ```json [...]```") */

static void test_command_r_plus(void **state) {
    (void)state;
    assert_string_equal(toolcall_syntax_name(F_COHERE_PLUS.syntax), "command_r_plus");
    toolcall_parser_options o = h_opts(&F_COHERE_PLUS, TOOLS_JSON, false);
    /* the template's own layout (test_toolcall_templates.c renders it), two calls, text before */
    h_expect(&o, "I will check.\nAction:\n```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        \"parameters\": "
                 "{\n            \"city\": \"Rome\",\n            \"days\": 2\n        }\n    },\n    {\n        \"tool_name\": "
                 "\"list_files\",\n        \"parameters\": {}\n    }\n]```",
             "I will check.", "", 2, "get_weather", "{\n            \"city\": \"Rome\",\n            \"days\": 2\n        }",
             "list_files", "{}");
    /* compact, closing fence on its own line */
    h_expect(&o, "Action: ```json\n[{\"tool_name\": \"list_files\", \"parameters\": {\"a\": [1, {\"b\": \"]```\"}]}}]\n```",
             "", "", 1, "list_files", "{\"a\": [1, {\"b\": \"]```\"}]}");
    const char *bad[] = {
        "Action: ```json\n[{\"tool_name\": \"nope\", \"parameters\": {}}]```",          /* not a tool */
        "Action: ```json\n[{\"parameters\": {}, \"tool_name\": \"list_files\"}]```",     /* not the template's order */
        "Action: ```json\n[]```",
        "Action: do the thing.",
        "Action: ```json\n[{\"tool_name\": \"list_files\", \"parameters\": []}]```",
        "Action: ```python\nprint(1)\n```",
    };
    h_expect_all_content(&o, bad, sizeof bad / sizeof *bad);
    /* unclosed after the parameters began: the call streamed and is closed where it stands */
    h_expect(&o, "Action: ```json\n[{\"tool_name\": \"get_weather\", \"parameters\": {\"city\": \"Ro", "", "", 1,
             "get_weather", "{\"city\": \"Ro\"}");
    /* without tools: content */
    o = h_opts(&F_COHERE_PLUS, NULL, false);
    const char *plain[] = {"Action: ```json\n[{\"tool_name\": \"list_files\", \"parameters\": {}}]```"};
    h_expect_all_content(&o, plain, 1);
}

/* The parameters stream as they come, before the list's end, under every split. */
static void test_command_r_plus_streams_parameters(void **state) {
    (void)state;
    const char *t = "Action:\n```json\n[\n    {\n        \"tool_name\": \"write_file\",\n        \"parameters\": "
                    "{\"path\": \"a.txt\", \"content\": \"x\"}\n    }\n]```";
    const char *args = "{\"path\": \"a.txt\", \"content\": \"x\"}";
    toolcall_parser_options o = h_opts(&F_COHERE_PLUS, TOOLS_JSON, false);
    h_expect(&o, t, "", "", 1, "write_file", args);
    larder_error err;
    toolcall_parser *p = toolcall_parser_create(&o, &err);
    assert_non_null(p);
    size_t close_at = (size_t)(strstr(t, "\n    }") - t), started_at = 0, args_before = 0, fragments = 0;
    bool started = false;
    for (size_t i = 0; i < close_at; i++) {
        assert_int_equal(toolcall_parser_feed(p, t + i, 1, &err), 0);
        for (size_t k = 0; k < toolcall_parser_event_count(p); k++) {
            toolcall_event e = toolcall_parser_event(p, k);
            if (e.kind == TOOLCALL_EVENT_CALL_START && !started) { started = true; started_at = i; }
            if (e.kind == TOOLCALL_EVENT_CALL_ARGS) { args_before += e.len; fragments++; }
        }
    }
    assert_true(started);
    assert_true(started_at <= (size_t)(strstr(t, "{\"path\"") - t));        /* committed when its parameters open */
    assert_int_equal(args_before, strlen(args));                               /* all of them before the element closed */
    assert_true(fragments > 3);
    toolcall_parser_free(p);
}

/* ---- Gemma 4 */

static void test_gemma(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_GEMMA, TOOLS_JSON, false);
    h_expect(&o, "<|channel>thought\nplan<channel|>Sure.<|tool_call>call:write_file{content:<|\"|>a \"q\"\n\u00e9<|\"|>,"
                 "opts:{mode:<|\"|>w<|\"|>,n:[1,2.5,true,null]},path:<|\"|>x.txt<|\"|>}<tool_call|>",
             "Sure.", "plan", 1, "write_file",
             "{\"content\":\"a \\\"q\\\"\\n\u00e9\",\"opts\":{\"mode\":\"w\",\"n\":[1,2.5,true,null]},\"path\":\"x.txt\"}");
    h_expect(&o, "<|tool_call>call:list_files{}<tool_call|>", "", "", 1, "list_files", "{}");
    /* unclosed: the call streamed and is closed where it stands */
    h_expect(&o, "<|tool_call>call:get_weather{city:<|\"|>Ber", "", "", 1, "get_weather", "{\"city\":\"Ber\"}");
    h_expect(&o, "<|tool_call>call:get_weather{city:<|\"|>Bern<|\"|>,days:x y}<tool_call|>", "y}<tool_call|>", "", 1,
             "get_weather", "{\"city\":\"Bern\"}");
    const char *bad[] = {"<|tool_call>call:nope{}<tool_call|>", "<|tool_call>call:get weather{}<tool_call|>"};
    h_expect_all_content(&o, bad, 2);
}

/* ---- limits and robustness */

static void test_limit_block_bytes(void **state) {
    (void)state;
    /* a call block larger than TOOLCALL_MAX_BLOCK_BYTES that committed no call
     * is content, byte for byte */
    size_t big = TOOLCALL_MAX_BLOCK_BYTES + 100;
    strbuf t = STRBUF_INIT;
    strbuf_puts(&t, "<tool_call>{\"arguments\": {\"content\": \"");
    while (t.len < big) strbuf_puts(&t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    strbuf_puts(&t, "\"}, \"name\": \"write_file\"}</tool_call>");
    assert_false(t.failed);
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    h_out r;
    h_run(&o, t.data, t.len, 65536, 0, &r);
    assert_int_equal(r.n_calls, 0);
    assert_string_equal(r.content, t.data);
    h_out_free(&r);
    /* a streaming call is cut at the limit, whatever the split: its
     * arguments close there and the rest is content */
    strbuf_reset(&t);
    strbuf_puts(&t, "<tool_call>{\"name\": \"write_file\", \"arguments\": {\"content\": \"");
    size_t head = t.len;
    while (t.len < big) strbuf_puts(&t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    strbuf_puts(&t, "\"}}</tool_call>");
    h_out r2;
    h_run(&o, t.data, t.len, 65536, 0, &r);
    h_run(&o, t.data, t.len, 100003, 0, &r2);
    assert_int_equal(r.n_calls, 1);
    assert_int_equal(strlen(r.args[0]), strlen("{\"content\": \"") + TOOLCALL_MAX_BLOCK_BYTES - head + 2);
    assert_string_equal(r.content, t.data + TOOLCALL_MAX_BLOCK_BYTES);
    h_same(&r, &r2);
    h_out_free(&r);
    h_out_free(&r2);
    /* just under the limit it is a call */
    strbuf_reset(&t);
    strbuf_puts(&t, "<tool_call>{\"name\": \"write_file\", \"arguments\": {\"content\": \"");
    while (t.len < TOOLCALL_MAX_BLOCK_BYTES - 200) strbuf_puts(&t, "y");
    strbuf_puts(&t, "\"}}</tool_call>");
    h_run(&o, t.data, t.len, 65536, 0, &r);
    assert_int_equal(r.n_calls, 1);
    h_out_free(&r);
    strbuf_free(&t);
}

static void test_limit_calls_names_depth(void **state) {
    (void)state;
    toolcall_parser_options o = h_opts(&F_HERMES, TOOLS_JSON, false);
    /* TOOLCALL_MAX_CALLS calls are parsed; the next block stays content */
    strbuf t = STRBUF_INIT;
    for (int i = 0; i < TOOLCALL_MAX_CALLS + 1; i++)
        strbuf_puts(&t, "<tool_call>{\"name\": \"list_files\", \"arguments\": {}}</tool_call>");
    h_out r;
    h_run(&o, t.data, t.len, -40, 7, &r);
    assert_int_equal(r.n_calls, TOOLCALL_MAX_CALLS);
    assert_string_equal(r.content, "<tool_call>{\"name\": \"list_files\", \"arguments\": {}}</tool_call>");
    h_out_free(&r);
    /* a name longer than TOOLCALL_MAX_NAME_BYTES */
    toolcall_parser_options ox = h_opts(&F_XML, TOOLS_JSON, false);
    strbuf_reset(&t);
    strbuf_puts(&t, "<tool_call>\n<function=");
    for (int i = 0; i < TOOLCALL_MAX_NAME_BYTES + 1; i++) strbuf_puts(&t, "a");
    strbuf_puts(&t, ">\n</function>\n</tool_call>");
    h_run(&ox, t.data, t.len, 0, 0, &r);
    assert_int_equal(r.n_calls, 0);
    assert_string_equal(r.content, t.data);
    h_out_free(&r);
    /* JSON nested deeper than TJSON_MAX_DEPTH */
    strbuf_reset(&t);
    strbuf_puts(&t, "<tool_call>{\"name\": \"list_files\", \"arguments\": {\"a\": ");
    for (int i = 0; i < TJSON_MAX_DEPTH + 1; i++) strbuf_puts(&t, "[");
    for (int i = 0; i < TJSON_MAX_DEPTH + 1; i++) strbuf_puts(&t, "]");
    strbuf_puts(&t, "}}</tool_call>");
    h_run(&o, t.data, t.len, 0, 0, &r);
    /* the call streamed: cut at the last bracket the scanner took, closed */
    assert_int_equal(r.n_calls, 1);
    const char *cut = strstr(t.data, "[");
    size_t opened = 0;
    while (r.args[0][strlen("{\"a\": ") + opened] == '[') opened++;
    assert_true(opened > 100 && opened < TJSON_MAX_DEPTH);
    assert_string_equal(r.content, cut + opened);
    h_out_free(&r);
    strbuf_free(&t);
}

static void test_bad_tools_json_is_an_error(void **state) {
    (void)state;
    larder_error err;
    toolcall_parser_options o = h_opts(&F_HERMES, "{\"not\": \"an array\"}", false);
    assert_null(toolcall_parser_create(&o, &err));
    assert_int_equal(err.code, ERR_INVALID);
    o.tools_json = "[{\"type\": \"function\", \"function\": {}}]";
    assert_null(toolcall_parser_create(&o, &err));
    assert_int_equal(err.code, ERR_INVALID);
}

/* Random texts built from marker fragments, fed in random splits, for every
 * format: no crash, splits agree, deltas add up; with tool calls, reasoning
 * and drop markers off, the content is the text itself (minus outer
 * whitespace): nothing is lost. */
static void test_random_fragments_never_lose_text(void **state) {
    (void)state;
    static const char *frags[] = {
        "<tool_call>", "</tool_call>", "<function=", "get_weather", ">", "\n", "<parameter=", "city",
        "</parameter>", "</function>", "{\"name\": \"list_files\", \"arguments\": {}}", "{", "}", "\"", "[TOOL_CALLS]",
        "[ARGS]", "<minimax:tool_call>", "<invoke name=\"", "\">", "</invoke>", "</minimax:tool_call>", "<think>",
        "</think>", "hello", " ", "é", "<", "[", "<|python_tag|>", ";", "\\", "[CALL_ID]", "</seed:tool_call>",
        "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "list_files",
        "<|tool_calls_section_begin|>", "<|tool_call_begin|>", "functions.get_weather:0", "<|tool_call_argument_begin|>",
        "<|tool_call_end|>", "<|tool_calls_section_end|>", "{\"city\": \"x\"}",
        "<" DS_BAR "tool" DS_SPACE "calls" DS_SPACE "begin" DS_BAR ">", "<" DS_BAR "tool" DS_SPACE "call" DS_SPACE "begin" DS_BAR ">",
        "<" DS_BAR "tool" DS_SPACE "sep" DS_BAR ">", "<" DS_BAR "tool" DS_SPACE "call" DS_SPACE "end" DS_BAR ">",
        "<" DS_BAR "tool" DS_SPACE "calls" DS_SPACE "end" DS_BAR ">", "<" DS_BAR "DSML" DS_BAR "function_calls>",
        "<" DS_BAR "DSML" DS_BAR "invoke name=\"", "<" DS_BAR "DSML" DS_BAR "parameter name=\"", "\" string=\"true\">",
        "</" DS_BAR "DSML" DS_BAR "parameter>", "</" DS_BAR "DSML" DS_BAR "invoke>", "</" DS_BAR "DSML" DS_BAR "function_calls>",
        "<|channel|>analysis<|message|>", "<|end|>", "<|start|>assistant", " to=functions.", "<|channel|>", "commentary json",
        "<|message|>", "<|call|>", "<|channel|>final<|message|>", "<|START_ACTION|>", "<|END_ACTION|>", "<|START_RESPONSE|>",
        "\"tool_name\": \"list_files\"", "<|START_THINKING|>", "<|END_THINKING|>",
        "<|tool_call>call:", "<tool_call|>", "<|\"|>", "city:", ",days:3", "<|channel>thought", "<channel|>", "{}",
        "Action:", "```json", "```", "\"parameters\": ", "]",
    };
    const toolcall_format *fmts[] = {&F_HERMES, &F_XML, &F_SEED, &F_LLAMA, &F_MISTRAL, &F_MINIMAX, &F_GLM,
                                     &F_KIMI, &F_DEEPSEEK, &F_DSML, &F_HARMONY, &F_COHERE, &F_GEMMA, &F_COHERE_PLUS};
    uint64_t s = 99;
    for (int round = 0; round < 1000; round++) {
        strbuf t = STRBUF_INIT;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int n = 1 + (int)((s >> 33) % 40);
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            strbuf_puts(&t, frags[(s >> 33) % (sizeof frags / sizeof *frags)]);
        }
        const toolcall_format *f = fmts[round % (int)(sizeof fmts / sizeof *fmts)];
        toolcall_parser_options o = h_opts(f, TOOLS_JSON, round % 5 == 0);
        h_out a;
        h_run_all(&o, t.data, &a);
        h_out_free(&a);
        /* no tools, no reasoning markers: content == text, trimmed */
        toolcall_format plain = *f;
        plain.think_open = plain.think_close = NULL;
        plain.drop = NULL;   /* (drop markers remove text by design) */
        o = h_opts(&plain, NULL, false);
        h_run_all(&o, t.data, &a);
        size_t b = 0, e = t.len;
        while (b < e && strchr(" \n", t.data[b])) b++;
        while (e > b && strchr(" \n", t.data[e - 1])) e--;
        assert_int_equal(strlen(a.content), e - b);
        assert_memory_equal(a.content, t.data + b, e - b);
        h_out_free(&a);
        strbuf_free(&t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hermes_one_call_after_content),
        cmocka_unit_test(test_hermes_several_calls_and_content_after),
        cmocka_unit_test(test_hermes_arguments_as_string_and_markers_in_strings),
        cmocka_unit_test(test_hermes_malformed_stays_content),
        cmocka_unit_test(test_hermes_without_tools_is_content),
        cmocka_unit_test(test_hermes_streams_content_early_and_holds_markers),
        cmocka_unit_test(test_xml_function_calls_typed_by_schema),
        cmocka_unit_test(test_xml_function_malformed_stays_content),
        cmocka_unit_test(test_xml_arguments_stream_before_the_block_ends),
        cmocka_unit_test(test_xml_function_seed_markers),
        cmocka_unit_test(test_llama3_json_calls),
        cmocka_unit_test(test_llama3_non_calls_stay_content),
        cmocka_unit_test(test_mistral_args_form),
        cmocka_unit_test(test_mistral_array_form),
        cmocka_unit_test(test_mistral_malformed_stays_content),
        cmocka_unit_test(test_minimax_invokes),
        cmocka_unit_test(test_minimax_malformed_stays_content),
        cmocka_unit_test(test_glm_calls),
        cmocka_unit_test(test_command_r_plus),
        cmocka_unit_test(test_command_r_plus_streams_parameters),
        cmocka_unit_test(test_glm_malformed_stays_content),
        cmocka_unit_test(test_section_and_dsml_syntaxes),
        cmocka_unit_test(test_harmony_and_cohere),
        cmocka_unit_test(test_gemma),
        cmocka_unit_test(test_limit_block_bytes),
        cmocka_unit_test(test_limit_calls_names_depth),
        cmocka_unit_test(test_bad_tools_json_is_an_error),
        cmocka_unit_test(test_random_fragments_never_lose_text),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
