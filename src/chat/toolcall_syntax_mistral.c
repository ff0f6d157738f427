/*
 * toolcall_syntax_mistral.c — Mistral blocks after [TOOL_CALLS]: a JSON
 * array of {"name", "arguments"} objects (Mistral Nemo), or
 * N[ARGS]{..} / N[CALL_ID]id[ARGS]{..} (Small 3.2, Devstral, Ministral).
 * Ids are 9 alphanumerics, as Mistral's templates demand (toolcall_block.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "chat/toolcall_block.h"

enum { T_BEGIN, T_NAME, T_CALLID, T_ARGS_WS, T_JSON };

static void mistral_begin(toolcall_parser *p) { p->sub = T_BEGIN; }

static bool mistral_array_or_name(toolcall_parser *p) {
    size_t i = tc_skip_ws(p, p->cur);
    p->cur = i;
    if (i == p->buf.len) return false;
    if (p->buf.data[i] == '[') return tc_begin_json(p, i, T_JSON);
    p->name_a = i;
    p->sub = T_NAME;
    return true;
}

/* The function name (or the call id) up to [CALL_ID] / [ARGS]. */
static bool mistral_name_or_id(toolcall_parser *p) {
    const char *s = p->buf.data;
    size_t len = p->buf.len, j;
    bool is_name = p->sub == T_NAME;
    for (j = p->cur; j < len; j++) {
        char c = s[j];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (is_name && (c == '_' || c == '-' || c == '.' || c == ':'));
        if (c == '[') break;
        if (!ok || j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return tc_block_fail(p, j);
    }
    p->cur = j;
    if (j == len) return false;
    int w = tc_which_marker(p, j, "[ARGS]", is_name ? "[CALL_ID]" : "[ARGS]");
    if (w == -1) return false;
    if (w == 0 || (is_name && j == p->name_a)) return tc_block_fail(p, j);
    if (is_name) p->name = (span){p->name_a, j};
    if (w == 2) {
        p->name_a = p->cur = j + strlen("[CALL_ID]");   /* the id's length is bounded the same way */
        p->sub = T_CALLID;
    } else {
        p->cur = j + strlen("[ARGS]");
        p->sub = T_ARGS_WS;
    }
    return true;
}

/* The array of calls, or the one call's arguments object. */
static bool mistral_json(toolcall_parser *p) {
    const char *s = p->buf.data;
    size_t end = 0;
    bool failed;
    if (!tc_feed_json(p, &end, &failed)) return failed ? tc_block_fail(p, end) : false;
    if (p->json_is_array) {
        if (tc_json_calls_parse(p, end) != 0) return tc_block_fail(p, end);
    } else {
        size_t nl = p->name.b - p->name.a;
        if (tjson_value_end(s, end, p->json_start) != end || !tc_name_ok(p, s + p->name.a, nl) ||
            utf8_valid_prefix(s + p->json_start, end - p->json_start) != end - p->json_start)
            return tc_block_fail(p, end);
        char *nm = tc_dup_n(s + p->name.a, nl, &p->oom);
        char *ar = tc_dup_n(s + p->json_start, end - p->json_start, &p->oom);
        if (tc_pending_add(p, nm, ar) != 0) return tc_block_fail(p, end);
    }
    return tc_block_done(p, end);
}

static bool mistral_step(toolcall_parser *p) {
    switch (p->sub) {
    case T_BEGIN: return mistral_array_or_name(p);
    case T_NAME: case T_CALLID: return mistral_name_or_id(p);
    case T_ARGS_WS: return tc_step_args_open(p, T_JSON);
    case T_JSON: return mistral_json(p);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_mistral = {mistral_begin, mistral_step};
