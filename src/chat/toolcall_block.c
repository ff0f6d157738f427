/*
 * toolcall_block.c — the kit every tool-call syntax parses its block with
 * (see toolcall_block.h): scanning buf for markers, names and JSON, the
 * events queue, turning parsed JSON or XML-style parameters into pending
 * calls, and ending a block as calls or as content.
 */
#include "chat/toolcall_block.h"

#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

void *tc_grow(void *arr, size_t *cap, size_t need, size_t elem, bool *oom) {
    if (need <= *cap) return arr;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need) n *= 2;
    void *q = realloc(arr, n * elem);
    if (!q) { *oom = true; return NULL; }
    *cap = n;
    return q;
}

char *tc_dup_n(const char *s, size_t n, bool *oom) {
    char *d = malloc(n + 1);
    if (!d) { *oom = true; return NULL; }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int tc_match_at(const toolcall_parser *p, size_t i, const char *m) {
    size_t ml = strlen(m), avail = p->buf.len - i;
    size_t k = avail < ml ? avail : ml;
    if (memcmp(p->buf.data + i, m, k) != 0) return 0;
    return avail >= ml ? 1 : -1;
}

int tc_which_marker(const toolcall_parser *p, size_t i, const char *m1, const char *m2) {
    int r1 = m1 ? tc_match_at(p, i, m1) : 0, r2 = m2 ? tc_match_at(p, i, m2) : 0;
    if (r1 == 1) return 1;
    if (r2 == 1) return 2;
    return r1 == -1 || r2 == -1 ? -1 : 0;
}

size_t tc_find_from(const toolcall_parser *p, size_t from, const char *m, size_t *hold) {
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

size_t tc_skip_ws(const toolcall_parser *p, size_t i) {
    while (i < p->buf.len && tc_is_ws(p->buf.data[i])) i++;
    return i;
}

int tc_next_marker(toolcall_parser *p, const char *m1, const char *m2, size_t *at) {
    size_t i = tc_skip_ws(p, p->cur);
    p->cur = *at = i;
    if (i == p->buf.len) return -1;
    int w = tc_which_marker(p, i, m1, m2);
    if (w == 0) tc_block_fail(p, i);
    return w;
}

void tc_consume(toolcall_parser *p, size_t n) {
    strbuf_consume(&p->buf, n);
    p->cur = 0;
}

size_t tc_scan_name(toolcall_parser *p, size_t a, char term, size_t *fail_at) {
    for (size_t j = p->cur; j < p->buf.len; j++) {
        char c = p->buf.data[j];
        if (c == term) return j;
        if (c == '<' || c == '\n' || j - a >= TOOLCALL_MAX_NAME_BYTES) { *fail_at = j; return NPOS; }
    }
    p->cur = p->buf.len;
    *fail_at = NPOS;
    return NPOS;
}

void tc_event_push(toolcall_parser *p, toolcall_event_kind kind, size_t index, const char *s, size_t n) {
    if (p->n_events > 0 && (kind == TOOLCALL_EVENT_CONTENT || kind == TOOLCALL_EVENT_REASONING)) {
        event_rec *last = &p->events[p->n_events - 1];
        if (last->kind == kind && last->off + last->len == p->evtext.len) {
            if (strbuf_append(&p->evtext, s, n) == 0) last->len += n;
            return;
        }
    }
    event_rec *e = tc_grow(p->events, &p->cap_events, p->n_events + 1, sizeof *e, &p->oom);
    if (!e) return;
    p->events = e;
    size_t off = p->evtext.len;
    if (n > 0 && strbuf_append(&p->evtext, s, n) != 0) return;
    p->events[p->n_events++] = (event_rec){kind, index, off, n};
}

static void pending_clear(toolcall_parser *p) {
    for (size_t i = 0; i < p->n_pend; i++) {
        free(p->pend[i].name);
        free(p->pend[i].args);
    }
    p->n_pend = 0;
}

int tc_pending_add(toolcall_parser *p, char *name, char *args) {
    pending_call *q = tc_grow(p->pend, &p->cap_pend, p->n_pend + 1, sizeof *q, &p->oom);
    if (!q || !name || !args) { free(name); free(args); return -1; }
    p->pend = q;
    p->pend[p->n_pend++] = (pending_call){name, args, NPOS};
    return 0;
}

bool tc_name_ok(const toolcall_parser *p, const char *s, size_t n) {
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
        if (key_is(s, k0, k1, "name") || key_is(s, k0, k1, "tool_name")) name = (span){v0, v1};   /* tool_name: Cohere */
        else if (key_is(s, k0, k1, "arguments") || key_is(s, k0, k1, "parameters")) args = (span){v0, v1};
    }
    if (r < 0 || name.a == NPOS || s[name.a] != '"') return -1;
    size_t name_len;
    char *nm = tjson_string_decode(s + name.a, name.b - name.a, &name_len);
    if (!nm) return -1;
    if (!tc_name_ok(p, nm, name_len)) { free(nm); return -1; }
    char *ar = NULL;
    if (args.a == NPOS) {
        ar = tc_dup_n("{}", 2, &p->oom);
    } else if (s[args.a] == '{') {
        ar = tc_dup_n(s + args.a, args.b - args.a, &p->oom);
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
    return tc_pending_add(p, nm, ar);
}

bool tc_begin_json(toolcall_parser *p, size_t i, int next) {
    memset(&p->js, 0, sizeof p->js);
    p->json_start = i;
    p->json_is_array = p->buf.data[i] == '[';
    p->cur = i;
    p->sub = next;
    tc_jstream_begin(p);
    return true;
}

bool tc_feed_json(toolcall_parser *p, size_t *end, bool *failed) {
    size_t bad = 0;
    size_t e = tjson_scan_feed(&p->js, p->buf.data, p->cur, p->buf.len, &bad);
    *failed = false;
    tc_jstream_run(p, e == TJSON_SCAN_MORE ? p->buf.len : e == TJSON_BAD ? bad : e);
    if (e == TJSON_SCAN_MORE) { p->cur = p->buf.len; return false; }
    if (e == TJSON_BAD) { *failed = true; *end = bad; return false; }
    *end = e;
    return true;
}

bool tc_step_args_open(toolcall_parser *p, int json_sub) {
    size_t i = tc_skip_ws(p, p->cur);
    p->cur = i;
    if (i == p->buf.len) return false;
    if (p->buf.data[i] != '{') return tc_block_fail(p, i);
    tc_begin_json(p, i, json_sub);
    tc_jstream_args(p, p->name);
    return true;
}

bool tc_step_args_json(toolcall_parser *p, int next_sub) {
    const char *s = p->buf.data;
    size_t end = 0;
    bool failed;
    if (!tc_feed_json(p, &end, &failed)) return failed ? tc_block_fail(p, end) : false;
    size_t a = p->json_start;
    if (tjson_value_end(s, end, a) != end || utf8_valid_prefix(s + a, end - a) != end - a) return tc_block_fail(p, end);
    char *nm = tc_dup_n(s + p->name.a, p->name.b - p->name.a, &p->oom);
    char *ar = tc_dup_n(s + a, end - a, &p->oom);
    if (tc_pending_add(p, nm, ar) != 0) return tc_block_fail(p, end);
    p->pend[p->n_pend - 1].call = p->jcall;   /* sent while parsed (or NPOS) */
    p->jcall = NPOS;
    p->cur = end;
    p->sub = next_sub;
    return true;
}

int tc_json_calls_parse(toolcall_parser *p, size_t end) {
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

bool tc_push_xcall(toolcall_parser *p, span name) {
    if (p->n_xcalls >= TOOLCALL_MAX_CALLS) return false;
    xml_call *q = tc_grow(p->xcalls, &p->cap_xcalls, p->n_xcalls + 1, sizeof *q, &p->oom);
    if (!q) return false;
    p->xcalls = q;
    p->xcalls[p->n_xcalls++] = (xml_call){name, p->n_params, 0, NPOS};
    tc_stream_xcall_begin(p);
    return true;
}

bool tc_push_param(toolcall_parser *p, span key, span val) {
    xml_param *q = tc_grow(p->params, &p->cap_params, p->n_params + 1, sizeof *q, &p->oom);
    if (!q) return false;
    p->params = q;
    p->params[p->n_params++] = (xml_param){key, val};
    p->xcalls[p->n_xcalls - 1].n_params++;
    return true;
}

/* Builds the pending calls of the XML-style calls parsed in this block. */
static int xml_calls_build(toolcall_parser *p) {
    const char *s = p->buf.data;
    for (size_t c = 0; c < p->n_xcalls; c++) {
        const xml_call *xc = &p->xcalls[c];
        size_t nl = xc->name.b - xc->name.a;
        if (!tc_name_ok(p, s + xc->name.a, nl)) return -1;
        char *fn = tc_dup_n(s + xc->name.a, nl, &p->oom);
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
            char *key = tc_dup_n(s + q->key.a, kl, &p->oom);
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
        if (tc_pending_add(p, fn, args) != 0) return -1;
        p->pend[p->n_pend - 1].call = xc->call;
    }
    return 0;
}

bool tc_step_param_or_end(toolcall_parser *p, const char *open, const char *end, int param_sub, int end_sub) {
    size_t i;
    int w = tc_next_marker(p, open, end, &i);
    if (w < 1) return w == 0;
    if (w == 1) {
        if (p->xcalls[p->n_xcalls - 1].n_params >= TOOLCALL_MAX_PARAMS) return tc_block_fail(p, i);
        p->key_a = p->cur = i + strlen(open);
        p->sub = param_sub;
    } else {
        p->cur = i + strlen(end);
        p->sub = end_sub;
    }
    return true;
}

bool tc_step_param_value(toolcall_parser *p, const char *close, int next_sub) {
    size_t hold = 0;
    size_t pos = tc_find_from(p, p->cur, close, &hold);
    if (pos == NPOS) {
        p->cur = hold;
        tc_stream_param(p, hold, false);
        return false;
    }
    tc_stream_param(p, pos, true);
    if (!tc_push_param(p, p->key, (span){p->val_a, pos})) return tc_block_fail(p, pos);
    p->cur = pos + strlen(close);
    p->sub = next_sub;
    return true;
}

bool tc_xml_block_close(toolcall_parser *p, size_t i) {
    size_t end = i + strlen(p->fmt.call_close);
    tc_stream_xcall_end(p);
    if (p->n_xcalls == 0 || xml_calls_build(p) != 0) return tc_block_fail(p, end);
    return tc_block_done(p, end);
}

void tc_block_reset(toolcall_parser *p) {
    pending_clear(p);
    p->n_params = 0;
    p->n_xcalls = 0;
    memset(&p->js, 0, sizeof p->js);
    p->block_calls = p->n_calls;
    p->stream_call = p->stream_key_a = NPOS;
    p->stream_members = 0;
    p->stream_json = false;
    strbuf_reset(&p->stream_args);
    p->jrec = JREC_OFF;
    p->jcall = NPOS;
}

bool tc_block_fail(toolcall_parser *p, size_t at) {
    bool committed = tc_stream_abort(p);
    tc_block_reset(p);
    p->state = ST_CONTENT;
    p->cur = at;
    /* A committed call is a call: the block's bytes up to the failure go with it. */
    if (committed) tc_consume(p, at);
    return true;
}

size_t tc_call_open(toolcall_parser *p, const char *name, size_t n) {
    toolcall_call *c = tc_grow(p->calls, &p->cap_calls, p->n_calls + 1, sizeof *c, &p->oom);
    if (!c) return NPOS;
    p->calls = c;
    char id[40];
    if (p->fmt.syntax == TOOLCALL_MISTRAL) toolcall_id_make(id, sizeof id, "", 9, &p->rng);
    else toolcall_id_make(id, sizeof id, "call_", 24, &p->rng);
    char *idc = tc_dup_n(id, strlen(id), &p->oom), *nm = tc_dup_n(name, n, &p->oom);
    if (!idc || !nm) { free(idc); free(nm); return NPOS; }
    size_t index = p->n_calls++;
    p->calls[index] = (toolcall_call){idc, nm, NULL};
    tc_event_push(p, TOOLCALL_EVENT_CALL_START, index, "", 0);
    return index;
}

bool tc_block_done(toolcall_parser *p, size_t end) {
    if (p->jcall != NPOS && p->n_pend == 1) p->pend[0].call = p->jcall;   /* streamed while parsed */
    size_t fresh = 0;   /* pending calls that did not stream */
    for (size_t i = 0; i < p->n_pend; i++) fresh += p->pend[i].call == NPOS;
    if (p->n_pend == 0 || p->n_calls + fresh > TOOLCALL_MAX_CALLS) return tc_block_fail(p, end);
    for (size_t i = 0; i < p->n_pend; i++) {
        if (p->pend[i].call != NPOS) continue;   /* already sent, arguments and all */
        size_t index = tc_call_open(p, p->pend[i].name, strlen(p->pend[i].name));
        if (index == NPOS) return tc_block_fail(p, end);
        p->calls[index].arguments = p->pend[i].args;
        p->pend[i].args = NULL;
        const char *args = p->calls[index].arguments;
        tc_event_push(p, TOOLCALL_EVENT_CALL_ARGS, index, args, strlen(args));
    }
    tc_block_reset(p);
    tc_consume(p, end);
    p->state = p->fmt.syntax == TOOLCALL_LLAMA3_JSON ? ST_LLAMA_NEXT : ST_CONTENT;
    return true;
}
