/*
 * toolcall_syntax_section.c — calls written as a section of name + JSON
 * entries between special tokens:
 *   Kimi K2:        <|tool_calls_section_begin|> (<|tool_call_begin|>functions.N:I
 *                   <|tool_call_argument_begin|>{..}<|tool_call_end|>)+ <|tool_calls_section_end|>
 *   DeepSeek V3.1:  <｜tool▁calls▁begin｜> (<｜tool▁call▁begin｜>N<｜tool▁sep｜>{..}<｜tool▁call▁end｜>)+
 *                   <｜tool▁calls▁end｜>
 * (the markers are what moonshotai-Kimi-K2 / Kimi-K2-Instruct / Kimi-K2-Thinking
 * and deepseek-ai-DeepSeek-V3.1 render for an assistant's tool calls). Kimi's
 * entry names the call "functions.N:I" (I its index): N is the function. The
 * arguments stream from their '{' (tc_jstream_args).
 */
#include <string.h>

#include "chat/toolcall_block.h"

typedef struct section_markers {
    const char *call_open, *sep, *call_close;
    const char *name_prefix;     /* dropped from the name when present; NULL: none */
    bool index_suffix;           /* the name ends ":digits", dropped */
} section_markers;

static const section_markers KIMI = {"<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>",
                                     "functions.", true};
static const section_markers DEEPSEEK = {"<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "begin\xef\xbd\x9c>",
                                         "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>",
                                         "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "end\xef\xbd\x9c>", NULL, false};

enum { S_CALL_OR_END, S_NAME, S_ARGS, S_JSON, S_CALL_CLOSE };

static const section_markers *markers(const toolcall_parser *p) {
    return p->fmt.syntax == TOOLCALL_KIMI ? &KIMI : &DEEPSEEK;
}

static void section_begin(toolcall_parser *p) { p->sub = S_CALL_OR_END; }

/* An entry, or (after one) the section's end. */
static bool section_call_or_end(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, markers(p)->call_open, p->n_pend ? p->fmt.call_close : NULL, &i);
    if (w < 1) return w == 0;
    if (w == 2) return tc_block_done(p, i + strlen(p->fmt.call_close));
    p->name_a = p->cur = i + strlen(markers(p)->call_open);
    p->sub = S_NAME;
    return true;
}

/* The name up to the separator: one of the tools, else the block fails. */
static bool section_name(toolcall_parser *p) {
    const section_markers *m = markers(p);
    const char *s = p->buf.data;
    size_t hold = 0;
    size_t pos = tc_find_from(p, p->cur, m->sep, &hold);
    size_t limit = p->name_a + TOOLCALL_MAX_NAME_BYTES + 32;
    if (pos == NPOS) {
        p->cur = hold;
        return hold > limit ? tc_block_fail(p, hold) : false;
    }
    if (pos > limit) return tc_block_fail(p, limit);
    size_t a = p->name_a, b = pos;
    while (a < b && tc_is_ws(s[a])) a++;
    while (b > a && tc_is_ws(s[b - 1])) b--;
    size_t pl = m->name_prefix ? strlen(m->name_prefix) : 0;
    if (pl && b - a > pl && !memcmp(s + a, m->name_prefix, pl)) a += pl;
    if (m->index_suffix) {
        size_t j = b;
        while (j > a && s[j - 1] >= '0' && s[j - 1] <= '9') j--;
        if (j < b && j > a && s[j - 1] == ':') b = j - 1;
    }
    if (!tc_name_ok(p, s + a, b - a) || memchr(s + a, '\n', b - a)) return tc_block_fail(p, p->name_a);
    p->name = (span){a, b};
    p->cur = pos + strlen(m->sep);
    p->sub = S_ARGS;
    return true;
}

static bool section_call_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, markers(p)->call_close, NULL, &i);
    if (w < 1) return w == 0;
    p->cur = i + strlen(markers(p)->call_close);
    p->sub = S_CALL_OR_END;
    return true;
}

static bool section_step(toolcall_parser *p) {
    switch (p->sub) {
    case S_CALL_OR_END: return section_call_or_end(p);
    case S_NAME: return section_name(p);
    case S_ARGS: return tc_step_args_open(p, S_JSON);
    case S_JSON: return tc_step_args_json(p, S_CALL_CLOSE);
    case S_CALL_CLOSE: return section_call_close(p);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_section = {section_begin, section_step};
