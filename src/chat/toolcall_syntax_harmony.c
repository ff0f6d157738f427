/*
 * toolcall_syntax_harmony.c — gpt-oss calls (the harmony format): a message
 * addressed to a function,
 *   [<|start|>assistant] to=functions.N<|channel|>commentary [<|constrain|>]json<|message|>{..}<|call|>
 * as openai-gpt-oss-120b.jinja renders them. The block opens at
 * " to=functions." (the "<|start|>assistant" header before it is one of the
 * format's drop markers, as are the final/commentary channel headers around
 * content; the analysis channel is reasoning: toolcall_format.c). <|call|>
 * ends the generation, so the text may stop right after the arguments: the
 * call then streamed and is closed at the end like any committed call.
 */
#include <string.h>

#include "chat/toolcall_block.h"

enum { G_NAME, G_HEADER, G_ARGS, G_JSON, G_CLOSE };

#define HARMONY_CHANNEL "<|channel|>"
#define HARMONY_MESSAGE "<|message|>"
#define HARMONY_HEADER_MAX 64   /* "commentary <|constrain|>json" and the like */

static void harmony_begin(toolcall_parser *p) {
    p->sub = G_NAME;
    p->name_a = p->cur;
}

/* The function name, up to <|channel|>; one of the tools. */
static bool harmony_name(toolcall_parser *p) {
    const char *s = p->buf.data;
    size_t j;
    for (j = p->cur; j < p->buf.len; j++) {
        if (s[j] == '<') break;
        if (tc_is_ws(s[j]) || j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return tc_block_fail(p, j);
    }
    p->cur = j;
    if (j == p->buf.len) return false;
    int w = tc_match_at(p, j, HARMONY_CHANNEL);
    if (w == -1) return false;
    if (w == 0 || !tc_name_ok(p, s + p->name_a, j - p->name_a)) return tc_block_fail(p, j);
    p->name = (span){p->name_a, j};
    p->key_a = p->cur = j + strlen(HARMONY_CHANNEL);
    p->sub = G_HEADER;
    return true;
}

/* The rest of the header (channel, content type) up to <|message|>. */
static bool harmony_header(toolcall_parser *p) {
    size_t hold = 0;
    size_t pos = tc_find_from(p, p->cur, HARMONY_MESSAGE, &hold);
    if (pos == NPOS) {
        p->cur = hold;
        return hold - p->key_a > HARMONY_HEADER_MAX ? tc_block_fail(p, hold) : false;
    }
    if (pos - p->key_a > HARMONY_HEADER_MAX || tc_match_at(p, p->key_a, "commentary") != 1) return tc_block_fail(p, pos);
    p->cur = pos + strlen(HARMONY_MESSAGE);
    p->sub = G_ARGS;
    return true;
}

static bool harmony_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, p->fmt.call_close, NULL, &i);
    if (w < 1) return w == 0;
    return tc_block_done(p, i + strlen(p->fmt.call_close));
}

static bool harmony_step(toolcall_parser *p) {
    switch (p->sub) {
    case G_NAME: return harmony_name(p);
    case G_HEADER: return harmony_header(p);
    case G_ARGS: return tc_step_args_open(p, G_JSON);
    case G_JSON: return tc_step_args_json(p, G_CLOSE);
    case G_CLOSE: return harmony_close(p);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_harmony = {harmony_begin, harmony_step};
