/*
 * toolcall_syntax_minimax.c — MiniMax-M2 blocks:
 *   <minimax:tool_call> (<invoke name="N"> (<parameter name="P">V</parameter>)* </invoke>)+ </minimax:tool_call>
 * Parameter values are raw text, typed by the tool's schema (toolcall_args.c).
 */
#include <string.h>

#include "chat/toolcall_block.h"

enum { M_INVOKE_OR_END, M_NAME, M_PARAM_OR_END, M_PNAME, M_VALUE };

static void minimax_begin(toolcall_parser *p) { p->sub = M_INVOKE_OR_END; }

static bool minimax_invoke_or_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, "<invoke name=\"", p->fmt.call_close, &i);
    if (w < 1) return w == 0;
    if (w == 2) return tc_xml_block_close(p, i);
    p->name_a = p->cur = i + strlen("<invoke name=\"");
    p->sub = M_NAME;
    return true;
}

/* A function or parameter name, up to '">'. */
static bool minimax_name(toolcall_parser *p) {
    size_t a = p->sub == M_NAME ? p->name_a : p->key_a, fail_at = NPOS;
    size_t j = tc_scan_name(p, a, '"', &fail_at);
    if (j == NPOS) return fail_at == NPOS ? false : tc_block_fail(p, fail_at);
    p->cur = j;                      /* wait here for the '>' */
    if (j + 1 == p->buf.len) return false;
    if (p->buf.data[j + 1] != '>' || j == a) return tc_block_fail(p, j + 1);
    if (p->sub == M_NAME) {
        if (!tc_push_xcall(p, (span){a, j})) return tc_block_fail(p, j);
        p->sub = M_PARAM_OR_END;
    } else {
        p->key = (span){a, j};
        p->val_a = j + 2;
        p->sub = M_VALUE;
    }
    p->cur = j + 2;
    return true;
}

static bool minimax_step(toolcall_parser *p) {
    switch (p->sub) {
    case M_INVOKE_OR_END: return minimax_invoke_or_close(p);
    case M_NAME: case M_PNAME: return minimax_name(p);
    case M_PARAM_OR_END: return tc_step_param_or_end(p, "<parameter name=\"", "</invoke>", M_PNAME, M_INVOKE_OR_END);
    case M_VALUE: return tc_step_param_value(p, "</parameter>", M_PARAM_OR_END);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_minimax = {minimax_begin, minimax_step};
