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
    if (p->stream_json) {
        /* cut at the last safe point: its closer completes what was sent */
        stream_out(p, p->jst.closer, (size_t)p->jst.closer_len);
        p->stream_json = false;
        stream_finalize(p);
        p->jrec = JREC_OFF;
        return;
    }
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

/* ---- JSON-style calls */

void tc_stream_json_done(toolcall_parser *p) {
    p->stream_json = false;
    stream_finalize(p);
    p->jrec = JREC_OFF;
}

enum { JR_OPEN, JR_K1, JR_C1, JR_V1, JR_NAME, JR_COMMA, JR_K2, JR_KEY2, JR_C2, JR_A, JR_ARGS };

void tc_jstream_begin(toolcall_parser *p) {
    p->jrec = p->json_is_array || p->stream_call != NPOS ? JREC_OFF : JR_OPEN;
    p->jcur = p->json_start;
    p->jlit = 0;
}

/* Commits the call named buf[name) with its arguments object at p->jcur. */
static void jstream_commit(toolcall_parser *p, span name) {
    const char *s = p->buf.data + name.a;
    size_t n = name.b - name.a;
    p->jrec = JREC_OFF;
    if (!tc_name_ok(p, s, n) || p->n_calls >= TOOLCALL_MAX_CALLS) return;
    size_t index = tc_call_open(p, s, n);
    if (index == NPOS) return;
    p->stream_call = p->jcall = index;
    p->stream_json = true;
    strbuf_reset(&p->stream_args);
    p->jargs_a = p->jcur;
    p->jsent = 0;
    tjson_stream_init(&p->jst);
    p->jrec = JR_ARGS;
}

void tc_jstream_args(toolcall_parser *p, span name) {
    p->jcur = p->json_start;
    jstream_commit(p, name);
}

/* Sends the arguments up to the validator's safe point; at their end (or
 * when they break) the call is finalized. */
static void jstream_args(toolcall_parser *p, size_t upto) {
    int r = tjson_stream_feed(&p->jst, p->buf.data + p->jcur, upto - p->jcur);
    p->jcur = p->jargs_a + p->jst.pos;
    if (p->jst.safe > p->jsent) {
        stream_out(p, p->buf.data + p->jargs_a + p->jsent, p->jst.safe - p->jsent);
        p->jsent = p->jst.safe;
    }
    if (r == 1) {
        tc_stream_json_done(p);
    } else if (r < 0) {
        tc_stream_xcall_end(p);
    }
}

/* Expects the literal lit at jcur (after whitespace when lit_at == 0). */
static int jstream_literal(toolcall_parser *p, const char *lit, size_t upto) {
    const char *s = p->buf.data;
    size_t n = strlen(lit);
    while (p->jcur < upto) {
        char c = s[p->jcur];
        if (p->jlit == 0 && tc_is_ws(c)) { p->jcur++; continue; }
        if (c != lit[p->jlit]) return -1;
        p->jcur++;
        if (++p->jlit == n) { p->jlit = 0; return 1; }
    }
    return 0;
}

/* A string's bytes up to its closing quote (no escapes, no control bytes, short). */
static int jstream_string(toolcall_parser *p, size_t a, size_t upto) {
    const char *s = p->buf.data;
    for (; p->jcur < upto; p->jcur++) {
        unsigned char c = (unsigned char)s[p->jcur];
        if (c == '"') return 1;
        if (c == '\\' || c < 0x20 || p->jcur - a >= TOOLCALL_MAX_NAME_BYTES) return -1;
    }
    return 0;
}

void tc_jstream_run(toolcall_parser *p, size_t upto) {
    static const char *const lit[] = {"{", "\"name\"", ":", "\""};
    while (p->jrec != JREC_OFF && p->jcur < upto) {
        int r;
        switch (p->jrec) {
        case JR_OPEN: case JR_K1: case JR_C1: case JR_V1:
            r = jstream_literal(p, lit[p->jrec], upto);
            if (r == 1 && p->jrec == JR_V1) p->jname.a = p->jcur;
            break;
        case JR_NAME:
            r = jstream_string(p, p->jname.a, upto);
            if (r == 1) p->jname.b = p->jcur++;
            break;
        case JR_COMMA: r = jstream_literal(p, ",", upto); break;
        case JR_K2:
            r = jstream_literal(p, "\"", upto);
            if (r == 1) p->jkey_a = p->jcur;
            break;
        case JR_KEY2:
            r = jstream_string(p, p->jkey_a, upto);
            if (r == 1) {
                size_t kl = p->jcur - p->jkey_a;
                const char *k = p->buf.data + p->jkey_a;
                if (!((kl == 9 && !memcmp(k, "arguments", 9)) || (kl == 10 && !memcmp(k, "parameters", 10)))) r = -1;
                p->jcur++;
            }
            break;
        case JR_C2: r = jstream_literal(p, ":", upto); break;
        case JR_A:
            while (p->jcur < upto && tc_is_ws(p->buf.data[p->jcur])) p->jcur++;
            if (p->jcur == upto) return;
            if (p->buf.data[p->jcur] != '{') { p->jrec = JREC_OFF; return; }
            jstream_commit(p, p->jname);
            continue;
        case JR_ARGS:
            jstream_args(p, upto);
            return;
        default:
            return;
        }
        if (r < 0) p->jrec = JREC_OFF;
        else if (r == 0) return;
        else p->jrec++;
    }
}
