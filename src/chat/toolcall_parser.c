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
 * that could begin one). BLOCK parses one call block with a syntax-specific
 * sub-state machine; the block's bytes stay in `buf` (buf[0] is its open
 * marker) until it resolves: on success its calls are emitted and the bytes
 * dropped; on failure the parser returns to CONTENT with `cur` at the failure
 * point, so the block's bytes are emitted as content verbatim and scanning
 * goes on from there (never rescanning what the block already looked at).
 *
 * Content and reasoning pass through a channel that drops leading
 * whitespace and holds trailing whitespace until more text follows, so
 * whitespace next to markers and at the ends disappears consistently in the
 * deltas and the result.
 */
#include "chat/toolcall_parser.h"

#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/utf8.h"
#include "chat/toolcall_args.h"
#include "chat/toolcall_json.h"

#define NPOS ((size_t)-1)

enum state { ST_START, ST_REASONING, ST_ANSWER, ST_CONTENT, ST_BLOCK, ST_LLAMA_NEXT, ST_FINISHED };

/* Sub-states of ST_BLOCK. H: Hermes, X: <function=…> XML, M: MiniMax,
 * T: Mistral [TOOL_CALLS], L: Llama 3 JSON, G: GLM <arg_key>. */
enum sub {
    H_BEGIN, H_JSON, H_CLOSE,
    X_FUNC, X_NAME, X_PARAM_OR_END, X_PNAME, X_VALUE, X_AFTER_FUNC,
    M_INVOKE_OR_END, M_NAME, M_PARAM_OR_END, M_PNAME, M_VALUE,
    T_BEGIN, T_NAME, T_CALLID, T_ARGS_WS, T_JSON,
    L_JSON,
    G_NAME, G_ARG_OR_END, G_KEY, G_VAL_OPEN, G_VALUE,
};

typedef struct span { size_t a, b; } span;          /* [a, b) in buf */
typedef struct xml_param { span key, val; } xml_param;
typedef struct xml_call { span name; size_t first_param, n_params; } xml_call;
typedef struct pending_call { char *name; char *args; } pending_call;

enum { CH_CONTENT, CH_REASONING };
typedef struct channel {
    strbuf text;      /* everything emitted: the result string */
    strbuf held_ws;   /* trailing whitespace not yet emitted */
    bool started;     /* a non-whitespace byte was emitted */
} channel;

typedef struct event_rec { toolcall_event_kind kind; size_t index, off, len; } event_rec;

struct toolcall_parser {
    toolcall_format fmt;
    toolcall_tools *tools;     /* NULL: tool calls off */
    bool calls_on;
    bool starts_in_reasoning;  /* the prompt opened the reasoning block */
    uint64_t rng;              /* id generator state */

    enum state state;
    enum sub sub;
    strbuf buf;                /* unresolved bytes; in ST_BLOCK buf[0] is the block's first byte */
    size_t cur;                /* scan position in buf */

    /* the block being parsed */
    tjson_scan js;
    size_t json_start, json_end;
    bool json_is_array;
    span name;                 /* current function name (XML, Mistral) */
    size_t name_a, key_a, val_a;
    span key;
    xml_param *params; size_t n_params, cap_params;
    xml_call *xcalls; size_t n_xcalls, cap_xcalls;
    pending_call *pend; size_t n_pend, cap_pend;

    channel ch[2];
    toolcall_call *calls; size_t n_calls, cap_calls;

    event_rec *events; size_t n_events, cap_events;
    strbuf evtext;             /* the events' text bytes */
    bool oom;
};

/* ---- small helpers */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void *grow(void *arr, size_t *cap, size_t need, size_t elem, bool *oom) {
    if (need <= *cap) return arr;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need) n *= 2;
    void *q = realloc(arr, n * elem);
    if (!q) { *oom = true; return NULL; }
    *cap = n;
    return q;
}

static char *dup_n(const char *s, size_t n, bool *oom) {
    char *d = malloc(n + 1);
    if (!d) { *oom = true; return NULL; }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* 1: marker m starts at buf[i]; -1: buf ends inside a prefix of m; 0: no. */
static int match_at(const toolcall_parser *p, size_t i, const char *m) {
    size_t ml = strlen(m), avail = p->buf.len - i;
    size_t k = avail < ml ? avail : ml;
    if (memcmp(p->buf.data + i, m, k) != 0) return 0;
    return avail >= ml ? 1 : -1;
}

/* First index >= from where m occurs, or NPOS; then *hold is the start of the
 * longest suffix (at or after from) that is a proper prefix of m (len if none). */
static size_t find_from(const toolcall_parser *p, size_t from, const char *m, size_t *hold) {
    size_t len = p->buf.len, ml = strlen(m);
    if (from < len) {
        const char *hit = memmem(p->buf.data + from, len - from, m, ml);
        if (hit) return (size_t)(hit - p->buf.data);
    }
    size_t start = len >= ml ? len - ml + 1 : 0;
    if (start < from) start = from;
    for (size_t i = start; i < len; i++)
        if (memcmp(p->buf.data + i, m, len - i) == 0) { *hold = i; return NPOS; }
    *hold = len > from ? len : from;
    return NPOS;
}

static size_t skip_ws(const toolcall_parser *p, size_t i) {
    while (i < p->buf.len && is_ws(p->buf.data[i])) i++;
    return i;
}

static void consume(toolcall_parser *p, size_t n) {
    strbuf_consume(&p->buf, n);
    p->cur = 0;
}

/* ---- events and channels */

static void event_push(toolcall_parser *p, toolcall_event_kind kind, size_t index, const char *s, size_t n) {
    if (p->n_events > 0 && (kind == TOOLCALL_EVENT_CONTENT || kind == TOOLCALL_EVENT_REASONING)) {
        event_rec *last = &p->events[p->n_events - 1];
        if (last->kind == kind && last->off + last->len == p->evtext.len) {
            if (strbuf_append(&p->evtext, s, n) == 0) last->len += n;
            return;
        }
    }
    event_rec *e = grow(p->events, &p->cap_events, p->n_events + 1, sizeof *e, &p->oom);
    if (!e) return;
    p->events = e;
    size_t off = p->evtext.len;
    if (n > 0 && strbuf_append(&p->evtext, s, n) != 0) return;
    p->events[p->n_events++] = (event_rec){kind, index, off, n};
}

static void channel_out(toolcall_parser *p, int ch, const char *s, size_t n) {
    if (n == 0) return;
    strbuf_append(&p->ch[ch].text, s, n);
    event_push(p, ch == CH_CONTENT ? TOOLCALL_EVENT_CONTENT : TOOLCALL_EVENT_REASONING, 0, s, n);
}

/* Emits s[0, n) on a channel: leading whitespace of the whole channel is
 * dropped, trailing whitespace is held until non-whitespace follows. */
static void channel_emit(toolcall_parser *p, int ch, const char *s, size_t n) {
    channel *c = &p->ch[ch];
    if (!c->started)
        while (n > 0 && is_ws(*s)) s++, n--;
    if (n == 0) return;
    size_t last = n;
    while (last > 0 && is_ws(s[last - 1])) last--;
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
    consume(p, n);
}

/* ---- building calls */

static void pending_clear(toolcall_parser *p) {
    for (size_t i = 0; i < p->n_pend; i++) {
        free(p->pend[i].name);
        free(p->pend[i].args);
    }
    p->n_pend = 0;
}

/* Adds a pending call, taking ownership of name and args (freed on failure). */
static int pending_add(toolcall_parser *p, char *name, char *args) {
    pending_call *q = grow(p->pend, &p->cap_pend, p->n_pend + 1, sizeof *q, &p->oom);
    if (!q || !name || !args) { free(name); free(args); return -1; }
    p->pend = q;
    p->pend[p->n_pend++] = (pending_call){name, args};
    return 0;
}

/* A function name the parser accepts: one of the tools, no control bytes. */
static bool name_ok(const toolcall_parser *p, const char *s, size_t n) {
    if (n == 0 || n > TOOLCALL_MAX_NAME_BYTES) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return false;
    return toolcall_tools_has(p->tools, s, n);
}

static bool key_is(const char *s, size_t a, size_t b, const char *k) {
    return b - a == strlen(k) && memcmp(s + a, k, b - a) == 0;
}

/* One JSON call object s[a, b): {"name": N, "arguments"|"parameters": {..} or
 * "{..}"}; other keys ignored. Adds a pending call; -1 when it is not one. */
static int json_call_parse(toolcall_parser *p, const char *s, size_t a, size_t b) {
    size_t i = a, k0, k1, v0, v1;
    bool first = true;
    span name = {NPOS, NPOS}, args = {NPOS, NPOS};
    int r;
    if (tjson_value_end(s, b, a) != b || s[a] != '{') return -1;
    while ((r = tjson_object_next(s, b, &i, &first, &k0, &k1, &v0, &v1)) == 1) {
        if (key_is(s, k0, k1, "name")) name = (span){v0, v1};
        else if (key_is(s, k0, k1, "arguments") || key_is(s, k0, k1, "parameters")) args = (span){v0, v1};
    }
    if (r < 0 || name.a == NPOS || s[name.a] != '"') return -1;
    size_t name_len;
    char *nm = tjson_string_decode(s + name.a, name.b - name.a, &name_len);
    if (!nm) return -1;
    if (!name_ok(p, nm, name_len)) { free(nm); return -1; }
    char *ar = NULL;
    if (args.a == NPOS) {
        ar = dup_n("{}", 2, &p->oom);
    } else if (s[args.a] == '{') {
        ar = dup_n(s + args.a, args.b - args.a, &p->oom);
    } else if (s[args.a] == '"') {
        /* arguments given as a JSON string holding the object */
        size_t al;
        ar = tjson_string_decode(s + args.a, args.b - args.a, &al);
        size_t j = ar ? tjson_skip_ws(ar, al, 0) : 0;
        if (!ar || j >= al || ar[j] != '{' || !tjson_is_value(ar, al)) { free(ar); free(nm); return -1; }
    } else {
        free(nm);
        return -1;
    }
    if (ar && utf8_valid_prefix(ar, strlen(ar)) != strlen(ar)) { free(ar); free(nm); return -1; }
    return pending_add(p, nm, ar);
}

/* Builds the pending calls of the XML calls parsed in this block. */
static int xml_calls_build(toolcall_parser *p) {
    const char *s = p->buf.data;
    for (size_t c = 0; c < p->n_xcalls; c++) {
        const xml_call *xc = &p->xcalls[c];
        size_t nl = xc->name.b - xc->name.a;
        if (!name_ok(p, s + xc->name.a, nl)) return -1;
        char *fn = dup_n(s + xc->name.a, nl, &p->oom);
        if (!fn) return -1;
        strbuf out = STRBUF_INIT;
        strbuf_puts(&out, "{");
        size_t written = 0;
        for (size_t k = 0; k < xc->n_params; k++) {
            const xml_param *q = &p->params[xc->first_param + k];
            size_t kl = q->key.b - q->key.a;
            bool dup = false;   /* a repeated parameter: the first one wins */
            for (size_t j = 0; j < k && !dup; j++) {
                const xml_param *o = &p->params[xc->first_param + j];
                dup = o->key.b - o->key.a == kl && memcmp(s + o->key.a, s + q->key.a, kl) == 0;
            }
            if (dup) continue;
            size_t va = q->val.a, vb = q->val.b;
            if (p->fmt.syntax == TOOLCALL_XML_FUNCTION) {
                /* the template writes "<parameter=P>\nVALUE\n</parameter>" */
                if (va < vb && s[va] == '\n') va++;
                if (vb > va && s[vb - 1] == '\n') vb--;
            }
            char *key = dup_n(s + q->key.a, kl, &p->oom);
            if (!key) { strbuf_free(&out); free(fn); return -1; }
            if (written++) strbuf_puts(&out, ", ");
            strbuf_json_string(&out, key, kl);
            strbuf_puts(&out, ": ");
            toolcall_args_append_value(p->tools, fn, key, s + va, vb - va, &out);
            free(key);
        }
        strbuf_puts(&out, "}");
        if (out.failed) p->oom = true;
        char *args = strbuf_take(&out);
        if (pending_add(p, fn, args) != 0) return -1;
    }
    return 0;
}

static void block_reset(toolcall_parser *p) {
    pending_clear(p);
    p->n_params = 0;
    p->n_xcalls = 0;
    memset(&p->js, 0, sizeof p->js);
}

/* The block failed at buf[at]: its bytes become content from scanning on. */
static bool block_fail(toolcall_parser *p, size_t at) {
    block_reset(p);
    p->state = ST_CONTENT;
    p->cur = at;
    return true;
}

/* The block ended at buf[end] and its pending calls are valid: emit them. */
static bool block_done(toolcall_parser *p, size_t end) {
    if (p->n_pend == 0 || p->n_calls + p->n_pend > TOOLCALL_MAX_CALLS) return block_fail(p, end);
    toolcall_call *c = grow(p->calls, &p->cap_calls, p->n_calls + p->n_pend, sizeof *c, &p->oom);
    if (!c) return block_fail(p, end);
    p->calls = c;
    for (size_t i = 0; i < p->n_pend; i++) {
        char id[40];
        if (p->fmt.syntax == TOOLCALL_MISTRAL) toolcall_id_make(id, sizeof id, "", 9, &p->rng);
        else toolcall_id_make(id, sizeof id, "call_", 24, &p->rng);
        char *idc = dup_n(id, strlen(id), &p->oom);
        if (!idc) return block_fail(p, end);
        size_t index = p->n_calls;
        p->calls[p->n_calls++] = (toolcall_call){idc, p->pend[i].name, p->pend[i].args};
        p->pend[i].name = p->pend[i].args = NULL;
        event_push(p, TOOLCALL_EVENT_CALL_START, index, "", 0);
        const char *args = p->calls[index].arguments;
        event_push(p, TOOLCALL_EVENT_CALL_ARGS, index, args, strlen(args));
    }
    p->n_pend = 0;
    block_reset(p);
    consume(p, end);
    p->state = p->fmt.syntax == TOOLCALL_LLAMA3_JSON ? ST_LLAMA_NEXT : ST_CONTENT;
    return true;
}

static bool calls_active(const toolcall_parser *p) {
    return p->calls_on && p->n_calls < TOOLCALL_MAX_CALLS;
}

/* ---- block sub-steps; each returns true when it made progress */

/* Scans a name from p->cur that ends at `term`; Returns the index of term,
 * NPOS to wait (cur advanced), or sets *fail_at. Names hold no '<', no newline. */
static size_t scan_name(toolcall_parser *p, size_t a, char term, size_t *fail_at) {
    for (size_t j = p->cur; j < p->buf.len; j++) {
        char c = p->buf.data[j];
        if (c == term) return j;
        if (c == '<' || c == '\n' || j - a >= TOOLCALL_MAX_NAME_BYTES) { *fail_at = j; return NPOS; }
    }
    p->cur = p->buf.len;
    *fail_at = NPOS;
    return NPOS;
}

static bool begin_json(toolcall_parser *p, size_t i, enum sub next) {
    memset(&p->js, 0, sizeof p->js);
    p->json_start = i;
    p->json_is_array = p->buf.data[i] == '[';
    p->cur = i;
    p->sub = next;
    return true;
}

/* Advances the JSON scan; on its end returns true with *end set. */
static bool feed_json(toolcall_parser *p, size_t *end, bool *failed) {
    size_t bad = 0;
    size_t e = tjson_scan_feed(&p->js, p->buf.data, p->cur, p->buf.len, &bad);
    *failed = false;
    if (e == TJSON_SCAN_MORE) { p->cur = p->buf.len; return false; }
    if (e == TJSON_BAD) { *failed = true; *end = bad; return false; }
    *end = e;
    return true;
}

/* Parses the JSON in buf[json_start, end) as one call object or an array of them. */
static int json_calls_parse(toolcall_parser *p, size_t end) {
    const char *s = p->buf.data;
    if (!p->json_is_array) return json_call_parse(p, s, p->json_start, end);
    size_t i = p->json_start, v0, v1;
    bool first = true;
    int r;
    if (tjson_value_end(s, end, i) != end) return -1;
    while ((r = tjson_array_next(s, end, &i, &first, &v0, &v1)) == 1)
        if (json_call_parse(p, s, v0, v1) != 0) return -1;
    return r < 0 || p->n_pend == 0 ? -1 : 0;
}

static bool push_param(toolcall_parser *p, span key, span val) {
    xml_param *q = grow(p->params, &p->cap_params, p->n_params + 1, sizeof *q, &p->oom);
    if (!q) return false;
    p->params = q;
    p->params[p->n_params++] = (xml_param){key, val};
    p->xcalls[p->n_xcalls - 1].n_params++;
    return true;
}

static bool push_xcall(toolcall_parser *p, span name) {
    if (p->n_xcalls >= TOOLCALL_MAX_CALLS) return false;
    xml_call *q = grow(p->xcalls, &p->cap_xcalls, p->n_xcalls + 1, sizeof *q, &p->oom);
    if (!q) return false;
    p->xcalls = q;
    p->xcalls[p->n_xcalls++] = (xml_call){name, p->n_params, 0};
    return true;
}

/* Which of two markers starts at i: 1 or 2, 0 none, -1 wait (a prefix of one). */
static int which_marker(const toolcall_parser *p, size_t i, const char *m1, const char *m2) {
    int r1 = match_at(p, i, m1), r2 = match_at(p, i, m2);
    if (r1 == 1) return 1;
    if (r2 == 1) return 2;
    return r1 == -1 || r2 == -1 ? -1 : 0;
}

static bool step_block(toolcall_parser *p) {
    if (p->buf.len > TOOLCALL_MAX_BLOCK_BYTES) return block_fail(p, p->buf.len);
    const char *s = p->buf.data;
    size_t len = p->buf.len, i, j, end = 0, fail_at = NPOS;
    bool failed;
    int w;
    switch (p->sub) {
    /* -- Hermes: <tool_call> {json} </tool_call> */
    case H_BEGIN:
        i = skip_ws(p, p->cur);
        if (i == len) { p->cur = i; return false; }
        if (s[i] != '{' && s[i] != '[') return block_fail(p, i);
        return begin_json(p, i, H_JSON);
    case H_JSON:
        if (!feed_json(p, &end, &failed)) return failed ? block_fail(p, end) : false;
        p->json_end = end;
        p->cur = end;
        p->sub = H_CLOSE;
        return true;
    case H_CLOSE:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        w = match_at(p, i, p->fmt.call_close);
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        end = i + strlen(p->fmt.call_close);
        if (json_calls_parse(p, p->json_end) != 0) return block_fail(p, end);
        return block_done(p, end);

    /* -- <tool_call> <function=N> (<parameter=P> V </parameter>)* </function> </tool_call> */
    case X_FUNC:
    case X_AFTER_FUNC:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        if (p->sub == X_FUNC) {
            w = match_at(p, i, "<function=");
            if (w == 1) w = 2;
        } else {
            w = which_marker(p, i, p->fmt.call_close, "<function=");
        }
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        if (w == 1) {
            end = i + strlen(p->fmt.call_close);
            if (xml_calls_build(p) != 0) return block_fail(p, end);
            return block_done(p, end);
        }
        p->name_a = p->cur = i + strlen("<function=");
        p->sub = X_NAME;
        return true;
    case X_NAME:
    case X_PNAME:
        j = scan_name(p, p->sub == X_NAME ? p->name_a : p->key_a, '>', &fail_at);
        if (j == NPOS) return fail_at == NPOS ? false : block_fail(p, fail_at);
        if (p->sub == X_NAME) {
            if (j == p->name_a || !push_xcall(p, (span){p->name_a, j})) return block_fail(p, j);
            p->sub = X_PARAM_OR_END;
        } else {
            if (j == p->key_a) return block_fail(p, j);
            p->key = (span){p->key_a, j};
            p->val_a = j + 1;
            p->sub = X_VALUE;
        }
        p->cur = j + 1;
        return true;
    case X_PARAM_OR_END:
    case M_PARAM_OR_END: {
        bool x = p->sub == X_PARAM_OR_END;
        const char *open = x ? "<parameter=" : "<parameter name=\"";
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        w = which_marker(p, i, open, x ? "</function>" : "</invoke>");
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        if (w == 1) {
            if (p->xcalls[p->n_xcalls - 1].n_params >= TOOLCALL_MAX_PARAMS) return block_fail(p, i);
            p->key_a = p->cur = i + strlen(open);
            p->sub = x ? X_PNAME : M_PNAME;
        } else {
            p->cur = i + strlen(x ? "</function>" : "</invoke>");
            p->sub = x ? X_AFTER_FUNC : M_INVOKE_OR_END;
        }
        return true;
    }
    case X_VALUE:
    case M_VALUE:
    case G_VALUE: {
        const char *close = p->sub == G_VALUE ? "</arg_value>" : "</parameter>";
        size_t hold = 0;
        size_t pos = find_from(p, p->cur, close, &hold);
        if (pos == NPOS) { p->cur = hold; return false; }
        if (!push_param(p, p->key, (span){p->val_a, pos})) return block_fail(p, pos);
        p->cur = pos + strlen(close);
        p->sub = p->sub == X_VALUE ? X_PARAM_OR_END : p->sub == M_VALUE ? M_PARAM_OR_END : G_ARG_OR_END;
        return true;
    }

    /* -- GLM: <tool_call>N (<arg_key>K</arg_key> <arg_value>V</arg_value>)* </tool_call> */
    case G_NAME:
        if (p->cur == p->name_a) {                /* blanks before the name */
            i = skip_ws(p, p->cur);
            if (i == len) return false;
            p->name_a = p->cur = i;
        }
        for (j = p->cur; j < len && s[j] != '<' && s[j] != '\n'; j++)
            if (j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return block_fail(p, j);
        p->cur = j;
        if (j == len) return false;
        i = j;                                    /* the name, without surrounding blanks */
        while (p->name_a < i && is_ws(s[p->name_a])) p->name_a++;
        while (i > p->name_a && is_ws(s[i - 1])) i--;
        if (i == p->name_a || !push_xcall(p, (span){p->name_a, i})) return block_fail(p, j);
        p->sub = G_ARG_OR_END;
        return true;
    case G_ARG_OR_END:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        w = which_marker(p, i, "<arg_key>", p->fmt.call_close);
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        if (w == 2) {
            end = i + strlen(p->fmt.call_close);
            if (xml_calls_build(p) != 0) return block_fail(p, end);
            return block_done(p, end);
        }
        if (p->xcalls[p->n_xcalls - 1].n_params >= TOOLCALL_MAX_PARAMS) return block_fail(p, i);
        p->key_a = p->cur = i + strlen("<arg_key>");
        p->sub = G_KEY;
        return true;
    case G_KEY: {
        size_t hold = 0;
        size_t pos = find_from(p, p->cur, "</arg_key>", &hold);
        if (pos == NPOS) {
            p->cur = hold;
            return hold - p->key_a > TOOLCALL_MAX_NAME_BYTES ? block_fail(p, hold) : false;
        }
        if (pos == p->key_a || pos - p->key_a > TOOLCALL_MAX_NAME_BYTES) return block_fail(p, pos);
        p->key = (span){p->key_a, pos};
        p->cur = pos + strlen("</arg_key>");
        p->sub = G_VAL_OPEN;
        return true;
    }
    case G_VAL_OPEN:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        w = match_at(p, i, "<arg_value>");
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        p->val_a = p->cur = i + strlen("<arg_value>");
        p->sub = G_VALUE;
        return true;

    /* -- MiniMax: <minimax:tool_call> (<invoke name="N"> (<parameter name="P">V</parameter>)* </invoke>)+ </minimax:tool_call> */
    case M_INVOKE_OR_END:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        w = which_marker(p, i, "<invoke name=\"", p->fmt.call_close);
        if (w == -1) return false;
        if (w == 0) return block_fail(p, i);
        if (w == 2) {
            end = i + strlen(p->fmt.call_close);
            if (p->n_xcalls == 0 || xml_calls_build(p) != 0) return block_fail(p, end);
            return block_done(p, end);
        }
        p->name_a = p->cur = i + strlen("<invoke name=\"");
        p->sub = M_NAME;
        return true;
    case M_NAME:
    case M_PNAME: {
        size_t a = p->sub == M_NAME ? p->name_a : p->key_a;
        j = scan_name(p, a, '"', &fail_at);
        if (j == NPOS) return fail_at == NPOS ? false : block_fail(p, fail_at);
        p->cur = j;                      /* wait here for the '>' */
        if (j + 1 == len) return false;
        if (s[j + 1] != '>' || j == a) return block_fail(p, j + 1);
        if (p->sub == M_NAME) {
            if (!push_xcall(p, (span){a, j})) return block_fail(p, j);
            p->sub = M_PARAM_OR_END;
        } else {
            p->key = (span){a, j};
            p->val_a = j + 2;
            p->sub = M_VALUE;
        }
        p->cur = j + 2;
        return true;
    }

    /* -- Mistral: [TOOL_CALLS] then [{..},..] or N[CALL_ID]id[ARGS]{..} */
    case T_BEGIN:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        if (s[i] == '[') return begin_json(p, i, T_JSON);
        p->name_a = i;
        p->sub = T_NAME;
        return true;
    case T_NAME:
    case T_CALLID:
        for (j = p->cur; j < len; j++) {
            char c = s[j];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      (p->sub == T_NAME && (c == '_' || c == '-' || c == '.' || c == ':'));
            if (c == '[') break;
            if (!ok || j - p->name_a >= TOOLCALL_MAX_NAME_BYTES) return block_fail(p, j);
        }
        p->cur = j;
        if (j == len) return false;
        w = which_marker(p, j, "[ARGS]", p->sub == T_NAME ? "[CALL_ID]" : "[ARGS]");
        if (w == -1) return false;
        if (w == 0 || (p->sub == T_NAME && j == p->name_a)) return block_fail(p, j);
        if (p->sub == T_NAME) p->name = (span){p->name_a, j};
        if (w == 2) {
            p->name_a = p->cur = j + strlen("[CALL_ID]");   /* the id's length is bounded the same way */
            p->sub = T_CALLID;
        } else {
            p->cur = j + strlen("[ARGS]");
            p->sub = T_ARGS_WS;
        }
        return true;
    case T_ARGS_WS:
        i = skip_ws(p, p->cur);
        p->cur = i;
        if (i == len) return false;
        if (s[i] != '{') return block_fail(p, i);
        return begin_json(p, i, T_JSON);
    case T_JSON:
    case L_JSON:
        if (!feed_json(p, &end, &failed)) return failed ? block_fail(p, end) : false;
        if (p->sub == L_JSON || p->json_is_array) {
            if (json_calls_parse(p, end) != 0) return block_fail(p, end);
        } else {
            size_t nl = p->name.b - p->name.a;
            if (tjson_value_end(s, end, p->json_start) != end || !name_ok(p, s + p->name.a, nl) ||
                utf8_valid_prefix(s + p->json_start, end - p->json_start) != end - p->json_start)
                return block_fail(p, end);
            char *nm = dup_n(s + p->name.a, nl, &p->oom);
            char *ar = dup_n(s + p->json_start, end - p->json_start, &p->oom);
            if (pending_add(p, nm, ar) != 0) return block_fail(p, end);
        }
        return block_done(p, end);
    }
    return false;
}

/* Enters ST_BLOCK for a block whose open marker is at buf[0]. */
static void block_begin(toolcall_parser *p) {
    block_reset(p);
    p->state = ST_BLOCK;
    p->cur = strlen(p->fmt.call_open);
    switch (p->fmt.syntax) {
    case TOOLCALL_HERMES: p->sub = H_BEGIN; break;
    case TOOLCALL_XML_FUNCTION: p->sub = X_FUNC; break;
    case TOOLCALL_MINIMAX: p->sub = M_INVOKE_OR_END; break;
    case TOOLCALL_MISTRAL: p->sub = T_BEGIN; break;
    case TOOLCALL_GLM: p->sub = G_NAME; p->name_a = p->cur; break;
    default: p->sub = L_JSON; break;
    }
}

/* ---- top-level steps; each returns true when it made progress */

static bool step_start(toolcall_parser *p) {
    size_t i = skip_ws(p, p->cur);
    p->cur = i;
    if (!p->fmt.think_open) { p->state = ST_ANSWER; p->cur = 0; return true; }
    if (i == p->buf.len) return false;
    int w = match_at(p, i, p->fmt.think_open);
    if (w == -1) return false;
    if (w == 1) consume(p, i + strlen(p->fmt.think_open));
    p->cur = 0;
    p->state = w == 1 || p->starts_in_reasoning ? ST_REASONING : ST_ANSWER;
    return true;
}

static bool step_reasoning(toolcall_parser *p) {
    size_t hold = 0;
    size_t pos = find_from(p, p->cur, p->fmt.think_close, &hold);
    if (pos == NPOS) {
        emit_buf(p, CH_REASONING, hold);
        return false;
    }
    emit_buf(p, CH_REASONING, pos);
    consume(p, strlen(p->fmt.think_close));
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
    size_t i = skip_ws(p, p->cur);
    p->cur = i;
    if (i == p->buf.len) return false;
    int w = match_at(p, i, "<|python_tag|>");
    if (w == -1) return false;
    if (w == 1) {
        i = skip_ws(p, i + strlen("<|python_tag|>"));
        if (i == p->buf.len) return false;   /* cur stays before the tag: it is rechecked */
    }
    if (p->buf.data[i] != '{') {
        p->state = ST_CONTENT;
        p->cur = 0;
        return true;
    }
    block_reset(p);
    p->state = ST_BLOCK;
    return begin_json(p, i, L_JSON);
}

/* After a Llama 3 call: another may follow after whitespace or ';'. */
static bool step_llama_next(toolcall_parser *p) {
    size_t i = p->cur;
    while (i < p->buf.len && (is_ws(p->buf.data[i]) || p->buf.data[i] == ';')) i++;
    p->cur = i;
    if (i == p->buf.len) return false;
    if (p->buf.data[i] == '{' && calls_active(p)) {
        block_reset(p);
        p->state = ST_BLOCK;
        return begin_json(p, i, L_JSON);
    }
    p->state = ST_CONTENT;
    p->cur = 0;
    return true;
}

static bool step_content(toolcall_parser *p) {
    const char *open = p->fmt.call_open;
    if (!calls_active(p) || !open || !*open) {
        emit_buf(p, CH_CONTENT, p->buf.len);
        return false;
    }
    size_t hold = 0;
    size_t pos = find_from(p, p->cur, open, &hold);
    if (pos == NPOS) {
        emit_buf(p, CH_CONTENT, hold);
        return false;
    }
    emit_buf(p, CH_CONTENT, pos);
    block_begin(p);
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
    static const toolcall_format plain = {TOOLCALL_NONE, "", "", NULL, NULL};
    p->fmt = o && o->format ? *o->format : plain;
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
    return p;
}

void toolcall_parser_free(toolcall_parser *p) {
    if (!p) return;
    block_reset(p);
    free(p->pend);
    free(p->params);
    free(p->xcalls);
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].id);
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
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
        block_reset(p);
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
