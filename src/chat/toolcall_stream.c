/*
 * toolcall_stream.c — XML-style tool calls (Qwen3-Coder / Nemotron / Seed
 * <function=…>, MiniMax-M2 <invoke>, GLM <arg_key>) turned into JSON
 * argument fragments while their block is still being parsed (the contract
 * is in toolcall_block.h, "streaming calls").
 *
 * Per parameter the tool's schema decides (toolcall_args): a value typed
 * "string" alone is sent as escaped text as soon as it is certain — held
 * back are a suffix that may begin the parameter's close marker, a newline
 * that may be the one the template writes before it, and an unfinished UTF-8
 * character, so the fragments join to exactly what escaping the whole value
 * gives; any other value is sent whole when the parameter closes, typed as
 * xml_calls_build types it. A repeated parameter is skipped (the first wins).
 */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "chat/toolcall_block.h"

/* Appends s[0, n) to the streamed call's arguments and sends it. */
static void stream_out(toolcall_parser *p, const char *s, size_t n) {
    if (n == 0) return;
    strbuf_append(&p->stream_args, s, n);
    tc_event_push(p, TOOLCALL_EVENT_CALL_ARGS, p->stream_call, s, n);
}

static void stream_puts(toolcall_parser *p, const char *s) { stream_out(p, s, strlen(s)); }

/* Moves the streamed arguments into the call. */
static void stream_finalize(toolcall_parser *p) {
    if (p->stream_args.failed) p->oom = true;
    char *args = strbuf_take(&p->stream_args);
    p->calls[p->stream_call].arguments = args ? args : tc_dup_n("{}", 2, &p->oom);
    p->stream_call = p->stream_key_a = NPOS;
    p->stream_members = 0;
}

void tc_stream_xcall_begin(toolcall_parser *p) {
    tc_stream_xcall_end(p);
    xml_call *xc = &p->xcalls[p->n_xcalls - 1];
    const char *name = p->buf.data + xc->name.a;
    size_t n = xc->name.b - xc->name.a;
    if (!tc_name_ok(p, name, n) || p->n_calls >= TOOLCALL_MAX_CALLS) return;
    size_t index = tc_call_open(p, name, n);
    if (index == NPOS) return;
    xc->call = p->stream_call = index;
    strbuf_reset(&p->stream_args);
    stream_puts(p, "{");
}

/* The open string value's closing quote, when one is open. */
static void stream_param_close_text(toolcall_parser *p) {
    if (p->stream_key_a != NPOS && p->stream_mode == STREAM_TEXT) stream_puts(p, "\"");
    p->stream_key_a = NPOS;
}

void tc_stream_xcall_end(toolcall_parser *p) {
    if (p->stream_call == NPOS) return;
    stream_param_close_text(p);
    stream_puts(p, "}");
    stream_finalize(p);
}

bool tc_stream_abort(toolcall_parser *p) {
    tc_stream_xcall_end(p);
    return p->n_calls > p->block_calls;
}

/* `"key": ` (after ", " when a member came before) for the current key. */
static void stream_member(toolcall_parser *p) {
    strbuf b = STRBUF_INIT;
    if (p->stream_members++) strbuf_puts(&b, ", ");
    strbuf_json_string(&b, p->buf.data + p->key.a, p->key.b - p->key.a);
    strbuf_puts(&b, ": ");
    if (b.failed) p->oom = true;
    stream_out(p, b.data, b.len);
    strbuf_free(&b);
}

/* A new parameter: skip it (repeated), stream its text, or wait for its end. */
static void stream_param_begin(toolcall_parser *p) {
    const char *s = p->buf.data;
    const xml_call *xc = &p->xcalls[p->n_xcalls - 1];
    size_t kl = p->key.b - p->key.a;
    p->stream_key_a = p->key.a;
    p->stream_trimmed = false;
    p->stream_lead = p->stream_done = 0;
    p->stream_mode = STREAM_TYPED;
    for (size_t k = 0; k < xc->n_params; k++) {
        const xml_param *q = &p->params[xc->first_param + k];
        if (q->key.b - q->key.a == kl && memcmp(s + q->key.a, s + p->key.a, kl) == 0) {
            p->stream_mode = STREAM_SKIP;
            return;
        }
    }
    char *fn = tc_dup_n(s + xc->name.a, xc->name.b - xc->name.a, &p->oom);
    char *key = tc_dup_n(s + p->key.a, kl, &p->oom);
    if (fn && key && toolcall_args_is_text(p->tools, fn, key)) {
        p->stream_mode = STREAM_TEXT;
        stream_member(p);
        stream_puts(p, "\"");
    }
    free(fn);
    free(key);
}

/* Length of s[0, n) without an unfinished UTF-8 sequence at its end. */
static size_t utf8_whole(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue;        /* a continuation byte: look further back */
        int len = c >= 0x80 ? utf8_sequence_bytes(c) : 1;
        return len > (int)k ? n - k : n;
    }
    return n;
}

void tc_stream_param(toolcall_parser *p, size_t end, bool closed) {
    if (p->stream_call == NPOS) return;
    if (p->stream_key_a != p->key.a) stream_param_begin(p);
    const char *s = p->buf.data;
    bool xml = p->fmt.syntax == TOOLCALL_XML_FUNCTION;   /* its template writes "\nVALUE\n" */
    size_t va = p->val_a;
    if (p->stream_mode == STREAM_TYPED) {
        if (!closed) return;
        size_t vb = end;
        if (xml && va < vb && s[va] == '\n') va++;
        if (xml && vb > va && s[vb - 1] == '\n') vb--;
        const xml_call *xc = &p->xcalls[p->n_xcalls - 1];
        char *fn = tc_dup_n(s + xc->name.a, xc->name.b - xc->name.a, &p->oom);
        char *key = tc_dup_n(s + p->key.a, p->key.b - p->key.a, &p->oom);
        if (fn && key) {
            strbuf b = STRBUF_INIT;
            stream_member(p);
            toolcall_args_append_value(p->tools, fn, key, s + va, vb - va, &b);
            if (b.failed) p->oom = true;
            stream_out(p, b.data, b.len);
            strbuf_free(&b);
        }
        free(fn);
        free(key);
        p->stream_key_a = NPOS;
        return;
    }
    if (p->stream_mode == STREAM_TEXT) {
        if (xml && !p->stream_trimmed) {
            if (end == va && !closed) return;    /* the leading newline is not decided yet */
            p->stream_trimmed = true;
            p->stream_lead = end > va && s[va] == '\n';
        }
        va += p->stream_lead;
        size_t e = end < va ? va : end;
        if (xml && e > va && s[e - 1] == '\n') e--;   /* the template's newline, or held until more comes */
        size_t from = va + p->stream_done;
        if (!closed) e = from + utf8_whole(s + from, e > from ? e - from : 0);
        if (e > from) {
            strbuf b = STRBUF_INIT;
            strbuf_json_string(&b, s + from, e - from);
            if (b.failed) p->oom = true;
            else stream_out(p, b.data + 1, b.len - 2);   /* without the quotes */
            strbuf_free(&b);
            p->stream_done = e - va;
        }
    }
    if (closed) stream_param_close_text(p);
}
