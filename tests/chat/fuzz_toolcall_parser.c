/*
 * fuzz_toolcall_parser.c — libFuzzer target for the tool-call and reasoning
 * parser: the first byte picks one of the real templates' formats (read
 * from $SHARED/templates at start) and whether the prompt opened the
 * reasoning block, the second byte the size of the pieces the rest is fed
 * in (as a model's tokens arrive). Any crash, sanitizer report or leak is a
 * bug; every call's arguments must be a JSON object text.
 *
 * FUZZ_SOURCES: src/chat/toolcall_*.c src/base/json_syntax.c src/base/error.c src/base/strbuf.c src/base/utf8.c src/base/hash.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/toolcall_parser.h"

static const char *const TEMPLATES[] = {
    "Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen3-Coder.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "MiniMax-M2.jinja", "GLM-4.6.jinja", "Qwen-QwQ-32B.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
};
#define N_TEMPLATES (sizeof TEMPLATES / sizeof TEMPLATES[0])
static toolcall_format formats[N_TEMPLATES];
static char *sources[N_TEMPLATES];
static size_t n_formats;

static const char TOOLS[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
                            "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"}}}}},"
                            "{\"type\":\"function\",\"function\":{\"name\":\"run\",\"parameters\":{\"type\":\"object\"}}}]";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *shared = getenv("SHARED");
    for (size_t i = 0; i < N_TEMPLATES; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/templates/%s", shared ? shared : "../../../shared", TEMPLATES[i]);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *src = malloc((size_t)n + 1);
        if (src && fread(src, 1, (size_t)n, f) == (size_t)n) {
            src[n] = 0;
            sources[n_formats] = src; /* formats point into their template's text */
            formats[n_formats++] = toolcall_format_from_template(src);
        } else {
            free(src);
        }
        fclose(f);
    }
    if (!n_formats) {
        fprintf(stderr, "fuzz_toolcall_parser: no templates found (set SHARED)\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const toolcall_format *fmt = &formats[(data[0] >> 1) % n_formats];
    toolcall_parser_options o = {fmt, TOOLS, data[0] & 1, 1};
    larder_error err = {0};
    toolcall_parser *p = toolcall_parser_create(&o, &err);
    if (!p) return 0;
    size_t piece = 1 + data[1] % 16;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    for (size_t at = 0; at < len; at += piece)
        if (toolcall_parser_feed(p, text + at, at + piece <= len ? piece : len - at, &err)) break;
    toolcall_parser_finish(p, &err);
    toolcall_result r = toolcall_parser_result(p);
    for (size_t i = 0; i < r.n_calls; i++)
        if (!r.calls[i].arguments || r.calls[i].arguments[0] != '{') abort();
    toolcall_parser_free(p);
    return 0;
}
