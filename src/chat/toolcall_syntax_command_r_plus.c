/*
 * toolcall_syntax_command_r_plus.c — Command R+'s calls (c4ai-command-r-plus
 * tool_use template): a JSON list of actions in a fenced block after
 * "Action:",
 *
 *   Action: ```json
 *   [
 *       {
 *           "tool_name": N,
 *           "parameters": {..}
 *       }, ...
 *   ]```
 *
 * (the template writes "tool_name" before "parameters"; whitespace anywhere
 * between the tokens). The list is walked element by element: each call's
 * name is checked against the tools as it is read, and the call commits
 * (CALL_START) when its parameters object opens, which then streams
 * (tc_jstream_args), as Kimi's and Mistral's [ARGS] calls do. Command R7B / Command A write <|START_ACTION|> instead:
 * toolcall_syntax_hermes.c.
 */
#include <string.h>

#include "chat/toolcall_block.h"

/* The literal tokens between the fence and an element's parameters, in order. */
enum {
    R_FENCE, R_LIST, R_ELEM, R_KEY_NAME, R_COLON_NAME, R_QUOTE, /* literals (LITERALS[sub]) */
    R_NAME, R_COMMA, R_KEY_PARAMS, R_COLON_PARAMS, R_ARGS, R_JSON, R_ELEM_CLOSE, R_NEXT, R_FENCE_CLOSE,
};

static const char *const LITERALS[] = {
    [R_FENCE] = "```json", [R_LIST] = "[", [R_ELEM] = "{", [R_KEY_NAME] = "\"tool_name\"", [R_COLON_NAME] = ":",
    [R_QUOTE] = "\"", [R_COMMA] = ",", [R_KEY_PARAMS] = "\"parameters\"", [R_COLON_PARAMS] = ":",
    [R_ELEM_CLOSE] = "}", [R_FENCE_CLOSE] = "```",
};

static void crp_begin(toolcall_parser *p) { p->sub = R_FENCE; }

/* The state's literal after whitespace; then the next state. */
static bool crp_literal(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, LITERALS[p->sub], NULL, &i);
    if (w < 1) return w == 0;
    p->cur = i + strlen(LITERALS[p->sub]);
    if (p->sub == R_QUOTE) p->name_a = p->cur;
    p->sub++;
    return true;
}

/* The name up to its closing quote: one of the tools, else the block fails. */
static bool crp_name(toolcall_parser *p) {
    size_t fail_at;
    size_t q = tc_scan_name(p, p->name_a, '"', &fail_at);
    if (q == NPOS) return fail_at == NPOS ? false : tc_block_fail(p, fail_at);
    if (!tc_name_ok(p, p->buf.data + p->name_a, q - p->name_a)) return tc_block_fail(p, p->name_a);
    p->name = (span){p->name_a, q};
    p->cur = q + 1;
    p->sub = R_COMMA;
    return true;
}

/* After an element: another one (',') or the list's end (']'). */
static bool crp_next(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, ",", "]", &i);
    if (w < 1) return w == 0;
    p->cur = i + 1;
    p->sub = w == 1 ? R_ELEM : R_FENCE_CLOSE;
    return true;
}

static bool crp_step(toolcall_parser *p) {
    switch (p->sub) {
    case R_NAME: return crp_name(p);
    case R_ARGS: return tc_step_args_open(p, R_JSON);
    case R_JSON: return tc_step_args_json(p, R_ELEM_CLOSE);
    case R_NEXT: return crp_next(p);
    case R_FENCE_CLOSE: {
        size_t i;
        int w = tc_next_marker(p, LITERALS[R_FENCE_CLOSE], NULL, &i);
        if (w < 1) return w == 0;
        return tc_block_done(p, i + strlen(LITERALS[R_FENCE_CLOSE]));
    }
    default: return crp_literal(p);
    }
}

const toolcall_syntax_ops toolcall_syntax_command_r_plus = {crp_begin, crp_step};
