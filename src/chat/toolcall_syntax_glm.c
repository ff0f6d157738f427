/*
 * toolcall_syntax_glm.c — GLM-style blocks (GLM-4.6/4.7, Spark, Ling 3,
 * Laguna): <tool_call>N (<arg_key>K</arg_key> <arg_value>V</arg_value>)* </tool_call>,
 * newlines allowed between the parts. Values are raw text, typed by the
 * tool's schema (toolcall_args.c).
 */
#include <string.h>

#include "chat/toolcall_block.h"

enum { G_NAME, G_ARG_OR_END, G_KEY, G_VAL_OPEN, G_VALUE };

static void glm_begin(toolcall_parser *p) {
    p->sub = G_NAME;
    p->name_a = p->cur;
}

/* The function name: up to the first '<' or newline, blanks around it dropped. */
static bool glm_name(toolcall_parser *p) {
    const char *s = p->buf.data;
    size_t len = p->buf.len, i, j;
    if (p->cur == p->name_a) {                /* blanks before the name */
        i = tc_skip_ws(p, p->cur);
        if (i == len) return false;
        p->name_a = p->cur = i;
    }
    for (j = p->cur; j < len && s[j] != '<' && s[j] != '\n'; j++)
        if (j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return tc_block_fail(p, j);
    p->cur = j;
    if (j == len) return false;
    i = j;                                    /* the name, without surrounding blanks */
    while (p->name_a < i && tc_is_ws(s[p->name_a])) p->name_a++;
    while (i > p->name_a && tc_is_ws(s[i - 1])) i--;
    if (i == p->name_a || !tc_push_xcall(p, (span){p->name_a, i})) return tc_block_fail(p, j);
    p->sub = G_ARG_OR_END;
    return true;
}

static bool glm_arg_or_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, "<arg_key>", p->fmt.call_close, &i);
    if (w < 1) return w == 0;
    if (w == 2) return tc_xml_block_close(p, i);
    if (p->xcalls[p->n_xcalls - 1].n_params >= TOOLCALL_MAX_PARAMS) return tc_block_fail(p, i);
    p->key_a = p->cur = i + strlen("<arg_key>");
    p->sub = G_KEY;
    return true;
}

static bool glm_key(toolcall_parser *p) {
    size_t hold = 0;
    size_t pos = tc_find_from(p, p->cur, "</arg_key>", &hold);
    if (pos == NPOS) {
        p->cur = hold;
        return hold - p->key_a > TOOLCALL_MAX_NAME_BYTES ? tc_block_fail(p, hold) : false;
    }
    if (pos == p->key_a || pos - p->key_a > TOOLCALL_MAX_NAME_BYTES) return tc_block_fail(p, pos);
    p->key = (span){p->key_a, pos};
    p->cur = pos + strlen("</arg_key>");
    p->sub = G_VAL_OPEN;
    return true;
}

static bool glm_value_open(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, "<arg_value>", NULL, &i);
    if (w < 1) return w == 0;
    p->val_a = p->cur = i + strlen("<arg_value>");
    p->sub = G_VALUE;
    return true;
}

static bool glm_step(toolcall_parser *p) {
    switch (p->sub) {
    case G_NAME: return glm_name(p);
    case G_ARG_OR_END: return glm_arg_or_close(p);
    case G_KEY: return glm_key(p);
    case G_VAL_OPEN: return glm_value_open(p);
    case G_VALUE: return tc_step_param_value(p, "</arg_value>", G_ARG_OR_END);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_glm = {glm_begin, glm_step};
