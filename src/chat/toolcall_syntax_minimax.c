/*
 * toolcall_syntax_minimax.c — invoke/parameter blocks:
 *   MiniMax-M2:     <minimax:tool_call> (<invoke name="N"> (<parameter name="P">V</parameter>)* </invoke>)+
 *                   </minimax:tool_call>
 *   DeepSeek V3.2:  <｜DSML｜function_calls> (<｜DSML｜invoke name="N"> (<｜DSML｜parameter name="P"
 *                   string="true|false">V</｜DSML｜parameter>)* </｜DSML｜invoke>)+ </｜DSML｜function_calls>
 * Parameter values are raw text, typed by the tool's schema (toolcall_args.c);
 * DSML's string="…" attribute says the same thing and is read only as syntax.
 */
#include <string.h>

#include "chat/toolcall_block.h"

typedef struct invoke_markers {
    const char *invoke_open, *invoke_close, *param_open, *param_close;
    bool string_attr;            /* a parameter's name is followed by string="true|false" */
} invoke_markers;

#define DSML "\xef\xbd\x9c" "DSML" "\xef\xbd\x9c"
static const invoke_markers MINIMAX = {"<invoke name=\"", "</invoke>", "<parameter name=\"", "</parameter>", false};
static const invoke_markers DSML_MARKERS = {"<" DSML "invoke name=\"", "</" DSML "invoke>", "<" DSML "parameter name=\"",
                                            "</" DSML "parameter>", true};

enum { M_INVOKE_OR_END, M_NAME, M_PARAM_OR_END, M_PNAME, M_VALUE };

static const invoke_markers *markers(const toolcall_parser *p) {
    return p->fmt.syntax == TOOLCALL_DSML ? &DSML_MARKERS : &MINIMAX;
}

static void minimax_begin(toolcall_parser *p) { p->sub = M_INVOKE_OR_END; }

static bool minimax_invoke_or_close(toolcall_parser *p) {
    size_t i;
    const char *open = markers(p)->invoke_open;
    int w = tc_next_marker(p, open, p->fmt.call_close, &i);
    if (w < 1) return w == 0;
    if (w == 2) return tc_xml_block_close(p, i);
    p->name_a = p->cur = i + strlen(open);
    p->sub = M_NAME;
    return true;
}

/* A function or parameter name, up to '">' (DSML parameters: up to
 * '" string="true">' or '" string="false">'). */
static bool minimax_name(toolcall_parser *p) {
    size_t a = p->sub == M_NAME ? p->name_a : p->key_a, fail_at = NPOS;
    size_t j = tc_scan_name(p, a, '"', &fail_at);
    if (j == NPOS) return fail_at == NPOS ? false : tc_block_fail(p, fail_at);
    p->cur = j;                      /* wait here for what follows the quote */
    size_t after = j + 2;
    if (p->sub == M_PNAME && markers(p)->string_attr) {
        int w = tc_which_marker(p, j, "\" string=\"true\">", "\" string=\"false\">");
        if (w == -1) return false;
        if (w == 0 || j == a) return tc_block_fail(p, j);
        after = j + strlen(w == 1 ? "\" string=\"true\">" : "\" string=\"false\">");
    } else {
        if (j + 1 == p->buf.len) return false;
        if (p->buf.data[j + 1] != '>' || j == a) return tc_block_fail(p, j + 1);
    }
    if (p->sub == M_NAME) {
        if (!tc_push_xcall(p, (span){a, j})) return tc_block_fail(p, j);
        p->sub = M_PARAM_OR_END;
    } else {
        p->key = (span){a, j};
        p->val_a = after;
        p->sub = M_VALUE;
    }
    p->cur = after;
    return true;
}

static bool minimax_step(toolcall_parser *p) {
    const invoke_markers *m = markers(p);
    switch (p->sub) {
    case M_INVOKE_OR_END: return minimax_invoke_or_close(p);
    case M_NAME: case M_PNAME: return minimax_name(p);
    case M_PARAM_OR_END: return tc_step_param_or_end(p, m->param_open, m->invoke_close, M_PNAME, M_INVOKE_OR_END);
    case M_VALUE: return tc_step_param_value(p, m->param_close, M_PARAM_OR_END);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_minimax = {minimax_begin, minimax_step};
