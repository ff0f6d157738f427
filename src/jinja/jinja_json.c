/*
 * jinja_json.c — JSON in and out of Jinja values.
 *
 * In: a cJSON tree becomes values (objects keep key order). cJSON keeps no
 * int/float distinction, so an integral number within int64 becomes an int
 * (JSON "1.0" therefore reads as 1; clients that write floats as 1.0 are
 * rare in chat requests).
 * Out: Python's json.dumps byte for byte — ", "/": " separators (","
 * with an indent), non-ASCII kept (ensure_ascii=False) or \uXXXX with
 * surrogate pairs, floats as Python's repr, NaN/Infinity, "[]"/"{}" for
 * empty containers even when indenting, sort_keys over string keys.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja_internal.h"

/* Deepest JSON nesting read or written: JINJA_MAX_VALUE_DEPTH. */
#define JINJA_MAX_JSON_DEPTH JINJA_MAX_VALUE_DEPTH

static int from_json(jr *r, const cJSON *j, jv *out, int depth) {
    if (depth > JINJA_MAX_JSON_DEPTH) return jr_fail_code(r, ERR_LIMIT, "context JSON nested deeper than %d", JINJA_MAX_JSON_DEPTH);
    if (cJSON_IsNull(j)) { *out = jv_none(); return 0; }
    if (cJSON_IsTrue(j)) { *out = jv_bool(true); return 0; }
    if (cJSON_IsFalse(j)) { *out = jv_bool(false); return 0; }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
        return 0;
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = jv_str(&r->arena, s, strlen(s));
        return out->u.s ? 0 : jr_oom(r);
    }
    if (cJSON_IsArray(j)) {
        jlist *l = jlist_new(&r->arena, (size_t)cJSON_GetArraySize(j));
        if (!l) return jr_oom(r);
        l->from_context = true;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (l->n == l->cap) return jr_fail(r, "context array changed size");
            if (from_json(r, c, &l->items[l->n], depth + 1)) return -1;
            l->n++;
        }
        *out = jv_list(l);
        return 0;
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jdict_new(&r->arena);
        if (!d) return jr_oom(r);
        d->from_context = true;
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v;
            if (from_json(r, c, &v, depth + 1)) return -1;
            const char *k = c->string ? c->string : "";
            if (jdict_set_str(&r->arena, d, k, strlen(k), v)) return jr_oom(r);
        }
        *out = jv_dict(d);
        return 0;
    }
    *out = jv_none();
    return 0;
}

int jinja_from_json(jr *r, const cJSON *j, jv *out) { return from_json(r, j, out, 0); }

/* ---- json.dumps */

static void put_u16(strbuf *b, unsigned v) {
    char e[8];
    snprintf(e, sizeof e, "\\u%04x", v & 0xFFFF);
    strbuf_append(b, e, 6);
}

static void json_string(strbuf *b, const char *s, size_t n, bool ensure_ascii) {
    strbuf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (!esc && c >= 0x20 && !(ensure_ascii && c >= 0x80)) { run++; continue; }
        strbuf_append(b, s + i - run, run);
        run = 0;
        if (esc) { strbuf_puts(b, esc); continue; }
        if (c < 0x80) { put_u16(b, c); continue; }
        /* ensure_ascii: decode one UTF-8 sequence */
        unsigned cp = 0;
        int k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        cp = k == 3 ? c & 0x07 : k == 2 ? c & 0x0F : k == 1 ? c & 0x1F : 0xFFFD;
        for (int q = 0; q < k && i + 1 < n; q++) cp = (cp << 6) | ((unsigned char)s[++i] & 0x3F);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put_u16(b, 0xD800 | (cp >> 10));
            put_u16(b, 0xDC00 | (cp & 0x3FF));
        } else {
            put_u16(b, cp);
        }
    }
    strbuf_append(b, s + n - run, run);
    strbuf_append(b, "\"", 1);
}

static void newline_indent(strbuf *b, const jtojson_opts *o, int level) {
    strbuf_append(b, "\n", 1);
    for (int i = 0; i < level; i++) {
        if (o->indent_str) strbuf_puts(b, o->indent_str);
        else for (int k = 0; k < o->indent; k++) strbuf_append(b, " ", 1);
    }
}

static int key_text(jr *r, jv k, jv *out) {
    switch (k.type) {
    case JV_STRING: *out = k; return 0;
    case JV_NONE: *out = jv_str(&r->arena, "null", 4); break;
    case JV_BOOL: *out = k.u.b ? jv_str(&r->arena, "true", 4) : jv_str(&r->arena, "false", 5); break;
    case JV_INT: case JV_FLOAT: return jr_to_string(r, k, out);
    default: return jr_fail(r, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
    return out->u.s ? 0 : jr_oom(r);
}

static int dumps(jr *r, jv v, const jtojson_opts *o, strbuf *b, int level) {
    if (level > JINJA_MAX_JSON_DEPTH) return jr_fail_code(r, ERR_LIMIT, "tojson value nested deeper than %d", JINJA_MAX_JSON_DEPTH);
    bool pretty = o->indent >= 0 || o->indent_str;
    char num[64];
    switch (v.type) {
    case JV_NONE: strbuf_puts(b, "null"); return 0;
    case JV_BOOL: strbuf_puts(b, v.u.b ? "true" : "false"); return 0;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); strbuf_puts(b, num); return 0;
    case JV_FLOAT:
        if (isnan(v.u.f)) strbuf_puts(b, "NaN");
        else if (isinf(v.u.f)) strbuf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else { jv_format_float(v.u.f, num, sizeof num); strbuf_puts(b, num); }
        return 0;
    case JV_STRING: json_string(b, v.u.s->data, v.u.s->len, o->ensure_ascii); return 0;
    case JV_LIST: {
        if (v.u.l->is_gen) return jr_fail(r, "Object of type generator is not JSON serializable");
        if (v.u.l->n == 0) { strbuf_puts(b, "[]"); return 0; }
        strbuf_puts(b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) strbuf_puts(b, o->item_sep);
            if (pretty) newline_indent(b, o, level + 1);
            if (dumps(r, v.u.l->items[i], o, b, level + 1)) return -1;
        }
        if (pretty) newline_indent(b, o, level);
        strbuf_puts(b, "]");
        return 0;
    }
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (d->n == 0) { strbuf_puts(b, "{}"); return 0; }
        size_t *order = jarena_alloc(&r->arena, d->n * sizeof(size_t));
        jv *keys = jarena_alloc(&r->arena, d->n * sizeof(jv));
        if (!order || !keys) return jr_oom(r);
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
            if (key_text(r, d->e[i].key, &keys[i])) return -1;
        }
        if (o->sort_keys) { /* insertion sort: stable, dicts here are small */
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0) {
                    int c;
                    if (jv_compare(d->e[order[j - 1]].key, d->e[x].key, &c))
                        return jr_fail(r, "'<' not supported between instances of '%s' and '%s'", jv_type_name(d->e[x].key), jv_type_name(d->e[order[j - 1]].key));
                    if (c <= 0) break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        strbuf_puts(b, "{");
        for (size_t i = 0; i < d->n; i++) {
            size_t k = order[i];
            if (i) strbuf_puts(b, o->item_sep);
            if (pretty) newline_indent(b, o, level + 1);
            json_string(b, keys[k].u.s->data, keys[k].u.s->len, o->ensure_ascii);
            strbuf_puts(b, o->key_sep);
            if (dumps(r, d->e[k].value, o, b, level + 1)) return -1;
        }
        if (pretty) newline_indent(b, o, level);
        strbuf_puts(b, "}");
        return 0;
    }
    case JV_UNDEFINED:
        return jr_fail(r, "Object of type Undefined is not JSON serializable");
    default:
        return jr_fail(r, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

int jinja_tojson(jr *r, jv v, const jtojson_opts *o, strbuf *b) {
    if (dumps(r, v, o, b, 0)) return -1;
    if (b->len > r->max_output_bytes) return jr_fail_code(r, ERR_LIMIT, "tojson output longer than %zu bytes", r->max_output_bytes);
    return b->failed ? jr_oom(r) : 0;
}

/* ---- JSON text in (keeps 1.0 a float, like Python's json.loads) */

typedef struct jparse {
    jr *r;
    const char *s;
    size_t n, i;
} jparse;

static void skip_ws(jparse *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int jp_fail(jparse *p, const char *what) {
    return jr_fail(p->r, "context JSON: %s at byte %zu", what, p->i);
}

static int hex4(jparse *p, unsigned *out) {
    if (p->i + 4 > p->n) return jp_fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return jp_fail(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static int parse_string(jparse *p, jv *out) {
    p->i++; /* opening quote */
    strbuf b = STRBUF_INIT;
    while (p->i < p->n && p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) { strbuf_free(&b); return jp_fail(p, "control character in string"); }
        if (c != '\\') {
            size_t st = p->i;
            while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' && (unsigned char)p->s[p->i] >= 0x20) p->i++;
            strbuf_append(&b, p->s + st, p->i - st);
            continue;
        }
        if (++p->i >= p->n) break;
        char e = p->s[p->i++];
        char ch = 0;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) { strbuf_free(&b); return -1; }
            if (cp >= 0xD800 && cp < 0xDC00 && p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                unsigned lo;
                p->i += 2;
                if (hex4(p, &lo)) { strbuf_free(&b); return -1; }
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else p->i = save;
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate: not representable in UTF-8 */
            char u[4];
            size_t k;
            if (cp < 0x80) { u[0] = (char)cp; k = 1; }
            else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
            else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); k = 3; }
            else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4; }
            strbuf_append(&b, u, k);
            continue;
        }
        default: strbuf_free(&b); return jp_fail(p, "bad escape");
        }
        strbuf_append(&b, &ch, 1);
    }
    if (p->i >= p->n) { strbuf_free(&b); return jp_fail(p, "unterminated string"); }
    p->i++;
    if (b.failed) { strbuf_free(&b); return jr_oom(p->r); }
    *out = jv_str(&p->r->arena, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(p->r);
}

static int parse_value(jparse *p, jv *out, int depth) {
    if (depth > JINJA_MAX_JSON_DEPTH) return jr_fail_code(p->r, ERR_LIMIT, "context JSON nested deeper than %d", JINJA_MAX_JSON_DEPTH);
    skip_ws(p);
    if (p->i >= p->n) return jp_fail(p, "unexpected end");
    char c = p->s[p->i];
    if (c == '"') return parse_string(p, out);
    if (c == '{') {
        jdict *d = jdict_new(&p->r->arena);
        if (!d) return jr_oom(p->r);
        d->from_context = true;
        p->i++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == '}') { p->i++; *out = jv_dict(d); return 0; }
        for (;;) {
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"') return jp_fail(p, "expected a key");
            jv k, v;
            if (parse_string(p, &k)) return -1;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return jp_fail(p, "expected ':'");
            p->i++;
            if (parse_value(p, &v, depth + 1)) return -1;
            if (jdict_set(&p->r->arena, d, k, v)) return jr_oom(p->r);
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            if (p->i < p->n && p->s[p->i] == '}') { p->i++; break; }
            return jp_fail(p, "expected ',' or '}'");
        }
        *out = jv_dict(d);
        return 0;
    }
    if (c == '[') {
        jlist *l = jlist_new(&p->r->arena, 0);
        if (!l) return jr_oom(p->r);
        l->from_context = true;
        p->i++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ']') { p->i++; *out = jv_list(l); return 0; }
        for (;;) {
            jv v;
            if (parse_value(p, &v, depth + 1)) return -1;
            if (jlist_push(&p->r->arena, l, v)) return jr_oom(p->r);
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            if (p->i < p->n && p->s[p->i] == ']') { p->i++; break; }
            return jp_fail(p, "expected ',' or ']'");
        }
        *out = jv_list(l);
        return 0;
    }
    static const struct { const char *w; int t; } words[] = {{"true", 1}, {"false", 2}, {"null", 3}, {"NaN", 4}, {"Infinity", 5}, {"-Infinity", 6}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t wn = strlen(words[k].w);
        if (p->n - p->i >= wn && !memcmp(p->s + p->i, words[k].w, wn)) {
            p->i += wn;
            switch (words[k].t) {
            case 1: *out = jv_bool(true); break;
            case 2: *out = jv_bool(false); break;
            case 3: *out = jv_none(); break;
            case 4: *out = jv_float(NAN); break;
            case 5: *out = jv_float(INFINITY); break;
            default: *out = jv_float(-INFINITY); break;
            }
            return 0;
        }
    }
    /* number: -?int(.frac)?([eE][+-]?digits)? */
    size_t st = p->i;
    bool is_float = false;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    size_t ds = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i == ds) return jp_fail(p, "unexpected character");
    if (p->i < p->n && p->s[p->i] == '.') {
        is_float = true;
        p->i++;
        size_t fs = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
        if (p->i == fs) return jp_fail(p, "bad number");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_float = true;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        size_t es = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
        if (p->i == es) return jp_fail(p, "bad number");
    }
    char buf[400];
    size_t len = p->i - st;
    if (len >= sizeof buf) return jp_fail(p, "number too long");
    memcpy(buf, p->s + st, len);
    buf[len] = '\0';
    if (!is_float) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) { *out = jv_int(v); return 0; }
        /* beyond int64: Python keeps a big int; larder keeps the nearest double */
    }
    *out = jv_float(strtod(buf, NULL));
    return 0;
}

int jinja_from_json_text(jr *r, const char *s, size_t n, jv *out) {
    jparse p = {r, s, n, 0};
    if (parse_value(&p, out, 0)) return -1;
    skip_ws(&p);
    if (p.i != n) return jp_fail(&p, "trailing characters");
    return 0;
}
