/*
 * toolcall_syntax_xml.c — the <function=…> XML blocks (Qwen3-Coder,
 * Qwen3.5, Nemotron 3, Step-3.5, Seed-OSS):
 *   <tool_call> (<function=N> (<parameter=P> V </parameter>)* </function>)+ </tool_call>
 * Parameter values are raw text, typed by the tool's schema
 * (toolcall_args.c); the newline the template writes around a value is not
 * part of it.
 */
#include <string.h>

#include "chat/toolcall_block.h"

enum { X_FUNC, X_NAME, X_PARAM_OR_END, X_PNAME, X_VALUE, X_AFTER_FUNC };

static void xml_begin(toolcall_parser *p) { p->sub = X_FUNC; }

/* Before the first function only "<function=" may follow; after one, the
 * block's close marker may, too. */
static bool xml_function_or_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, p->sub == X_FUNC ? NULL : p->fmt.call_close, "<function=", &i);
    if (w < 1) return w == 0;
    if (w == 1) return tc_xml_block_close(p, i);
    p->name_a = p->cur = i + strlen("<function=");
    p->sub = X_NAME;
    return true;
}

/* A function or parameter name, up to '>'. */
static bool xml_name(toolcall_parser *p) {
    size_t fail_at = NPOS;
    size_t j = tc_scan_name(p, p->sub == X_NAME ? p->name_a : p->key_a, '>', &fail_at);
    if (j == NPOS) return fail_at == NPOS ? false : tc_block_fail(p, fail_at);
    if (p->sub == X_NAME) {
        if (j == p->name_a || !tc_push_xcall(p, (span){p->name_a, j})) return tc_block_fail(p, j);
        p->sub = X_PARAM_OR_END;
    } else {
        if (j == p->key_a) return tc_block_fail(p, j);
        p->key = (span){p->key_a, j};
        p->val_a = j + 1;
        p->sub = X_VALUE;
    }
    p->cur = j + 1;
    return true;
}

static bool xml_step(toolcall_parser *p) {
    switch (p->sub) {
    case X_FUNC: case X_AFTER_FUNC: return xml_function_or_close(p);
    case X_NAME: case X_PNAME: return xml_name(p);
    case X_PARAM_OR_END: return tc_step_param_or_end(p, "<parameter=", "</function>", X_PNAME, X_AFTER_FUNC);
    case X_VALUE: return tc_step_param_value(p, "</parameter>", X_PARAM_OR_END);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_xml = {xml_begin, xml_step};
