/*
 * toolcall_syntax_llama3.c — Llama 3.1/3.2/3.3 calls: a JSON object
 * {"name": N, "parameters": {..}} at the start of the answer (after an
 * optional <|python_tag|>), several separated by ';' or whitespace. There
 * is no open marker: toolcall_parser.c begins the block at the '{'
 * (ST_ANSWER, ST_LLAMA_NEXT) and the block is the JSON alone.
 */
#include "chat/toolcall_block.h"

enum { L_JSON };

static void llama3_begin(toolcall_parser *p) { tc_begin_json(p, p->cur, L_JSON); }

static bool llama3_step(toolcall_parser *p) {
    size_t end = 0;
    bool failed;
    if (!tc_feed_json(p, &end, &failed)) return failed ? tc_block_fail(p, end) : false;
    if (tc_json_calls_parse(p, end) != 0) return tc_block_fail(p, end);
    return tc_block_done(p, end);
}

const toolcall_syntax_ops toolcall_syntax_llama3 = {llama3_begin, llama3_step};
