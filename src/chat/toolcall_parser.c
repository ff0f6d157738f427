/*
 * toolcall_parser.c — the streaming output parser (contract in
 * toolcall_parser.h).
 *
 * Key idea: one buffer `buf` holds the bytes not yet resolved; `cur` is the
 * scan position inside it, so each byte is examined a bounded number of
 * times however the text is split. A state machine walks the output:
 *
 *   START ──<think>──► REASONING ──</think>──► ANSWER ──► CONTENT ⇄ BLOCK
 *                                               │ (Llama 3: a leading "{")
 *                                               └──► BLOCK(L_JSON) ──► LLAMA_NEXT
 *
 * CONTENT emits text up to the next call-open marker (holding back a suffix
 * that could begin one). BLOCK parses one call block with the format's
 * syntax, each in its own file behind a {begin, step} interface
 * (toolcall_syntax_<name>.c, over the kit in toolcall_block.h); the block's
 * bytes stay in `buf` (buf[0] is its open marker) until it resolves: on
 * success its calls are emitted and the bytes dropped; on failure the parser
 * returns to CONTENT with `cur` at the failure point, so the block's bytes
 * are emitted as content verbatim and scanning goes on from there (never
 * rescanning what the block already looked at).
 *
 * Content and reasoning pass through a channel that drops leading
 * whitespace and holds trailing whitespace until more text follows, so
 * whitespace next to markers and at the ends disappears consistently in the
 * deltas and the result.
 */
#include "chat/toolcall_parser.h"

#include <stdlib.h>
#include <string.h>

#include "chat/toolcall_block.h"

/* ---- channels */

static void channel_out(toolcall_parser *p, int ch, const char *s, size_t n) {
    if (n == 0) return;
    strbuf_append(&p->ch[ch].text, s, n);
    tc_event_push(p, ch == CH_CONTENT ? TOOLCALL_EVENT_CONTENT : TOOLCALL_EVENT_REASONING, 0, s, n);
}

/* Emits s[0, n) on a channel: leading whitespace of the whole channel is
 * dropped, trailing whitespace is held until non-whitespace follows. */
static void channel_emit(toolcall_parser *p, int ch, const char *s, size_t n) {
    channel *c = &p->ch[ch];
    if (!c->started)
        while (n > 0 && tc_is_ws(*s)) s++, n--;
    if (n == 0) return;
    size_t last = n;
    while (last > 0 && tc_is_ws(s[last - 1])) last--;
    if (last > 0) {
        c->started = true;
        channel_out(p, ch, c->held_ws.data, c->held_ws.len);
        strbuf_reset(&c->held_ws);
        channel_out(p, ch, s, last);
    }
    strbuf_append(&c->held_ws, s + last, n - last);
}

/* Emits buf[0, n) on a channel and drops it from buf. */
static void emit_buf(toolcall_parser *p, int ch, size_t n) {
    channel_emit(p, ch, p->buf.data, n);
    tc_consume(p, n);
}

/* ---- blocks */

static const toolcall_syntax_ops *syntax_ops(toolcall_syntax s) {
    switch (s) {
    case TOOLCALL_HERMES: return &toolcall_syntax_hermes;
    case TOOLCALL_XML_FUNCTION: return &toolcall_syntax_xml;
    case TOOLCALL_LLAMA3_JSON: return &toolcall_syntax_llama3;
    case TOOLCALL_MISTRAL: return &toolcall_syntax_mistral;
    case TOOLCALL_MINIMAX: return &toolcall_syntax_minimax;
    case TOOLCALL_GLM: return &toolcall_syntax_glm;
    case TOOLCALL_KIMI: case TOOLCALL_DEEPSEEK: return &toolcall_syntax_section;
    case TOOLCALL_DSML: return &toolcall_syntax_minimax;
    case TOOLCALL_COMMAND_R: return &toolcall_syntax_hermes;
    case TOOLCALL_COMMAND_R_PLUS: return &toolcall_syntax_command_r_plus;
    case TOOLCALL_HARMONY: return &toolcall_syntax_harmony;
    case TOOLCALL_GEMMA: return &toolcall_syntax_gemma;
    case TOOLCALL_NONE: break;
    }
    return NULL;
}

static bool calls_active(const toolcall_parser *p) {
    return p->calls_on && p->n_calls < TOOLCALL_MAX_CALLS;
}

/* Enters ST_BLOCK for a block whose syntax starts parsing at buf[at]. */
static bool block_begin_at(toolcall_parser *p, size_t at) {
    tc_block_reset(p);
    p->state = ST_BLOCK;
    p->cur = at;
    p->syntax->begin(p);
    return true;
}

static bool step_block(toolcall_parser *p) {
    if (p->buf.len > TOOLCALL_MAX_BLOCK_BYTES) {
        /* cut at the limit itself, so that a streaming call ends in the same
         * place however the text was split */
        tc_jstream_run(p, TOOLCALL_MAX_BLOCK_BYTES);
        return tc_block_fail(p, TOOLCALL_MAX_BLOCK_BYTES);
    }
    return p->syntax->step(p);
}

/* ---- top-level steps; each returns true when it made progress */

static bool step_start(toolcall_parser *p) {
    size_t i = tc_skip_ws(p, p->cur);
    p->cur = i;
    if (!p->fmt.think_open) { p->state = ST_ANSWER; p->cur = 0; return true; }
    if (i == p->buf.len) return false;
    int w = tc_match_at(p, i, p->fmt.think_open);
    if (w == -1) return false;
    if (w == 1) tc_consume(p, i + strlen(p->fmt.think_open));
    p->cur = 0;
    p->state = w == 1 || p->starts_in_reasoning ? ST_REASONING : ST_ANSWER;
    return true;
}

static bool step_reasoning(toolcall_parser *p) {
    size_t hold = 0;
    size_t pos = tc_find_from(p, p->cur, p->fmt.think_close, &hold);
    if (pos == NPOS) {
        emit_buf(p, CH_REASONING, hold);
        return false;
    }
    emit_buf(p, CH_REASONING, pos);
    tc_consume(p, strlen(p->fmt.think_close));
    strbuf_reset(&p->ch[CH_REASONING].held_ws);   /* reasoning's trailing whitespace */
    p->state = ST_ANSWER;
    return true;
}

/* The start of the answer: Llama 3 calls may begin here; else content. */
static bool step_answer(toolcall_parser *p) {
    if (p->fmt.syntax != TOOLCALL_LLAMA3_JSON || !calls_active(p)) {
        p->state = ST_CONTENT;
        p->cur = 0;
        return true;
    }
    size_t i = tc_skip_ws(p, p->cur);
    p->cur = i;
    if (i == p->buf.len) return false;
    int w = tc_match_at(p, i, "<|python_tag|>");
    if (w == -1) return false;
    if (w == 1) {
        i = tc_skip_ws(p, i + strlen("<|python_tag|>"));
        if (i == p->buf.len) return false;   /* cur stays before the tag: it is rechecked */
    }
    if (p->buf.data[i] != '{') {
        p->state = ST_CONTENT;
        p->cur = 0;
        return true;
    }
    return block_begin_at(p, i);
}

/* After a Llama 3 call: another may follow after whitespace or ';'. */
static bool step_llama_next(toolcall_parser *p) {
    size_t i = p->cur;
    while (i < p->buf.len && (tc_is_ws(p->buf.data[i]) || p->buf.data[i] == ';')) i++;
    p->cur = i;
    if (i == p->buf.len) return false;
    if (p->buf.data[i] == '{' && calls_active(p)) {
        return block_begin_at(p, i);
    }
    p->state = ST_CONTENT;
    p->cur = 0;
    return true;
}

/* Content up to the next call-open marker (which begins a block) or drop
 * marker (removed); a suffix that may begin either is held back. */
static bool step_content(toolcall_parser *p) {
    const char *open = calls_active(p) && p->fmt.call_open && *p->fmt.call_open ? p->fmt.call_open : NULL;
    if (!open && !p->fmt.drop) {
        emit_buf(p, CH_CONTENT, p->buf.len);
        return false;
    }
    size_t best = NPOS, best_len = 0, hold = p->buf.len;
    bool best_is_open = false;
    for (int k = -1; k == -1 || (p->fmt.drop && p->fmt.drop[k]); k++) {
        const char *m = k < 0 ? open : p->fmt.drop[k];
        if (!m) continue;
        size_t h = p->buf.len;
        size_t pos = tc_find_from(p, p->cur, m, &h);
        if (pos != NPOS && (best == NPOS || pos < best)) {
            best = pos;
            best_len = strlen(m);
            best_is_open = k < 0;
        }
        if (pos == NPOS && h < hold) hold = h;
    }
    if (best == NPOS) {
        emit_buf(p, CH_CONTENT, hold);
        return false;
    }
    emit_buf(p, CH_CONTENT, best);
    if (best_is_open) return block_begin_at(p, best_len);
    tc_consume(p, best_len);
    return true;
}

static void run(toolcall_parser *p) {
    for (;;) {
        bool progress = false;
        switch (p->state) {
        case ST_START: progress = step_start(p); break;
        case ST_REASONING: progress = step_reasoning(p); break;
        case ST_ANSWER: progress = step_answer(p); break;
        case ST_CONTENT: progress = step_content(p); break;
        case ST_BLOCK: progress = step_block(p); break;
        case ST_LLAMA_NEXT: progress = step_llama_next(p); break;
        case ST_FINISHED: break;
        }
        if (!progress || p->oom) return;
    }
}

/* ---- public API */

static void events_clear(toolcall_parser *p) {
    p->n_events = 0;
    strbuf_reset(&p->evtext);
}

static int check_oom(toolcall_parser *p, larder_error *err) {
    bool failed = p->oom || p->buf.failed || p->evtext.failed;
    for (int c = 0; c < 2; c++) failed = failed || p->ch[c].text.failed || p->ch[c].held_ws.failed;
    if (failed) {
        p->oom = true;
        return error_set(err, ERR_NOMEM, "out of memory parsing model output");
    }
    return 0;
}

toolcall_parser *toolcall_parser_create(const toolcall_parser_options *o, larder_error *err) {
    toolcall_parser *p = calloc(1, sizeof *p);
    if (!p) { error_set(err, ERR_NOMEM, "out of memory creating the output parser"); return NULL; }
    static const toolcall_format plain = {TOOLCALL_NONE, "", "", NULL, NULL, NULL, NULL, NULL};
    p->fmt = o && o->format ? *o->format : plain;
    p->syntax = syntax_ops(p->fmt.syntax);
    if (!p->fmt.call_open) p->fmt.call_open = "";
    if (!p->fmt.call_close) p->fmt.call_close = "";
    if (!p->fmt.think_open || !p->fmt.think_close || !*p->fmt.think_open || !*p->fmt.think_close)
        p->fmt.think_open = p->fmt.think_close = NULL;
    p->starts_in_reasoning = o && o->starts_in_reasoning && p->fmt.think_open;
    p->rng = o && o->id_seed ? o->id_seed : toolcall_id_seed();
    if (o && o->tools_json && p->fmt.syntax != TOOLCALL_NONE) {
        p->tools = toolcall_tools_parse(o->tools_json, strlen(o->tools_json), err);
        if (!p->tools) { toolcall_parser_free(p); return NULL; }
        p->calls_on = toolcall_tools_count(p->tools) > 0;
    }
    p->state = ST_START;
    tc_block_reset(p);
    return p;
}

void toolcall_parser_free(toolcall_parser *p) {
    if (!p) return;
    tc_block_reset(p);
    free(p->pend);
    free(p->params);
    free(p->xcalls);
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].id);
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
    strbuf_free(&p->stream_args);
    strbuf_free(&p->gconv);
    free(p->events);
    strbuf_free(&p->evtext);
    strbuf_free(&p->buf);
    for (int c = 0; c < 2; c++) {
        strbuf_free(&p->ch[c].text);
        strbuf_free(&p->ch[c].held_ws);
    }
    toolcall_tools_free(p->tools);
    free(p);
}

int toolcall_parser_feed(toolcall_parser *p, const char *text, size_t len, larder_error *err) {
    events_clear(p);
    if (p->oom) return error_set(err, ERR_NOMEM, "out of memory parsing model output");
    if (p->state == ST_FINISHED) return error_set(err, ERR_INVALID, "output parser fed after finish");
    if (len == 0) return 0;
    if (strbuf_append(&p->buf, text, len) != 0) return check_oom(p, err);
    run(p);
    return check_oom(p, err);
}

int toolcall_parser_finish(toolcall_parser *p, larder_error *err) {
    events_clear(p);
    if (p->oom) return error_set(err, ERR_NOMEM, "out of memory parsing model output");
    if (p->state == ST_FINISHED) return 0;
    run(p);
    /* Whatever is still held resolves now: an open reasoning block is
     * reasoning; an unfinished call block and any held marker prefix are content. */
    if (p->state == ST_REASONING || (p->state == ST_START && p->starts_in_reasoning)) {
        emit_buf(p, CH_REASONING, p->buf.len);
    } else {
        /* an unfinished block: content, unless it committed calls (they close where they stand) */
        if (p->state == ST_BLOCK) tc_block_fail(p, p->buf.len);
        tc_block_reset(p);
        emit_buf(p, CH_CONTENT, p->buf.len);
    }
    strbuf_reset(&p->ch[CH_CONTENT].held_ws);
    strbuf_reset(&p->ch[CH_REASONING].held_ws);
    p->state = ST_FINISHED;
    return check_oom(p, err);
}

size_t toolcall_parser_event_count(const toolcall_parser *p) { return p->n_events; }

toolcall_event toolcall_parser_event(const toolcall_parser *p, size_t i) {
    toolcall_event e = {0};
    if (i >= p->n_events) return e;
    const event_rec *r = &p->events[i];
    e.kind = r->kind;
    e.index = r->index;
    e.text = p->evtext.data ? p->evtext.data + r->off : "";
    e.len = r->len;
    if (r->kind == TOOLCALL_EVENT_CALL_START) {
        e.id = p->calls[r->index].id;
        e.name = p->calls[r->index].name;
    }
    return e;
}

toolcall_result toolcall_parser_result(const toolcall_parser *p) {
    toolcall_result r;
    r.content = p->ch[CH_CONTENT].text.data ? p->ch[CH_CONTENT].text.data : "";
    r.content_len = p->ch[CH_CONTENT].text.len;
    r.reasoning = p->ch[CH_REASONING].text.data ? p->ch[CH_REASONING].text.data : "";
    r.reasoning_len = p->ch[CH_REASONING].text.len;
    r.calls = p->calls;
    r.n_calls = p->n_calls;
    return r;
}
