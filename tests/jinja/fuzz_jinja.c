/*
 * fuzz_jinja.c — libFuzzer target for the chat-template engine: the input is
 * a template; it is parsed and, when it parses, rendered twice (parse once,
 * render many) with a fixed chat context. Any crash, sanitizer report, leak
 * or hang is a bug: every failure must come back as an error message.
 * Limits are lowered so each input runs fast; tests/jinja/test_jinja_limits.c
 * covers the default limits.
 *
 * FUZZ_SOURCES: src/jinja/jinja_*.c src/base/error.c src/base/strbuf.c src/base/utf8.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja.h"

static const char CONTEXT[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    " \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"héllo <b>&'\\\"\"},"
    " {\"role\": \"assistant\", \"content\": null, \"reasoning_content\": \"think\", \"tool_calls\": [{\"id\": \"c1\","
    " \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"n\": 1.5}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"18C\"}, {\"role\": \"user\", \"content\": [1, 2.0, {\"a\": []}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    larder_error err = {0};
    jinja_template *t = jinja_template_parse((const char *)data, size, &err);
    if (!t) return 0;
    jinja_limits lim = {.max_loop_iterations = 20000, .max_call_depth = 20, .max_output_bytes = 1 << 20,
                        .max_memory_bytes = 32 << 20};
    jinja_render_options opt = {0};
    opt.limits = &lim;
    jinja_options_set_now(&opt, "2025-03-07T10:30:00", &err);
    for (int i = 0; i < 3; i++) { /* immutable, the template's own values mutable (chat templates), all mutable */
        size_t n = 0;
        opt.mutate_own_values = i == 1;
        opt.allow_mutation = i == 2;
        char *out = jinja_render_json_text(t, CONTEXT, sizeof CONTEXT - 1, &opt, &n, &err);
        if (out && strlen(out) > n) abort(); /* length must cover the text */
        free(out);
    }
    jinja_template_free(t);
    return 0;
}
