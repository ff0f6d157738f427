/*
 * toolcall_syntax_hermes.c — Hermes-style blocks (Qwen2.5/3, Hermes,
 * Granite ...): <tool_call> {"name": N, "arguments": {..}} </tool_call>, or
 * a JSON array of such objects inside one block.
 */
#include <string.h>

#include "chat/toolcall_block.h"

enum { H_BEGIN, H_JSON, H_CLOSE };

static void hermes_begin(toolcall_parser *p) { p->sub = H_BEGIN; }

static bool hermes_step(toolcall_parser *p) {
    size_t len = p->buf.len, i, end = 0;
    bool failed;
    int w;
    switch (p->sub) {
    case H_BEGIN:
        i = tc_skip_ws(p, p->cur);
        if (i == len) { p->cur = i; return false; }
        if (p->buf.data[i] != '{' && p->buf.data[i] != '[') return tc_block_fail(p, i);
        return tc_begin_json(p, i, H_JSON);
    case H_JSON:
        if (!tc_feed_json(p, &end, &failed)) return failed ? tc_block_fail(p, end) : false;
        p->json_end = end;
        p->cur = end;
        p->sub = H_CLOSE;
        return true;
    case H_CLOSE:
        w = tc_next_marker(p, p->fmt.call_close, NULL, &i);
        if (w < 1) return w == 0;
        end = i + strlen(p->fmt.call_close);
        if (tc_json_calls_parse(p, p->json_end) != 0) return tc_block_fail(p, end);
        return tc_block_done(p, end);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_hermes = {hermes_begin, hermes_step};
