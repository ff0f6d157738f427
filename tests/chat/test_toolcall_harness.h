/*
 * test_toolcall_harness.h — runs one model output through the tool-call
 * parser under many splits (whole, byte by byte, random chunk sizes) and
 * checks the streaming contract: every split gives the same result, and the
 * concatenated deltas equal the result's strings. Shared by the
 * test_toolcall_* and test_reasoning_* programs.
 */
#ifndef LARDER_TESTS_CHAT_TOOLCALL_HARNESS_H
#define LARDER_TESTS_CHAT_TOOLCALL_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/strbuf.h"
#include "chat/chat_prompt.h"
#include "chat/toolcall_json.h"
#include "test_files.h"
#include "chat/toolcall_parser.h"

#define H_MAX_CALLS 200

static const char TOOLS_JSON[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"days\":{\"type\":\"integer\"},\"metric\":{\"type\":\"boolean\"},\"zip\":{\"type\":[\"string\",\"null\"]}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"write_file\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"path\":{\"type\":\"string\"},\"content\":{\"type\":\"string\"},\"opts\":{\"type\":\"object\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"list_files\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";

/* What one run produced: the result copied out plus the concatenated deltas. */
typedef struct h_out {
    char *content, *reasoning;           /* result strings */
    size_t n_calls;
    char *id[H_MAX_CALLS], *name[H_MAX_CALLS], *args[H_MAX_CALLS];
    strbuf d_content, d_reasoning;       /* concatenated deltas */
    strbuf d_args[H_MAX_CALLS];
    char *d_name[H_MAX_CALLS], *d_id[H_MAX_CALLS];
    size_t n_starts;
    size_t first_event_piece[4];         /* piece number of the first content/reasoning/call event (+1), 0: none */
} h_out;

static void h_out_free(h_out *o) {
    free(o->content);
    free(o->reasoning);
    for (size_t i = 0; i < H_MAX_CALLS; i++) {
        free(o->id[i]); free(o->name[i]); free(o->args[i]);
        free(o->d_name[i]); free(o->d_id[i]);
        strbuf_free(&o->d_args[i]);
    }
    strbuf_free(&o->d_content);
    strbuf_free(&o->d_reasoning);
    memset(o, 0, sizeof *o);
}

static void h_collect(toolcall_parser *p, h_out *o, size_t piece) {
    for (size_t i = 0; i < toolcall_parser_event_count(p); i++) {
        toolcall_event e = toolcall_parser_event(p, i);
        switch (e.kind) {
        case TOOLCALL_EVENT_CONTENT:
            assert_true(e.len > 0);
            strbuf_append(&o->d_content, e.text, e.len);
            if (!o->first_event_piece[0]) o->first_event_piece[0] = piece + 1;
            break;
        case TOOLCALL_EVENT_REASONING:
            assert_true(e.len > 0);
            strbuf_append(&o->d_reasoning, e.text, e.len);
            if (!o->first_event_piece[1]) o->first_event_piece[1] = piece + 1;
            break;
        case TOOLCALL_EVENT_CALL_START:
            assert_int_equal(e.index, o->n_starts);   /* indexes count up from 0 */
            assert_true(e.index < H_MAX_CALLS);
            o->d_name[e.index] = strdup(e.name);
            o->d_id[e.index] = strdup(e.id);
            o->n_starts++;
            if (!o->first_event_piece[2]) o->first_event_piece[2] = piece + 1;
            break;
        case TOOLCALL_EVENT_CALL_ARGS:
            assert_true(e.index < o->n_starts);
            strbuf_append(&o->d_args[e.index], e.text, e.len);
            break;
        default:
            fail_msg("unknown event kind %d", (int)e.kind);
        }
    }
}

/* Feeds text[0, n) in pieces: chunk == 0 whole, chunk > 0 fixed size, chunk < 0
 * random sizes 1..-chunk from seed. */
static void h_run(const toolcall_parser_options *opt, const char *text, size_t n, long chunk, unsigned seed,
                  h_out *o) {
    larder_error err;
    memset(o, 0, sizeof *o);
    toolcall_parser *p = toolcall_parser_create(opt, &err);
    assert_non_null(p);
    size_t at = 0, piece = 0;
    uint64_t s = seed * 2654435761u + 1;
    while (at < n) {
        size_t k = n - at;
        if (chunk > 0 && (size_t)chunk < k) k = (size_t)chunk;
        if (chunk < 0) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t r = 1 + (size_t)((s >> 33) % (uint64_t)(-chunk));
            if (r < k) k = r;
        }
        assert_int_equal(toolcall_parser_feed(p, text + at, k, &err), 0);
        h_collect(p, o, piece++);
        at += k;
    }
    assert_int_equal(toolcall_parser_finish(p, &err), 0);
    h_collect(p, o, piece);
    toolcall_result r = toolcall_parser_result(p);
    assert_int_equal(strlen(r.content), r.content_len);
    o->content = strdup(r.content);
    o->reasoning = strdup(r.reasoning);
    o->n_calls = r.n_calls;
    assert_true(r.n_calls <= H_MAX_CALLS);
    for (size_t i = 0; i < r.n_calls; i++) {
        o->id[i] = strdup(r.calls[i].id);
        o->name[i] = strdup(r.calls[i].name);
        o->args[i] = strdup(r.calls[i].arguments);
        /* arguments are always one JSON object */
        const char *a = r.calls[i].arguments;
        assert_true(tjson_is_value(a, strlen(a)));
        assert_int_equal(a[tjson_skip_ws(a, strlen(a), 0)], '{');
    }
    toolcall_parser_free(p);

    /* deltas == result */
    assert_string_equal(o->d_content.data ? o->d_content.data : "", o->content);
    assert_string_equal(o->d_reasoning.data ? o->d_reasoning.data : "", o->reasoning);
    assert_int_equal(o->n_starts, o->n_calls);
    for (size_t i = 0; i < o->n_calls; i++) {
        assert_string_equal(o->d_name[i], o->name[i]);
        assert_string_equal(o->d_id[i], o->id[i]);
        assert_string_equal(o->d_args[i].data ? o->d_args[i].data : "", o->args[i]);
    }
}

static void h_same(const h_out *a, const h_out *b) {
    assert_string_equal(a->content, b->content);
    assert_string_equal(a->reasoning, b->reasoning);
    assert_int_equal(a->n_calls, b->n_calls);
    for (size_t i = 0; i < a->n_calls; i++) {
        assert_string_equal(a->name[i], b->name[i]);
        assert_string_equal(a->args[i], b->args[i]);
        assert_string_equal(a->id[i], b->id[i]);   /* same seed: same ids */
    }
}

/* Runs text under whole / byte-by-byte / several random splits, checks they
 * agree, and leaves the whole-text run in *o (caller frees). */
static void h_run_all(const toolcall_parser_options *opt, const char *text, h_out *o) {
    size_t n = strlen(text);
    h_run(opt, text, n, 0, 0, o);
    h_out b;
    h_run(opt, text, n, 1, 0, &b);
    h_same(o, &b);
    h_out_free(&b);
    for (unsigned seed = 1; seed <= 12; seed++) {
        h_run(opt, text, n, seed % 2 ? -3 : -17, seed, &b);
        h_same(o, &b);
        h_out_free(&b);
    }
}

/* Checks one text: expected content, reasoning and calls ("name", "args" pairs). */
static void h_expect(const toolcall_parser_options *opt, const char *text, const char *content,
                     const char *reasoning, size_t n_calls, ...) {
    h_out o;
    h_run_all(opt, text, &o);
    assert_string_equal(o.content, content);
    assert_string_equal(o.reasoning, reasoning);
    assert_int_equal(o.n_calls, n_calls);
    va_list ap;
    va_start(ap, n_calls);
    for (size_t i = 0; i < n_calls; i++) {
        const char *name = va_arg(ap, const char *);
        const char *args = va_arg(ap, const char *);
        assert_string_equal(o.name[i], name);
        assert_string_equal(o.args[i], args);
    }
    va_end(ap);
    h_out_free(&o);
}

/* Each of cases[0, n) (malformed or not a call) comes out as content byte for
 * byte, with no call, under every split. */
static inline void h_expect_all_content(const toolcall_parser_options *opt, const char *const *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h_out r;
        h_run_all(opt, cases[i], &r);
        assert_string_equal(r.content, cases[i]);
        assert_int_equal(r.n_calls, 0);
        h_out_free(&r);
    }
}

/* Options for a format given by its syntax/markers. */
static toolcall_parser_options h_opts(const toolcall_format *f, const char *tools, bool in_reasoning) {
    toolcall_parser_options o = {f, tools, in_reasoning, 12345};
    return o;
}

/* ---- real templates (shared/templates) */

/* Whether two JSON texts parse to equal values. */
static inline bool h_json_equal(const char *a, const char *b) {
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    bool eq = x && y && cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

/* TOOLS_JSON as every template can render it: some print each tool's
 * description; Command R+'s needs each parameter's description and a
 * `required` list, and its json_to_python_type recurses without end on a
 * type list holding "null" (in Jinja2 too) and needs additionalProperties
 * for an object type, so zip and opts are left out (no call uses them). */
static inline cJSON *h_template_tools(void) {
    cJSON *tools = cJSON_Parse(TOOLS_JSON), *t;
    assert_non_null(tools);
    cJSON_ArrayForEach(t, tools) {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!cJSON_GetObjectItemCaseSensitive(fn, "description")) cJSON_AddStringToObject(fn, "description", "A tool.");
        cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties"), *prop;
        cJSON_DeleteItemFromObjectCaseSensitive(props, "zip");
        cJSON_DeleteItemFromObjectCaseSensitive(props, "opts");
        cJSON_ArrayForEach(prop, props) {
            if (!cJSON_GetObjectItemCaseSensitive(prop, "description")) cJSON_AddStringToObject(prop, "description", "A value.");
        }
        if (!cJSON_GetObjectItemCaseSensitive(params, "required")) cJSON_AddArrayToObject(params, "required");
    }
    return tools;
}

/* Renders the conversation messages_json (a JSON array) with h_template_tools()
 * through template source src; the malloc'd prompt text (fails the test on an error). */
static inline char *h_render_template(const char *name, const char *src, const char *messages_json) {
    larder_error err = {0};
    chat_prompt *cp = chat_prompt_create(src, "", "", &err);
    if (!cp) fail_msg("%s: %s", name, err.message);
    cJSON *messages = cJSON_Parse(messages_json), *tools = h_template_tools();
    assert_non_null(messages);
    chat_prompt_input in = {messages, tools, NULL, NULL};
    size_t len = 0;
    char *text = chat_prompt_render(cp, &in, &len, &err);
    if (!text) fail_msg("%s: %s", name, err.message);
    cJSON_Delete(messages);
    cJSON_Delete(tools);
    chat_prompt_free(cp);
    return text;
}

#endif
