/*
 * toolcall_syntax_gemma.c — Gemma 4 calls, as google-gemma-4-31B-it.jinja
 * renders them:
 *   <|tool_call>call:N{key:<|"|>text<|"|>,count:3,flag:true,opts:{k:[1,<|"|>x<|"|>]}}<tool_call|>
 * Keys are bare, strings are quoted by the <|"|> token and hold raw text,
 * other values are JSON literals. The arguments are converted to JSON as
 * they arrive (keys quoted, strings escaped) and that JSON is sent through
 * the same validating reader as the JSON syntaxes (tjson_stream), so a call
 * streams from its name on and a broken one is closed where it stands.
 */
#include <string.h>

#include "base/utf8.h"
#include "chat/toolcall_block.h"

#define GEMMA_QUOTE "<|\"|>"
#define GEMMA_SCALAR_MAX 1024   /* longest bare literal (a number): bounds the rescans of an unfinished one */

enum { G_NAME, G_ARGS, G_CLOSE };
/* the conversion's state, kept in p->stream_mode (unused by this syntax otherwise) */
enum { C_KEY_OR_END, C_KEY, C_VALUE, C_VALUE_OR_END, C_STRING, C_SCALAR, C_AFTER, C_DONE };

static void gemma_begin(toolcall_parser *p) {
    p->sub = G_NAME;
    p->name_a = p->cur;
}

static bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}
static bool scalar_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' || c == 'E';
}

/* Appends JSON to the conversion and sends what the validator calls safe. */
static void conv_out(toolcall_parser *p, const char *s, size_t n) {
    size_t from = p->gconv.len;
    strbuf_append(&p->gconv, s, n);
    if (p->gconv.failed) { p->oom = true; return; }
    if (p->stream_call == NPOS) return;
    int r = tjson_stream_feed(&p->jst, p->gconv.data + from, p->gconv.len - from);
    if (p->jst.safe > p->jsent) {
        const char *t = p->gconv.data + p->jsent;
        size_t k = p->jst.safe - p->jsent;
        strbuf_append(&p->stream_args, t, k);
        tc_event_push(p, TOOLCALL_EVENT_CALL_ARGS, p->stream_call, t, k);
        p->jsent = p->jst.safe;
    }
    if (r == 1) tc_stream_json_done(p);
    else if (r < 0) tc_stream_xcall_end(p);   /* not for a conversion that writes JSON only; closes it if so */
}

static void conv_puts(toolcall_parser *p, const char *s) { conv_out(p, s, strlen(s)); }

/* The name up to '{': one of the tools; the call commits there. */
static bool gemma_name(toolcall_parser *p) {
    const char *s = p->buf.data;
    size_t j;
    for (j = p->cur; j < p->buf.len && s[j] != '{'; j++)
        if (!key_char(s[j]) || j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return tc_block_fail(p, j);
    p->cur = j;
    if (j == p->buf.len) return false;
    if (!tc_name_ok(p, s + p->name_a, j - p->name_a)) return tc_block_fail(p, j);
    p->name = (span){p->name_a, j};
    strbuf_reset(&p->gconv);
    p->gdepth = 0;
    p->gcur = j;
    p->stream_mode = C_VALUE;
    /* commit: the same path as a JSON-style call */
    if (p->n_calls < TOOLCALL_MAX_CALLS) {
        size_t index = tc_call_open(p, s + p->name_a, j - p->name_a);
        if (index != NPOS) {
            p->stream_call = p->jcall = index;
            p->stream_json = true;
            strbuf_reset(&p->stream_args);
            p->jsent = 0;
            tjson_stream_init(&p->jst);
        }
    }
    p->sub = G_ARGS;
    return true;
}

/* Converts from gcur on; true when the arguments object ended (gcur past it),
 * false to wait; *bad set with the failing index. */
static bool gemma_convert(toolcall_parser *p, size_t *bad) {
    const char *s = p->buf.data;
    size_t n = p->buf.len;
    *bad = NPOS;
    while (p->gcur < n) {
        size_t i = p->gcur;
        char c = s[i];
        switch (p->stream_mode) {
        case C_VALUE:
        case C_VALUE_OR_END:
            if (p->stream_mode == C_VALUE_OR_END && c == ']') {
                conv_puts(p, "]");
                p->gdepth--;
                p->gcur++;
                p->stream_mode = C_AFTER;
                break;
            }
            if (c == '<') {
                int w = tc_match_at(p, i, GEMMA_QUOTE);
                if (w == -1) return false;
                if (w == 0) { *bad = i; return false; }
                conv_puts(p, "\"");
                p->gcur += strlen(GEMMA_QUOTE);
                p->stream_mode = C_STRING;
            } else if (c == '{' || c == '[') {
                if (p->gdepth >= TJSON_MAX_DEPTH) { *bad = i; return false; }
                p->gstack[p->gdepth++] = c;
                conv_out(p, &c, 1);
                p->gcur++;
                p->stream_mode = c == '{' ? C_KEY_OR_END : C_VALUE_OR_END;
            } else if (scalar_char(c)) {
                p->stream_mode = C_SCALAR;
            } else {
                *bad = i;
                return false;
            }
            break;
        case C_KEY_OR_END:
            if (c == '}') {
                conv_puts(p, "}");
                p->gdepth--;
                p->gcur++;
                p->stream_mode = C_AFTER;
                break;
            }
            /* fall through */
        case C_KEY:
            if (!key_char(c)) { *bad = i; return false; }
            {
                size_t j = i;
                while (j < n && key_char(s[j]) && j - i <= TOOLCALL_MAX_NAME_BYTES) j++;
                if (j - i > TOOLCALL_MAX_NAME_BYTES) { *bad = j; return false; }
                if (j == n) return false;            /* the key is not complete yet */
                if (s[j] != ':') { *bad = j; return false; }
                strbuf k = STRBUF_INIT;
                strbuf_json_string(&k, s + i, j - i);
                strbuf_puts(&k, ":");
                conv_out(p, k.data, k.len);
                strbuf_free(&k);
                p->gcur = j + 1;
                p->stream_mode = C_VALUE;
            }
            break;
        case C_STRING: {
            size_t hold = 0;
            size_t pos = tc_find_from(p, i, GEMMA_QUOTE, &hold);
            size_t e = pos == NPOS ? hold : pos;
            /* whole UTF-8 characters only */
            if (pos == NPOS) {
                size_t k = e, back = 0;
                while (k > i && back < 3 && ((unsigned char)s[k - 1] & 0xC0) == 0x80) k--, back++;
                if (k > i && (unsigned char)s[k - 1] >= 0xC0 && utf8_sequence_bytes((unsigned char)s[k - 1]) > (int)back + 1) e = k - 1;
            }
            if (e > i) {
                strbuf t = STRBUF_INIT;
                strbuf_json_string(&t, s + i, e - i);
                conv_out(p, t.data + 1, t.len - 2);
                strbuf_free(&t);
            }
            p->gcur = e;
            if (pos == NPOS) return false;
            conv_puts(p, "\"");
            p->gcur = pos + strlen(GEMMA_QUOTE);
            p->stream_mode = C_AFTER;
            break;
        }
        case C_SCALAR: {
            size_t j = i;
            while (j < n && scalar_char(s[j]) && j - i <= GEMMA_SCALAR_MAX) j++;
            if (j - i > GEMMA_SCALAR_MAX) { *bad = j; return false; }
            if (j == n) return false;                /* the literal may go on */
            conv_out(p, s + i, j - i);
            p->gcur = j;
            p->stream_mode = C_AFTER;
            break;
        }
        case C_AFTER:
            if (p->gdepth == 0) return true;
            if (c == ',') {
                conv_puts(p, ",");
                p->gcur++;
                p->stream_mode = p->gstack[p->gdepth - 1] == '{' ? C_KEY : C_VALUE;
            } else if ((c == '}' && p->gstack[p->gdepth - 1] == '{') || (c == ']' && p->gstack[p->gdepth - 1] == '[')) {
                conv_out(p, &c, 1);
                p->gdepth--;
                p->gcur++;
                if (p->gdepth == 0) return true;
            } else {
                *bad = i;
                return false;
            }
            break;
        }
    }
    return p->stream_mode == C_AFTER && p->gdepth == 0;
}

static bool gemma_args(toolcall_parser *p) {
    size_t bad;
    if (!gemma_convert(p, &bad)) {
        if (bad != NPOS) return tc_block_fail(p, bad);
        p->cur = p->buf.len;
        return false;
    }
    /* the arguments ended: a valid JSON object by construction (checked) */
    const char *j = p->gconv.data ? p->gconv.data : "";
    if (!tjson_is_value(j, p->gconv.len) || utf8_valid_prefix(j, p->gconv.len) != p->gconv.len) return tc_block_fail(p, p->gcur);
    char *nm = tc_dup_n(p->buf.data + p->name.a, p->name.b - p->name.a, &p->oom);
    char *ar = tc_dup_n(j, p->gconv.len, &p->oom);
    if (tc_pending_add(p, nm, ar) != 0) return tc_block_fail(p, p->gcur);
    p->pend[p->n_pend - 1].call = p->jcall;
    p->jcall = NPOS;
    p->cur = p->gcur;
    p->sub = G_CLOSE;
    return true;
}

static bool gemma_close(toolcall_parser *p) {
    size_t i;
    int w = tc_next_marker(p, p->fmt.call_close, NULL, &i);
    if (w < 1) return w == 0;
    return tc_block_done(p, i + strlen(p->fmt.call_close));
}

static bool gemma_step(toolcall_parser *p) {
    switch (p->sub) {
    case G_NAME: return gemma_name(p);
    case G_ARGS: return gemma_args(p);
    case G_CLOSE: return gemma_close(p);
    }
    return false;
}

const toolcall_syntax_ops toolcall_syntax_gemma = {gemma_begin, gemma_step};
