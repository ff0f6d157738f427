/*
 * jinja_filters.c — Jinja2's builtin filters and tests, with Jinja2 3.1's
 * argument names and defaults (positional or keyword), plus Hugging Face's
 * tojson (json.dumps with ensure_ascii, indent, separators, sort_keys).
 * Filters are one function each in a {name, fn} table (FILTERS, as the
 * method tables of jinja_methods.c); tests are a switch. Names resolve to
 * table indices at parse time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja_internal.h"

/* ---- argument helpers */

typedef struct fargs {
    const jv *args;
    int nargs;
    const char *const *kwnames;
    const jv *kwvals;
    int nkw;
} fargs;

/* The argument at position pos (0 = first after the filtered value) or named
 * name; dflt when absent. */
static jv arg(const fargs *a, int pos, const char *name, jv dflt) {
    if (pos >= 0 && pos < a->nargs) return a->args[pos];
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->kwnames[i], name)) return a->kwvals[i];
    return dflt;
}

static int check_kw(jr *r, const fargs *a, const char *fname, const char *const *allowed) {
    for (int i = 0; i < a->nkw; i++) {
        bool ok = false;
        for (int k = 0; allowed[k]; k++)
            if (!strcmp(a->kwnames[i], allowed[k])) ok = true;
        if (!ok) return jr_fail(r, "%s() got an unexpected keyword argument '%s'", fname, a->kwnames[i]);
    }
    return 0;
}

static jv S(jr *r, const char *s) { return jv_str(&r->arena, s, strlen(s)); }

static int str_of(jr *r, jv v, jv *out) {
    if (v.type == JV_UNDEFINED) { *out = S(r, ""); return out->u.s ? 0 : jr_oom(r); }
    return jr_to_string(r, v, out);
}

static int need_str(jr *r, jv v, const char *what, jv *out) {
    if (v.type == JV_UNDEFINED) return jr_undefined_error(r, v);
    (void)what;
    return jr_to_string(r, v, out);
}

static int length_of(jr *r, jv v, int64_t *n) {
    switch (v.type) {
    case JV_STRING: *n = (int64_t)utf8_count(v.u.s->data, v.u.s->len); return 0;
    case JV_LIST:
        if (v.u.l->is_gen) return jr_fail(r, "object of type 'generator' has no len()");
        *n = (int64_t)v.u.l->n;
        return 0;
    case JV_DICT: case JV_NAMESPACE: *n = (int64_t)v.u.d->n; return 0;
    case JV_UNDEFINED: *n = 0; return 0;
    case JV_LOOP: *n = (int64_t)v.u.loop->length; return 0;
    default: return jr_fail(r, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* attribute path "a.b" (or an int index) for map/selectattr/sort/... like
 * Jinja's make_attrgetter: item lookup first for each part */
static int get_path(jr *r, jv obj, jv attr, jv *out) {
    if (attr.type == JV_INT) return jr_getitem(r, obj, attr, out);
    if (attr.type != JV_STRING) return jr_fail(r, "attribute must be a string");
    const char *s = attr.u.s->data, *e = s + attr.u.s->len;
    jv cur = obj;
    while (s <= e) {
        const char *dot = memchr(s, '.', (size_t)(e - s));
        size_t n = dot ? (size_t)(dot - s) : (size_t)(e - s);
        bool digits = n > 0 && n <= 18;
        for (size_t i = 0; i < n; i++) if (s[i] < '0' || s[i] > '9') digits = false;
        jv key;
        if (digits) key = jv_int(atoll(s));
        else { key = jv_str(&r->arena, s, n); if (!key.u.s) return jr_oom(r); }
        if (jr_getitem(r, cur, key, &cur)) return -1;
        if (!dot) break;
        s = dot + 1;
    }
    *out = cur;
    return 0;
}

static int lower_key(jr *r, jv v, bool case_sensitive, jv *out) {
    if (!case_sensitive && v.type == JV_STRING) return jr_str_case(r, v, 0, out);
    *out = v;
    return 0;
}

/* stable merge sort of values by jv_compare on keys */
static int sort_values(jr *r, jv *vals, jv *keys, size_t n, bool reverse) {
    if (n < 2) return 0;
    jv *tv = jarena_alloc(&r->arena, n * sizeof(jv)), *tk = jarena_alloc(&r->arena, n * sizeof(jv));
    if (!tv || !tk) return jr_oom(r);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c;
                if (jv_compare(keys[j], keys[i], &c))
                    return jr_fail(r, "'<' not supported between instances of '%s' and '%s'", jv_type_name(keys[j]), jv_type_name(keys[i]));
                bool take_j = reverse ? c > 0 : c < 0;
                if (take_j) { tv[k] = vals[j]; tk[k++] = keys[j++]; }
                else { tv[k] = vals[i]; tk[k++] = keys[i++]; }
            }
            while (i < mid) { tv[k] = vals[i]; tk[k++] = keys[i++]; }
            while (j < hi) { tv[k] = vals[j]; tk[k++] = keys[j++]; }
        }
        memcpy(vals, tv, n * sizeof(jv));
        memcpy(keys, tk, n * sizeof(jv));
    }
    return 0;
}

static jlist *copy_list(jr *r, const jlist *l) {
    jlist *c = jlist_new(&r->arena, l->n);
    if (!c) return NULL;
    if (l->n) memcpy(c->items, l->items, l->n * sizeof(jv));
    c->n = l->n;
    return c;
}

int jr_html_escape(jr *r, jv v, jv *out) {
    jv s;
    if (v.type == JV_STRING && v.aux == 1) { *out = v; return 0; }
    if (v.type == JV_UNDEFINED) { *out = S(r, ""); out->aux = 1; return out->u.s ? 0 : jr_oom(r); }
    if (jr_to_string(r, v, &s)) return -1;
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < s.u.s->len; i++) {
        char c = s.u.s->data[i];
        switch (c) {
        case '&': strbuf_puts(&b, "&amp;"); break;
        case '<': strbuf_puts(&b, "&lt;"); break;
        case '>': strbuf_puts(&b, "&gt;"); break;
        case '"': strbuf_puts(&b, "&#34;"); break;
        case '\'': strbuf_puts(&b, "&#39;"); break;
        default: strbuf_append(&b, &c, 1);
        }
    }
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
    out->aux = 1;
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

/* Python's str.splitlines() line breaks at s[i]: its byte length, or 0. */
static size_t line_break_at(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e) return 1;
    if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) return 2;
    if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 && ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) return 3;
    return 0;
}

static int filter_indent(jr *r, jv s, const fargs *a, jv *out) {
    jv width = arg(a, 0, "width", jv_int(4)), first = arg(a, 1, "first", jv_bool(false)), blank = arg(a, 2, "blank", jv_bool(false));
    jv ind;
    if (width.type == JV_STRING) ind = width;
    else if (width.type == JV_INT) {
        int64_t w = width.u.i < 0 ? 0 : width.u.i;
        if (w > 4096) return jr_fail_code(r, ERR_LIMIT, "indent width too large");
        char sp[4097];
        memset(sp, ' ', (size_t)w);
        ind = jv_str(&r->arena, sp, (size_t)w);
    } else return jr_fail(r, "indent width must be an int or a string");
    if (!ind.u.s) return jr_oom(r);
    if (need_str(r, s, "indent", &s)) return -1;
    /* s += "\n"; lines = s.splitlines() */
    const char *d = s.u.s->data;
    size_t n = s.u.s->len;
    strbuf b = STRBUF_INIT;
    size_t start = 0, line_no = 0;
    bool bl = jv_truthy(blank);
    /* iterate lines of s + "\n" */
    for (size_t i = 0; i <= n; i++) {
        size_t br = i < n ? line_break_at(d, n, i) : 1; /* the appended "\n" */
        if (!br) continue;
        size_t len = i - start;
        if (line_no > 0) {
            strbuf_puts(&b, "\n");
            if (bl || len > 0) strbuf_append(&b, ind.u.s->data, ind.u.s->len);
        }
        strbuf_append(&b, d + start, len);
        line_no++;
        i += br - 1;
        start = i + 1;
        if (i >= n) break;
    }
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    strbuf res = STRBUF_INIT;
    if (jv_truthy(first)) strbuf_append(&res, ind.u.s->data, ind.u.s->len);
    strbuf_append(&res, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    if (res.failed) { strbuf_free(&res); return jr_oom(r); }
    *out = jv_str(&r->arena, res.data ? res.data : "", res.len);
    strbuf_free(&res);
    return out->u.s ? 0 : jr_oom(r);
}

static int filter_tojson(jr *r, jv v, const fargs *a, jv *out) {
    static const char *const kws[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    if (check_kw(r, a, "tojson", kws)) return -1;
    jv ea = arg(a, 0, "ensure_ascii", jv_bool(false)), ind = arg(a, 1, "indent", jv_none()),
       sep = arg(a, 2, "separators", jv_none()), sk = arg(a, 3, "sort_keys", jv_bool(false));
    int indent = -1;
    const char *indent_str = NULL;
    if (ind.type == JV_INT) indent = ind.u.i < 0 ? 0 : ind.u.i > 64 ? 64 : (int)ind.u.i;
    else if (ind.type == JV_STRING) indent_str = ind.u.s->data;
    else if (ind.type != JV_NONE && ind.type != JV_UNDEFINED) return jr_fail(r, "tojson indent must be an int or a string");
    const char *item_sep = indent >= 0 || indent_str ? "," : ", ", *key_sep = ": ";
    if (sep.type == JV_LIST && sep.u.l->n == 2 && sep.u.l->items[0].type == JV_STRING && sep.u.l->items[1].type == JV_STRING) {
        item_sep = sep.u.l->items[0].u.s->data;
        key_sep = sep.u.l->items[1].u.s->data;
    } else if (sep.type != JV_NONE && sep.type != JV_UNDEFINED) {
        return jr_fail(r, "tojson separators must be a pair of strings");
    }
    strbuf b = STRBUF_INIT;
    jtojson_opts o = {indent_str ? 0 : indent, indent_str, item_sep, key_sep, jv_truthy(sk), jv_truthy(ea)};
    int rc = jinja_tojson(r, v, &o, &b);
    if (rc) { strbuf_free(&b); return -1; }
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

static jv gen(jlist *l) { l->is_gen = true; return jv_list(l); }

/* select/reject/selectattr/rejectattr: mode bit 1 = reject, bit 2 = attr */
static int select_items(jr *r, jv seq, const fargs *a, int mode, jv *out) {
    jlist *items;
    if (!jv_truthy(seq)) seq = jv_undef(NULL); /* `if value: for item in value` */
    if (jr_iterate(r, seq, &items)) return -1;
    bool by_attr = mode & 2, reject = mode & 1;
    int p = 0;
    jv attr = jv_none();
    if (by_attr) {
        if (a->nargs < 1) return jr_fail(r, "Missing parameter for attribute name");
        attr = a->args[p++];
    }
    int test = -1;
    if (a->nargs > p) {
        jv tn = a->args[p++];
        if (tn.type != JV_STRING) return jr_fail(r, "test name must be a string");
        test = jinja_test_lookup(tn.u.s->data, tn.u.s->len);
        if (test < 0) return jr_fail(r, "No test named '%s'.", tn.u.s->data);
    }
    jlist *res = jlist_new(&r->arena, 0);
    if (!res) return jr_oom(r);
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->items[i];
        if (by_attr && get_path(r, x, attr, &x)) return -1;
        bool ok;
        if (test < 0) ok = jv_truthy(x);
        else if (jinja_apply_test(r, test, x, a->args + p, a->nargs - p, &ok)) return -1;
        if (ok != reject && jlist_push(&r->arena, res, items->items[i])) return jr_oom(r);
    }
    *out = gen(res);
    return 0;
}

static int filter_map(jr *r, jv seq, const fargs *a, jv *out) {
    jlist *items;
    if (!jv_truthy(seq)) seq = jv_undef(NULL); /* `if value: for item in value` */
    if (jr_iterate(r, seq, &items)) return -1;
    jlist *res = jlist_new(&r->arena, items->n);
    if (!res) return jr_oom(r);
    jv attr = arg(a, -1, "attribute", jv_undef(NULL));
    if (attr.type != JV_UNDEFINED || a->nargs == 0) {
        if (attr.type == JV_UNDEFINED) return jr_fail(r, "map requires a filter name or attribute=");
        jv dflt = arg(a, -1, "default", jv_undef(NULL));
        for (size_t i = 0; i < items->n; i++) {
            jv x;
            if (get_path(r, items->items[i], attr, &x)) return -1;
            if (x.type == JV_UNDEFINED && dflt.type != JV_UNDEFINED) x = dflt;
            res->items[res->n++] = x;
        }
    } else {
        jv fname = a->args[0];
        if (fname.type != JV_STRING) return jr_fail(r, "map filter name must be a string");
        int f = jinja_filter_lookup(fname.u.s->data, fname.u.s->len);
        if (f < 0) return jr_fail(r, "No filter named '%s'.", fname.u.s->data);
        for (size_t i = 0; i < items->n; i++) {
            jv x;
            if (jinja_apply_filter(r, f, items->items[i], a->args + 1, a->nargs - 1, a->kwnames, a->kwvals, a->nkw, &x)) return -1;
            res->items[res->n++] = x;
        }
    }
    *out = gen(res);
    return 0;
}

/* Python int(str) */
static bool parse_int(const char *s, size_t n, int base, int64_t *out) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')) i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\f' || s[n - 1] == '\v')) n--;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= n) return false;
    int64_t v = 0;
    bool prev_us = true;
    for (; i < n; i++) {
        int d;
        if (s[i] == '_') { if (prev_us) return false; prev_us = true; continue; }
        if (s[i] >= '0' && s[i] <= '9') d = s[i] - '0';
        else if (s[i] >= 'a' && s[i] <= 'z') d = s[i] - 'a' + 10;
        else if (s[i] >= 'A' && s[i] <= 'Z') d = s[i] - 'A' + 10;
        else return false;
        if (d >= base) return false;
        if (v > (INT64_MAX - d) / base) return false;
        v = v * base + d;
        prev_us = false;
    }
    if (prev_us) return false;
    *out = neg ? -v : v;
    return true;
}

static bool parse_float(const char *s, size_t n, double *out) {
    char buf[128];
    if (n >= sizeof buf) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) if (s[i] != '_') buf[k++] = s[i];
    buf[k] = '\0';
    char *end;
    const char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (!*p) return false;
    double d = strtod(p, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n') end++;
    if (*end) return false;
    /* strtod accepts hex floats, Python does not */
    if (strchr(p, 'x') || strchr(p, 'X')) return false;
    *out = d;
    return true;
}

static int minmax(jr *r, jv seq, const fargs *a, bool want_max, jv *out) {
    jlist *items;
    if (jr_iterate(r, seq, &items)) return -1;
    jv cs = arg(a, 0, "case_sensitive", jv_bool(false)), attr = arg(a, 1, "attribute", jv_none());
    if (items->n == 0) { *out = jv_undef("No aggregated item, sequence was empty."); out->aux = 1; return 0; }
    jv best = items->items[0], bestk;
    if (attr.type != JV_NONE && get_path(r, best, attr, &bestk)) return -1;
    if (attr.type == JV_NONE) bestk = best;
    if (lower_key(r, bestk, jv_truthy(cs), &bestk)) return -1;
    for (size_t i = 1; i < items->n; i++) {
        jv k = items->items[i];
        if (attr.type != JV_NONE && get_path(r, k, attr, &k)) return -1;
        if (lower_key(r, k, jv_truthy(cs), &k)) return -1;
        int c;
        if (jv_compare(k, bestk, &c)) return jr_fail(r, "'<' not supported between instances of '%s' and '%s'", jv_type_name(k), jv_type_name(bestk));
        if (want_max ? c > 0 : c < 0) { best = items->items[i]; bestk = k; }
    }
    *out = best;
    return 0;
}

static double py_round(double x, int64_t nd) {
    if (!isfinite(x)) return x;
    if (nd > 300) return x;
    if (nd < -300) return 0.0 * x;
    /* correctly rounded through decimal text, half to even like Python */
    char buf[400];
    if (nd >= 0) {
        snprintf(buf, sizeof buf, "%.*f", (int)nd, x);
        return strtod(buf, NULL);
    }
    double p = pow(10.0, (double)-nd);
    return nearbyint(x / p) * p;
}

/* ---- the filters, one function each (Jinja2 3.1 argument names and defaults) */

/* str(in) in case mode (jr_str_case's modes), undefined as "". */
static int str_case(jr *r, jv in, int mode, jv *out) {
    if (str_of(r, in, &in)) return -1;
    return jr_str_case(r, in, mode, out);
}

static int filter_abs(jr *r, jv in, const fargs *a, jv *out) {
    if (in.type == JV_INT) { if (in.u.i == INT64_MIN) return jr_fail(r, "integer overflow"); *out = jv_int(in.u.i < 0 ? -in.u.i : in.u.i); }
    else if (in.type == JV_BOOL) *out = jv_int(in.u.b);
    else if (in.type == JV_FLOAT) *out = jv_float(fabs(in.u.f));
    else if (in.type == JV_UNDEFINED) return jr_undefined_error(r, in);
    else return jr_fail(r, "bad operand type for abs(): '%s'", jv_type_name(in));
    return 0;
}

static int filter_attr(jr *r, jv in, const fargs *a, jv *out) {
    jv nm = arg(a, 0, "name", jv_none());
    if (nm.type != JV_STRING) return jr_fail(r, "attr name must be a string");
    if (in.type == JV_DICT) { *out = jv_undef(NULL); return 0; } /* getattr only, never items */
    return jr_getattr(r, in, nm.u.s->data, nm.u.s->len, out);
}

static int filter_batch(jr *r, jv in, const fargs *a, jv *out) {
    jv lc = arg(a, 0, "linecount", jv_none()), fill = arg(a, 1, "fill_with", jv_none());
    if (lc.type != JV_INT || lc.u.i <= 0) return jr_fail(r, "batch linecount must be a positive int");
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    jlist *res = jlist_new(&r->arena, 0), *cur = NULL;
    if (!res) return jr_oom(r);
    for (size_t i = 0; i < items->n; i++) {
        if (!cur || cur->n == (size_t)lc.u.i) {
            cur = jlist_new(&r->arena, 0);
            if (!cur || jlist_push(&r->arena, res, jv_list(cur))) return jr_oom(r);
        }
        if (jlist_push(&r->arena, cur, items->items[i])) return jr_oom(r);
    }
    bool has_fill = a->nargs > 1 || a->nkw > 0;
    if (cur && has_fill && fill.type != JV_NONE)
        while (cur->n < (size_t)lc.u.i)
            if (jlist_push(&r->arena, cur, fill)) return jr_oom(r);
    *out = gen(res);
    return 0;
}

static int filter_capitalize(jr *r, jv in, const fargs *a, jv *out) { return str_case(r, in, 2, out); }

static int filter_lower(jr *r, jv in, const fargs *a, jv *out) { return str_case(r, in, 0, out); }

static int filter_upper(jr *r, jv in, const fargs *a, jv *out) { return str_case(r, in, 1, out); }

static int filter_title(jr *r, jv in, const fargs *a, jv *out) { return str_case(r, in, 4, out); }

static int filter_center(jr *r, jv in, const fargs *a, jv *out) {
    jv w = arg(a, 0, "width", jv_int(80));
    if (str_of(r, in, &in)) return -1;
    if (w.type != JV_INT) return jr_fail(r, "center width must be an int");
    int64_t len = (int64_t)utf8_count(in.u.s->data, in.u.s->len);
    if (w.u.i <= len) { *out = in; return 0; }
    if (w.u.i > (1 << 20)) return jr_fail_code(r, ERR_LIMIT, "center width too large");
    int64_t pad = w.u.i - len, left = pad / 2 + (pad & w.u.i & 1);
    strbuf b = STRBUF_INIT;
    for (int64_t i = 0; i < left; i++) strbuf_puts(&b, " ");
    strbuf_append(&b, in.u.s->data, in.u.s->len);
    for (int64_t i = 0; i < pad - left; i++) strbuf_puts(&b, " ");
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data, b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

static int filter_length(jr *r, jv in, const fargs *a, jv *out) {
    int64_t n = 0;
    if (length_of(r, in, &n)) return -1;
    *out = jv_int(n);
    return 0;
}

static int filter_default(jr *r, jv in, const fargs *a, jv *out) {
    jv dv = arg(a, 0, "default_value", S(r, "")), bo = arg(a, 1, "boolean", jv_bool(false));
    if (in.type == JV_UNDEFINED || (jv_truthy(bo) && !jv_truthy(in))) *out = dv;
    else *out = in;
    return 0;
}

/* The tuple (key, value) of a dict's entry i. NULL when out of memory. */
static jlist *entry_pair(jr *r, const jdict *d, size_t i) {
    jlist *t = jlist_new(&r->arena, 2);
    if (!t) return NULL;
    t->is_tuple = true;
    t->items[0] = d->e[i].key;
    t->items[1] = d->e[i].value;
    t->n = 2;
    return t;
}

static int filter_dictsort(jr *r, jv in, const fargs *a, jv *out) {
    if (in.type != JV_DICT) return jr_fail(r, "dictsort needs a dict, got '%s'", jv_type_name(in));
    jv cs = arg(a, 0, "case_sensitive", jv_bool(false)), by = arg(a, 1, "by", S(r, "key")), rev = arg(a, 2, "reverse", jv_bool(false));
    int pos = 0;
    if (by.type == JV_STRING && !strcmp(by.u.s->data, "value")) pos = 1;
    else if (!(by.type == JV_STRING && !strcmp(by.u.s->data, "key"))) return jr_fail(r, "You can only sort by either \"key\" or \"value\"");
    size_t n = in.u.d->n;
    jv *vals = jarena_alloc(&r->arena, (n + 1) * sizeof(jv)), *keys = jarena_alloc(&r->arena, (n + 1) * sizeof(jv));
    if (!vals || !keys) return jr_oom(r);
    for (size_t i = 0; i < n; i++) {
        jlist *t = entry_pair(r, in.u.d, i);
        if (!t) return jr_oom(r);
        vals[i] = jv_list(t);
        if (lower_key(r, t->items[pos], jv_truthy(cs), &keys[i])) return -1;
    }
    if (sort_values(r, vals, keys, n, jv_truthy(rev))) return -1;
    jlist *l = jlist_new(&r->arena, n);
    if (!l) return jr_oom(r);
    memcpy(l->items, vals, n * sizeof(jv));
    l->n = n;
    *out = jv_list(l);
    return 0;
}

static int filter_escape(jr *r, jv in, const fargs *a, jv *out) { return jr_html_escape(r, in, out); }

static int filter_forceescape(jr *r, jv in, const fargs *a, jv *out) {
    if (in.type == JV_STRING) in.aux = 0;
    return jr_html_escape(r, in, out);
}

static int first_or_last(jr *r, jv in, bool last, jv *out) {
    jlist *items;
    if (last && in.type == JV_LIST && in.u.l->is_gen) return jr_fail(r, "'generator' object is not reversible");
    if (jr_iterate(r, in, &items)) return -1;
    if (!items->n) { *out = jv_undef(!last ? "No first item, sequence was empty." : "No last item, sequence was empty."); out->aux = 1; return 0; }
    *out = items->items[!last ? 0 : items->n - 1];
    return 0;
}

static int filter_first(jr *r, jv in, const fargs *a, jv *out) { return first_or_last(r, in, false, out); }

static int filter_last(jr *r, jv in, const fargs *a, jv *out) { return first_or_last(r, in, true, out); }

static int filter_float(jr *r, jv in, const fargs *a, jv *out) {
    jv dflt = arg(a, 0, "default", jv_float(0.0));
    if (in.type == JV_FLOAT) *out = in;
    else if (in.type == JV_INT || in.type == JV_BOOL) *out = jv_float(in.type == JV_INT ? (double)in.u.i : in.u.b);
    else if (in.type == JV_STRING) {
        double d;
        *out = parse_float(in.u.s->data, in.u.s->len, &d) ? jv_float(d) : dflt;
    } else *out = dflt;
    return 0;
}

static int filter_int(jr *r, jv in, const fargs *a, jv *out) {
    jv dflt = arg(a, 0, "default", jv_int(0)), base = arg(a, 1, "base", jv_int(10));
    if (in.type == JV_INT) *out = in;
    else if (in.type == JV_BOOL) *out = jv_int(in.u.b);
    else if (in.type == JV_FLOAT) {
        if (!isfinite(in.u.f) || fabs(in.u.f) >= 9.2e18) *out = dflt;
        else *out = jv_int((int64_t)in.u.f);
    } else if (in.type == JV_STRING) {
        int64_t v;
        double d;
        int b = base.type == JV_INT && base.u.i >= 2 && base.u.i <= 36 ? (int)base.u.i : 10;
        if (parse_int(in.u.s->data, in.u.s->len, b, &v)) *out = jv_int(v);
        else if (parse_float(in.u.s->data, in.u.s->len, &d) && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
        else *out = dflt;
    } else *out = dflt;
    return 0;
}

static int filter_format(jr *r, jv in, const fargs *a, jv *out) {
    if (str_of(r, in, &in)) return -1;
    jlist *t = jlist_new(&r->arena, (size_t)a->nargs);
    if (!t) return jr_oom(r);
    t->is_tuple = true;
    for (int i = 0; i < a->nargs; i++) t->items[t->n++] = a->args[i];
    return jr_percent_format(r, in, jv_list(t), out);
}

static int filter_items(jr *r, jv in, const fargs *a, jv *out) {
    if (in.type == JV_UNDEFINED) { *out = jv_list(jlist_new(&r->arena, 0)); return out->u.l ? 0 : jr_oom(r); }
    if (in.type != JV_DICT) return jr_fail(r, "Can only get item pairs from a mapping.");
    jlist *l = jlist_new(&r->arena, in.u.d->n);
    if (!l) return jr_oom(r);
    for (size_t i = 0; i < in.u.d->n; i++) {
        jlist *t = entry_pair(r, in.u.d, i);
        if (!t) return jr_oom(r);
        l->items[l->n++] = jv_list(t);
    }
    *out = gen(l);
    return 0;
}

static int filter_join(jr *r, jv in, const fargs *a, jv *out) {
    jv d = arg(a, 0, "d", S(r, "")), attr = arg(a, 1, "attribute", jv_none());
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    if (d.type != JV_STRING && jr_to_string(r, d, &d)) return -1;
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->items[i];
        if (attr.type != JV_NONE && get_path(r, x, attr, &x)) { strbuf_free(&b); return -1; }
        if (i) strbuf_append(&b, d.u.s->data, d.u.s->len);
        jv_append_str(&b, x);
    }
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

static int filter_list(jr *r, jv in, const fargs *a, jv *out) {
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    jlist *c = copy_list(r, items);
    if (!c) return jr_oom(r);
    *out = jv_list(c);
    return 0;
}

static int filter_max(jr *r, jv in, const fargs *a, jv *out) { return minmax(r, in, a, true, out); }

static int filter_min(jr *r, jv in, const fargs *a, jv *out) { return minmax(r, in, a, false, out); }

static int filter_select(jr *r, jv in, const fargs *a, jv *out) { return select_items(r, in, a, 0, out); }

static int filter_reject(jr *r, jv in, const fargs *a, jv *out) { return select_items(r, in, a, 1, out); }

static int filter_selectattr(jr *r, jv in, const fargs *a, jv *out) { return select_items(r, in, a, 2, out); }

static int filter_rejectattr(jr *r, jv in, const fargs *a, jv *out) { return select_items(r, in, a, 3, out); }

static int filter_replace(jr *r, jv in, const fargs *a, jv *out) {
    jv old = arg(a, 0, "old", jv_undef(NULL)), nw = arg(a, 1, "new", jv_undef(NULL)), cnt = arg(a, 2, "count", jv_none());
    if (str_of(r, in, &in)) return -1;
    if (old.type == JV_UNDEFINED || nw.type == JV_UNDEFINED) return jr_fail(r, "replace() needs old and new");
    if (jr_to_string(r, old, &old) || jr_to_string(r, nw, &nw)) return -1;
    return jr_str_replace(r, in, old, nw, cnt.type == JV_INT ? cnt.u.i : -1, out);
}

static int filter_reverse(jr *r, jv in, const fargs *a, jv *out) {
    if (in.type == JV_STRING) {
        jlist *chars;
        if (jr_iterate(r, in, &chars)) return -1;
        strbuf b = STRBUF_INIT;
        for (size_t i = chars->n; i-- > 0;) strbuf_append(&b, chars->items[i].u.s->data, chars->items[i].u.s->len);
        if (b.failed) { strbuf_free(&b); return jr_oom(r); }
        *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
        strbuf_free(&b);
        return out->u.s ? 0 : jr_oom(r);
    }
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    jlist *c = jlist_new(&r->arena, items->n);
    if (!c) return jr_oom(r);
    for (size_t i = 0; i < items->n; i++) c->items[i] = items->items[items->n - 1 - i];
    c->n = items->n;
    *out = in.type == JV_LIST && !in.u.l->is_gen ? gen(c) : jv_list(c);
    return 0;
}

static int filter_round(jr *r, jv in, const fargs *a, jv *out) {
    jv prec = arg(a, 0, "precision", jv_int(0)), method = arg(a, 1, "method", S(r, "common"));
    if (in.type == JV_UNDEFINED) return jr_undefined_error(r, in);
    if (!(in.type == JV_INT || in.type == JV_FLOAT || in.type == JV_BOOL)) return jr_fail(r, "type %s doesn't define __round__ method", jv_type_name(in));
    double x = in.type == JV_FLOAT ? in.u.f : in.type == JV_INT ? (double)in.u.i : in.u.b;
    int64_t p = prec.type == JV_INT ? prec.u.i : 0;
    const char *m = method.type == JV_STRING ? method.u.s->data : "common";
    if (!strcmp(m, "common")) {
        if (in.type != JV_FLOAT) { *out = in.type == JV_BOOL ? jv_int(in.u.b) : in; return 0; }
        *out = jv_float(py_round(x, p));
    } else if (!strcmp(m, "floor") || !strcmp(m, "ceil")) {
        double s = pow(10.0, (double)p);
        *out = jv_float((!strcmp(m, "floor") ? floor(x * s) : ceil(x * s)) / s);
    } else {
        return jr_fail(r, "method must be common, ceil or floor");
    }
    return 0;
}

static int filter_safe(jr *r, jv in, const fargs *a, jv *out) {
    if (str_of(r, in, out)) return -1;
    out->aux = 1;
    return 0;
}

static int filter_sort(jr *r, jv in, const fargs *a, jv *out) {
    jv rev = arg(a, 0, "reverse", jv_bool(false)), cs = arg(a, 1, "case_sensitive", jv_bool(false)), attr = arg(a, 2, "attribute", jv_none());
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    jlist *c = copy_list(r, items);
    jv *keys = c ? jarena_alloc(&r->arena, (c->n + 1) * sizeof(jv)) : NULL;
    if (!keys) return jr_oom(r);
    for (size_t i = 0; i < c->n; i++) {
        jv k = c->items[i];
        if (attr.type != JV_NONE && get_path(r, k, attr, &k)) return -1;
        if (lower_key(r, k, jv_truthy(cs), &keys[i])) return -1;
    }
    if (sort_values(r, c->items, keys, c->n, jv_truthy(rev))) return -1;
    *out = jv_list(c);
    return 0;
}

static int filter_string(jr *r, jv in, const fargs *a, jv *out) { return str_of(r, in, out); }

static int filter_sum(jr *r, jv in, const fargs *a, jv *out) {
    jv attr = arg(a, 0, "attribute", jv_none()), acc = arg(a, 1, "start", jv_int(0));
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->items[i];
        if (attr.type != JV_NONE && get_path(r, x, attr, &x)) return -1;
        bool fl = acc.type == JV_FLOAT || x.type == JV_FLOAT;
        if (!((x.type == JV_INT || x.type == JV_FLOAT || x.type == JV_BOOL) && (acc.type == JV_INT || acc.type == JV_FLOAT || acc.type == JV_BOOL)))
            return jr_fail(r, "unsupported operand type(s) for +: '%s' and '%s'", jv_type_name(acc), jv_type_name(x));
        if (fl) acc = jv_float((acc.type == JV_FLOAT ? acc.u.f : acc.type == JV_INT ? (double)acc.u.i : acc.u.b) +
                               (x.type == JV_FLOAT ? x.u.f : x.type == JV_INT ? (double)x.u.i : x.u.b));
        else {
            int64_t s;
            if (__builtin_add_overflow(acc.type == JV_INT ? acc.u.i : acc.u.b, x.type == JV_INT ? x.u.i : x.u.b, &s)) return jr_fail(r, "integer overflow");
            acc = jv_int(s);
        }
    }
    *out = acc;
    return 0;
}

static int filter_trim(jr *r, jv in, const fargs *a, jv *out) {
    jv chars = arg(a, 0, "chars", jv_none());
    if (str_of(r, in, &in)) return -1;
    if (chars.type == JV_STRING) *out = jr_str_strip(r, in, chars.u.s->data, chars.u.s->len, true, true);
    else *out = jr_str_strip(r, in, NULL, 0, true, true);
    return out->u.s ? 0 : jr_oom(r);
}

static int filter_truncate(jr *r, jv in, const fargs *a, jv *out) {
    jv len = arg(a, 0, "length", jv_int(255)), kw = arg(a, 1, "killwords", jv_bool(false)), end = arg(a, 2, "end", S(r, "...")),
       lee = arg(a, 3, "leeway", jv_int(5));
    if (str_of(r, in, &in)) return -1;
    if (len.type != JV_INT || lee.type != JV_INT || end.type != JV_STRING) return jr_fail(r, "bad truncate arguments");
    size_t cps = utf8_count(in.u.s->data, in.u.s->len), endn = utf8_count(end.u.s->data, end.u.s->len);
    if ((int64_t)cps <= len.u.i + lee.u.i) { *out = in; return 0; }
    int64_t keep = len.u.i - (int64_t)endn;
    if (keep < 0) keep = 0;
    size_t cut = utf8_offset(in.u.s->data, in.u.s->len, (size_t)keep);
    if (!jv_truthy(kw)) {
        /* rsplit(" ", 1)[0] */
        size_t k = cut;
        while (k > 0 && in.u.s->data[k - 1] != ' ') k--;
        if (k > 0) cut = k - 1;
    }
    strbuf b = STRBUF_INIT;
    strbuf_append(&b, in.u.s->data, cut);
    strbuf_append(&b, end.u.s->data, end.u.s->len);
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data, b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

static int filter_unique(jr *r, jv in, const fargs *a, jv *out) {
    jv cs = arg(a, 0, "case_sensitive", jv_bool(false)), attr = arg(a, 1, "attribute", jv_none());
    jlist *items;
    if (jr_iterate(r, in, &items)) return -1;
    jlist *res = jlist_new(&r->arena, 0), *seen = jlist_new(&r->arena, 0);
    if (!res || !seen) return jr_oom(r);
    for (size_t i = 0; i < items->n; i++) {
        jv k = items->items[i];
        if (attr.type != JV_NONE && get_path(r, k, attr, &k)) return -1;
        if (lower_key(r, k, jv_truthy(cs), &k)) return -1;
        bool dup = false;
        for (size_t j = 0; j < seen->n && !dup; j++) dup = jv_equal(seen->items[j], k);
        if (dup) continue;
        if (jlist_push(&r->arena, seen, k) || jlist_push(&r->arena, res, items->items[i])) return jr_oom(r);
    }
    *out = gen(res);
    return 0;
}

static int filter_wordcount(jr *r, jv in, const fargs *a, jv *out) {
    if (str_of(r, in, &in)) return -1;
    int64_t words = 0;
    bool inw = false;
    for (size_t i = 0; i < in.u.s->len; i++) {
        unsigned char c = (unsigned char)in.u.s->data[i];
        bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        if (w && !inw) words++;
        inw = w;
    }
    *out = jv_int(words);
    return 0;
}

static int filter_striptags(jr *r, jv in, const fargs *a, jv *out) {
    if (str_of(r, in, &in)) return -1;
    strbuf b = STRBUF_INIT;
    bool tag = false, space = false;
    for (size_t i = 0; i < in.u.s->len; i++) {
        char c = in.u.s->data[i];
        if (c == '<') { tag = true; continue; }
        if (tag) { if (c == '>') tag = false; continue; }
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') { space = b.len > 0; continue; }
        if (space) strbuf_puts(&b, " ");
        space = false;
        strbuf_append(&b, &c, 1);
    }
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

typedef int (*filter_fn)(jr *r, jv in, const fargs *a, jv *out);

/* A filter's id is its row here (resolved by name at parse time). */
static const struct {
    const char *name;
    filter_fn fn;
} FILTERS[] = {
    {"abs", filter_abs}, {"attr", filter_attr}, {"batch", filter_batch}, {"capitalize", filter_capitalize},
    {"center", filter_center}, {"count", filter_length}, {"d", filter_default}, {"default", filter_default},
    {"dictsort", filter_dictsort}, {"e", filter_escape}, {"escape", filter_escape}, {"first", filter_first},
    {"float", filter_float}, {"forceescape", filter_forceescape}, {"format", filter_format},
    {"indent", filter_indent}, {"int", filter_int}, {"items", filter_items}, {"join", filter_join},
    {"last", filter_last}, {"length", filter_length}, {"list", filter_list}, {"lower", filter_lower},
    {"map", filter_map}, {"max", filter_max}, {"min", filter_min}, {"reject", filter_reject},
    {"rejectattr", filter_rejectattr}, {"replace", filter_replace}, {"reverse", filter_reverse},
    {"round", filter_round}, {"safe", filter_safe}, {"select", filter_select}, {"selectattr", filter_selectattr},
    {"sort", filter_sort}, {"string", filter_string}, {"sum", filter_sum}, {"title", filter_title},
    {"tojson", filter_tojson}, {"trim", filter_trim}, {"truncate", filter_truncate}, {"unique", filter_unique},
    {"upper", filter_upper}, {"wordcount", filter_wordcount}, {"striptags", filter_striptags},
};
#define FILTER_COUNT ((int)(sizeof FILTERS / sizeof FILTERS[0]))

int jinja_filter_lookup(const char *name, size_t n) {
    for (int i = 0; i < FILTER_COUNT; i++)
        if (strlen(FILTERS[i].name) == n && !memcmp(FILTERS[i].name, name, n)) return i;
    return -1;
}

const char *jinja_filter_name(int id) { return id >= 0 && id < FILTER_COUNT ? FILTERS[id].name : "?"; }

int jinja_apply_filter(jr *r, int id, jv in, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
                       int nkw, jv *out) {
    if (id < 0 || id >= FILTER_COUNT) return jr_fail(r, "No filter with id %d", id);
    fargs a = {args, nargs, kwnames, kwvals, nkw};
    return FILTERS[id].fn(r, in, &a, out);
}

/* ---- tests */

enum {
    T_BOOLEAN, T_CALLABLE, T_DEFINED, T_DIVISIBLEBY, T_EQ, T_EQUALTO, T_ESCAPED, T_EVEN, T_FALSE, T_FILTER, T_FLOAT,
    T_GE, T_GT, T_IN, T_INTEGER, T_ITERABLE, T_LE, T_LOWER, T_LT, T_MAPPING, T_NE, T_NONE, T_NUMBER, T_ODD,
    T_SAMEAS, T_SEQUENCE, T_STRING, T_TEST, T_TRUE, T_UNDEFINED, T_UPPER, T_EQSYM, T_NESYM, T_LTSYM, T_LESYM,
    T_GTSYM, T_GESYM, T_GREATERTHAN, T_LESSTHAN, T_COUNT_
};
static const char *const TEST_NAMES[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
    "ge", "gt", "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd",
    "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=",
    ">", ">=", "greaterthan", "lessthan",
};

int jinja_test_lookup(const char *name, size_t n) {
    for (int i = 0; i < T_COUNT_; i++)
        if (strlen(TEST_NAMES[i]) == n && !memcmp(TEST_NAMES[i], name, n)) return i;
    return -1;
}

static int cmp_test(jr *r, jv a, jv b, int want, bool *out) {
    if (a.type == JV_UNDEFINED) return jr_undefined_error(r, a);
    if (b.type == JV_UNDEFINED) return jr_undefined_error(r, b);
    int c;
    if (jv_compare(a, b, &c)) return jr_fail(r, "comparison not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
    switch (want) {
    case 0: *out = c < 0; break;
    case 1: *out = c <= 0; break;
    case 2: *out = c > 0; break;
    default: *out = c >= 0; break;
    }
    return 0;
}

static int case_test(jv v, bool upper, bool *out) {
    if (v.type != JV_STRING) { *out = false; return 0; }
    bool cased = false;
    for (size_t i = 0; i < v.u.s->len; i++) {
        char c = v.u.s->data[i];
        if ((upper && c >= 'a' && c <= 'z') || (!upper && c >= 'A' && c <= 'Z')) { *out = false; return 0; }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) cased = true;
    }
    *out = cased;
    return 0;
}

int jinja_apply_test(jr *r, int id, jv v, const jv *args, int nargs, bool *out) {
    jv a0 = nargs > 0 ? args[0] : jv_undef(NULL);
    if (id >= T_DIVISIBLEBY && (id == T_DIVISIBLEBY || id == T_EQ || id == T_EQUALTO || id == T_GE || id == T_GT || id == T_IN ||
                                id == T_LE || id == T_LT || id == T_NE || id == T_SAMEAS || id >= T_EQSYM) && nargs < 1)
        return jr_fail(r, "test '%s' needs an argument", TEST_NAMES[id]);
    switch (id) {
    case T_BOOLEAN: *out = v.type == JV_BOOL; return 0;
    case T_CALLABLE: *out = v.type == JV_FUNC; return 0;
    case T_DEFINED: *out = v.type != JV_UNDEFINED; return 0;
    case T_UNDEFINED: *out = v.type == JV_UNDEFINED; return 0;
    case T_DIVISIBLEBY:
        if (v.type == JV_UNDEFINED) return jr_undefined_error(r, v);
        if ((v.type == JV_INT || v.type == JV_BOOL) && (a0.type == JV_INT || a0.type == JV_BOOL)) {
            int64_t x = v.type == JV_INT ? v.u.i : v.u.b, y = a0.type == JV_INT ? a0.u.i : a0.u.b;
            if (y == 0) return jr_fail(r, "integer division or modulo by zero");
            *out = y == -1 || x % y == 0;
            return 0;
        }
        if ((v.type == JV_FLOAT || v.type == JV_INT) && (a0.type == JV_FLOAT || a0.type == JV_INT)) {
            double x = v.type == JV_FLOAT ? v.u.f : (double)v.u.i, y = a0.type == JV_FLOAT ? a0.u.f : (double)a0.u.i;
            if (y == 0) return jr_fail(r, "float modulo");
            *out = fmod(x, y) == 0;
            return 0;
        }
        return jr_fail(r, "unsupported operand type(s) for %%: '%s' and '%s'", jv_type_name(v), jv_type_name(a0));
    case T_EQ: case T_EQUALTO: case T_EQSYM: *out = jv_equal(v, a0); return 0;
    case T_NE: case T_NESYM: *out = !jv_equal(v, a0); return 0;
    case T_LT: case T_LTSYM: case T_LESSTHAN: return cmp_test(r, v, a0, 0, out);
    case T_LE: case T_LESYM: return cmp_test(r, v, a0, 1, out);
    case T_GT: case T_GTSYM: case T_GREATERTHAN: return cmp_test(r, v, a0, 2, out);
    case T_GE: case T_GESYM: return cmp_test(r, v, a0, 3, out);
    case T_ESCAPED: *out = false; return 0;
    case T_EVEN: case T_ODD:
        if (v.type == JV_UNDEFINED) return jr_undefined_error(r, v);
        if (v.type == JV_INT || v.type == JV_BOOL) {
            int64_t x = v.type == JV_INT ? v.u.i : v.u.b;
            *out = (x % 2 == 0) == (id == T_EVEN);
            return 0;
        }
        if (v.type == JV_FLOAT) { *out = (fmod(v.u.f, 2.0) == 0) == (id == T_EVEN); return 0; }
        return jr_fail(r, "not all arguments converted during string formatting");
    case T_FALSE: *out = v.type == JV_BOOL && !v.u.b; return 0;
    case T_TRUE: *out = v.type == JV_BOOL && v.u.b; return 0;
    case T_FILTER: *out = v.type == JV_STRING && jinja_filter_lookup(v.u.s->data, v.u.s->len) >= 0; return 0;
    case T_TEST: *out = v.type == JV_STRING && jinja_test_lookup(v.u.s->data, v.u.s->len) >= 0; return 0;
    case T_FLOAT: *out = v.type == JV_FLOAT; return 0;
    case T_INTEGER: *out = v.type == JV_INT; return 0;
    case T_NUMBER: *out = v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL; return 0;
    case T_IN: {
        switch (a0.type) {
        case JV_STRING:
            if (v.type != JV_STRING) return jr_fail(r, "'in <string>' requires string as left operand, not %s", jv_type_name(v));
            *out = memmem(a0.u.s->data, a0.u.s->len, v.u.s->data, v.u.s->len) != NULL || v.u.s->len == 0;
            return 0;
        case JV_LIST:
            *out = false;
            for (size_t i = 0; i < a0.u.l->n; i++) if (jv_equal(a0.u.l->items[i], v)) *out = true;
            return 0;
        case JV_DICT: *out = jdict_get(a0.u.d, v) != NULL; return 0;
        case JV_UNDEFINED: *out = false; return 0;
        default: return jr_fail(r, "argument of type '%s' is not iterable", jv_type_name(a0));
        }
    }
    case T_ITERABLE: *out = v.type == JV_STRING || v.type == JV_LIST || v.type == JV_DICT || v.type == JV_UNDEFINED; return 0;
    case T_SEQUENCE: *out = v.type == JV_STRING || v.type == JV_LIST || v.type == JV_DICT || v.type == JV_UNDEFINED; return 0;
    case T_MAPPING: *out = v.type == JV_DICT; return 0;
    case T_NONE: *out = v.type == JV_NONE; return 0;
    case T_STRING: *out = v.type == JV_STRING; return 0;
    case T_LOWER: return case_test(v, false, out);
    case T_UPPER: return case_test(v, true, out);
    case T_SAMEAS:
        if (v.type != a0.type) { *out = false; return 0; }
        if (v.type == JV_NONE || v.type == JV_UNDEFINED) *out = true;
        else if (v.type == JV_BOOL) *out = v.u.b == a0.u.b;
        else if (v.type == JV_INT) *out = v.u.i == a0.u.i && v.u.i >= -5 && v.u.i <= 256;
        else *out = v.u.l == a0.u.l;
        return 0;
    default: return jr_fail(r, "No test with id %d", id);
    }
}
