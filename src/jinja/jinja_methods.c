/*
 * jinja_methods.c — the Python str/list/dict methods templates call
 * (s.strip(), s.split(','), d.items(), d.get(k, x), ...), loop.cycle(), and
 * the globals Hugging Face's environment provides: range (at most 100000
 * items, like Jinja2's sandbox), dict, namespace, raise_exception,
 * strftime_now. Methods that mutate (list.append, dict.update, ...) are
 * refused like ImmutableSandboxedEnvironment unless allow_mutation is set,
 * or, with mutate_own_values, run on the lists and dicts the template made
 * (Kimi K2's namespace(ids=[]) queue) as Jinja2's SandboxedEnvironment runs
 * them, while the context's values stay immutable.
 * Case mapping is ASCII; other letters are kept as they are (and count as
 * cased letters for title/capitalize word boundaries).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja/jinja_internal.h"


#define ARGS jr *r, jv self, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals, int nkw, jv *out

static jv kwarg(const jv *args, int nargs, const char *const *kwnames, const jv *kwvals, int nkw, int pos, const char *name, jv dflt) {
    if (pos >= 0 && pos < nargs) return args[pos];
    for (int i = 0; i < nkw; i++)
        if (!strcmp(kwnames[i], name)) return kwvals[i];
    return dflt;
}
#define ARG(pos, name, dflt) kwarg(args, nargs, kwnames, kwvals, nkw, pos, name, dflt)

static int done_str(jr *r, strbuf *b, jv *out) {
    if (b->failed) { strbuf_free(b); return jr_oom(r); }
    *out = jv_str(&r->arena, b->data ? b->data : "", b->len);
    strbuf_free(b);
    return out->u.s ? 0 : jr_oom(r);
}

/* ---- whitespace and case */

/* Length of a Python-whitespace code point at s[i], or 0. */
static size_t space_at(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c == 0xC2 && i + 1 < n && ((unsigned char)s[i + 1] == 0x85 || (unsigned char)s[i + 1] == 0xA0)) return 2;
    if (c == 0xE1 && i + 2 < n && (unsigned char)s[i + 1] == 0x9A && (unsigned char)s[i + 2] == 0x80) return 3;
    if (c == 0xE2 && i + 2 < n) {
        unsigned char c1 = (unsigned char)s[i + 1], c2 = (unsigned char)s[i + 2];
        if (c1 == 0x80 && ((c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF)) return 3;
        if (c1 == 0x81 && c2 == 0x9F) return 3;
    }
    if (c == 0xE3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 && (unsigned char)s[i + 2] == 0x80) return 3;
    return 0;
}

/* Length of the whitespace code point ending at s[end-1], or 0. */
static size_t space_before(const char *s, size_t end) {
    for (size_t k = 1; k <= 3 && k <= end; k++) {
        size_t st = end - k;
        if (((unsigned char)s[st] & 0xC0) == 0x80 && k < 3 && st > 0) continue;
        size_t l = space_at(s, end, st);
        if (l == k) return k;
    }
    return 0;
}

static size_t cp_len(const char *s, size_t n, size_t i) {
    size_t k = 1;
    while (i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) k++;
    return k;
}

static bool in_chars(const char *c, size_t cn, const char *s, size_t len) {
    for (size_t i = 0; i < cn;) {
        size_t k = cp_len(c, cn, i);
        if (k == len && !memcmp(c + i, s, len)) return true;
        i += k;
    }
    return false;
}

jv jr_str_strip(jr *r, jv s, const char *chars, size_t nchars, bool left, bool right) {
    const char *d = s.u.s->data;
    size_t a = 0, b = s.u.s->len;
    if (left) {
        while (a < b) {
            size_t k = chars ? cp_len(d, b, a) : space_at(d, b, a);
            if (!k || (chars && !in_chars(chars, nchars, d + a, k))) break;
            a += k;
        }
    }
    if (right) {
        while (b > a) {
            size_t k;
            if (chars) {
                k = 1;
                while (k < b - a && ((unsigned char)d[b - k] & 0xC0) == 0x80) k++;
                if (!in_chars(chars, nchars, d + b - k, k)) break;
            } else {
                k = space_before(d, b);
                if (!k) break;
            }
            b -= k;
        }
    }
    if (a == 0 && b == s.u.s->len) return s;
    return jv_str(&r->arena, d + a, b - a);
}

static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
/* cased: ASCII letters, and any non-ASCII byte (treated as a letter) */
static bool is_cased(unsigned char c) { return is_lower(c) || is_upper(c) || c >= 0x80; }

int jr_str_case(jr *r, jv s, int mode, jv *out) {
    jstr *o = jstr_new(&r->arena, s.u.s->data, s.u.s->len);
    if (!o) return jr_oom(r);
    char *d = o->data;
    size_t n = o->len;
    if (mode == 0 || mode == 1) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)d[i];
            if (mode == 0 && is_upper(c)) d[i] = (char)(c + 32);
            if (mode == 1 && is_lower(c)) d[i] = (char)(c - 32);
        }
    } else if (mode == 2) { /* capitalize: first upper, rest lower */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)d[i];
            if (i == 0 && is_lower(c)) d[i] = (char)(c - 32);
            else if (i > 0 && is_upper(c)) d[i] = (char)(c + 32);
        }
    } else if (mode == 3) { /* str.title: upper after an uncased char */
        bool prev_cased = false;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)d[i];
            if (!prev_cased && is_lower(c)) d[i] = (char)(c - 32);
            else if (prev_cased && is_upper(c)) d[i] = (char)(c + 32);
            if ((c & 0xC0) != 0x80) prev_cased = is_cased(c);
        }
    } else { /* Jinja title: words split at runs of [-\s({[<]; first char upper, rest lower */
        bool word_start = true;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)d[i];
            bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || space_at(d, n, i);
            if (delim) { word_start = true; i += space_at(d, n, i) > 1 ? space_at(d, n, i) - 1 : 0; continue; }
            if (word_start) { if (is_lower(c)) d[i] = (char)(c - 32); }
            else if (is_upper(c)) d[i] = (char)(c + 32);
            word_start = false;
            i += cp_len(d, n, i) - 1;
        }
    }
    out->type = JV_STRING;
    out->aux = 0;
    out->u.s = o;
    return 0;
}

int jr_str_replace(jr *r, jv s, jv old, jv nw, int64_t count, jv *out) {
    const char *d = s.u.s->data;
    size_t n = s.u.s->len, on = old.u.s->len;
    strbuf b = STRBUF_INIT;
    if (on == 0) { /* inserts new between every code point */
        int64_t done = 0;
        for (size_t i = 0; i <= n;) {
            if (count < 0 || done < count) { strbuf_append(&b, nw.u.s->data, nw.u.s->len); done++; }
            if (i == n) break;
            size_t k = cp_len(d, n, i);
            strbuf_append(&b, d + i, k);
            i += k;
        }
        return done_str(r, &b, out);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < n) {
        const char *hit = (count < 0 || done < count) ? memmem(d + i, n - i, old.u.s->data, on) : NULL;
        if (!hit) break;
        size_t p = (size_t)(hit - d);
        strbuf_append(&b, d + i, p - i);
        strbuf_append(&b, nw.u.s->data, nw.u.s->len);
        i = p + on;
        done++;
        if (b.len > r->max_output_bytes) { strbuf_free(&b); return jr_fail_code(r, ERR_LIMIT, "replace() result too large"); }
    }
    strbuf_append(&b, d + i, n - i);
    return done_str(r, &b, out);
}

int jr_str_split(jr *r, jv s, const jv *sep, int64_t maxsplit, jv *out) {
    jlist *l = jlist_new(&r->arena, 0);
    if (!l) return jr_oom(r);
    const char *d = s.u.s->data;
    size_t n = s.u.s->len;
    if (!sep || sep->type == JV_NONE) {
        size_t i = 0;
        int64_t splits = 0;
        for (;;) {
            while (i < n && space_at(d, n, i)) i += space_at(d, n, i);
            if (i >= n) break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i && space_before(d, e)) e -= space_before(d, e);
                jv p = jv_str(&r->arena, d + i, e - i);
                if (!p.u.s || jlist_push(&r->arena, l, p)) return jr_oom(r);
                break;
            }
            size_t st = i;
            while (i < n && !space_at(d, n, i)) i += cp_len(d, n, i);
            jv p = jv_str(&r->arena, d + st, i - st);
            if (!p.u.s || jlist_push(&r->arena, l, p)) return jr_oom(r);
            splits++;
        }
    } else {
        if (sep->type != JV_STRING) return jr_fail(r, "must be str or None, not %s", jv_type_name(*sep));
        size_t sn = sep->u.s->len;
        if (sn == 0) return jr_fail(r, "empty separator");
        size_t i = 0;
        int64_t splits = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || splits < maxsplit) ? memmem(d + i, n - i, sep->u.s->data, sn) : NULL;
            size_t e = hit ? (size_t)(hit - d) : n;
            jv p = jv_str(&r->arena, d + i, e - i);
            if (!p.u.s || jlist_push(&r->arena, l, p)) return jr_oom(r);
            if (!hit) break;
            i = e + sn;
            splits++;
        }
    }
    *out = jv_list(l);
    return 0;
}

/* ---- str.format and % formatting */

/* Applies a format spec [[fill]align][sign][0][width][.precision][type] to v. */
static int format_spec(jr *r, jv v, const char *spec, size_t sn, strbuf *b) {
    char fill = ' ', align = 0, type = 0;
    int width = 0, prec = -1;
    size_t i = 0;
    if (sn >= 2 && (spec[1] == '<' || spec[1] == '>' || spec[1] == '^')) { fill = spec[0]; align = spec[1]; i = 2; }
    else if (sn >= 1 && (spec[0] == '<' || spec[0] == '>' || spec[0] == '^')) { align = spec[0]; i = 1; }
    if (i < sn && spec[i] == '0') { fill = '0'; if (!align) align = '='; i++; }
    while (i < sn && spec[i] >= '0' && spec[i] <= '9' && width < 100000) width = width * 10 + (spec[i++] - '0');
    if (i < sn && spec[i] == '.') { prec = 0; i++; while (i < sn && spec[i] >= '0' && spec[i] <= '9' && prec < 1000) prec = prec * 10 + (spec[i++] - '0'); }
    if (i < sn) type = spec[i++];
    if (i != sn) return jr_fail(r, "Invalid format specifier");
    strbuf t = STRBUF_INIT;
    bool numeric = v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
    if (type == 'f' || type == 'F' || type == 'e' || type == '%') {
        if (!numeric) { strbuf_free(&t); return jr_fail(r, "Unknown format code '%c' for object of type '%s'", type, jv_type_name(v)); }
        double x = v.type == JV_FLOAT ? v.u.f : v.type == JV_INT ? (double)v.u.i : v.u.b;
        if (type == '%') strbuf_printf(&t, "%.*f%%", prec < 0 ? 6 : prec, x * 100);
        else strbuf_printf(&t, type == 'e' ? "%.*e" : "%.*f", prec < 0 ? 6 : prec, x);
    } else if (type == 'd') {
        if (v.type != JV_INT && v.type != JV_BOOL) { strbuf_free(&t); return jr_fail(r, "Unknown format code 'd' for object of type '%s'", jv_type_name(v)); }
        strbuf_printf(&t, "%lld", (long long)(v.type == JV_INT ? v.u.i : v.u.b));
    } else if (type == 0 || type == 's') {
        if (type == 's' && v.type != JV_STRING) { strbuf_free(&t); return jr_fail(r, "Unknown format code 's' for object of type '%s'", jv_type_name(v)); }
        if (v.type == JV_FLOAT && prec >= 0) strbuf_printf(&t, "%.*g", prec, v.u.f);
        else {
            jv_append_str(&t, v);
            if (prec >= 0 && v.type == JV_STRING) {
                size_t cut = utf8_offset(t.data ? t.data : "", t.len, (size_t)prec);
                t.len = cut;
                if (t.data) t.data[cut] = '\0';
            }
        }
    } else {
        strbuf_free(&t);
        return jr_fail(r, "Unsupported format code '%c'", type);
    }
    if (t.failed) { strbuf_free(&t); return jr_oom(r); }
    size_t len = utf8_count(t.data ? t.data : "", t.len);
    if (!align) align = numeric ? '>' : '<';
    size_t pad = (size_t)width > len ? (size_t)width - len : 0, left = 0;
    if (align == '>' || align == '=') left = pad;
    else if (align == '^') left = pad / 2;
    if (align == '=' && t.len && (t.data[0] == '-' || t.data[0] == '+')) { strbuf_append(b, t.data, 1); memmove(t.data, t.data + 1, t.len--); }
    for (size_t k = 0; k < left; k++) strbuf_append(b, &fill, 1);
    strbuf_append(b, t.data ? t.data : "", t.len);
    for (size_t k = left; k < pad; k++) strbuf_append(b, &fill, 1);
    strbuf_free(&t);
    return 0;
}

static int str_format(ARGS) {
    const char *f = self.u.s->data;
    size_t n = self.u.s->len;
    strbuf b = STRBUF_INIT;
    int auto_idx = 0;
    bool manual_used = false;
    for (size_t i = 0; i < n; i++) {
        char c = f[i];
        if (c == '}' ) {
            if (i + 1 < n && f[i + 1] == '}') { strbuf_append(&b, "}", 1); i++; continue; }
            strbuf_free(&b);
            return jr_fail(r, "Single '}' encountered in format string");
        }
        if (c != '{') { strbuf_append(&b, &c, 1); continue; }
        if (i + 1 < n && f[i + 1] == '{') { strbuf_append(&b, "{", 1); i++; continue; }
        const char *close = memchr(f + i, '}', n - i);
        if (!close) { strbuf_free(&b); return jr_fail(r, "Single '{' encountered in format string"); }
        const char *field = f + i + 1;
        size_t fl = (size_t)(close - field);
        const char *colon = memchr(field, ':', fl), *bang = memchr(field, '!', fl);
        size_t name_len = colon ? (size_t)(colon - field) : fl;
        if (bang && (!colon || bang < colon)) name_len = (size_t)(bang - field);
        jv v;
        if (name_len == 0 ? manual_used : (field[0] >= '0' && field[0] <= '9' && auto_idx > 0)) {
            strbuf_free(&b);
            return jr_fail(r, "cannot switch between manual and automatic field numbering");
        }
        if (name_len > 0 && field[0] >= '0' && field[0] <= '9') manual_used = true;
        if (name_len == 0) {
            if (auto_idx >= nargs) { strbuf_free(&b); return jr_fail(r, "Replacement index %d out of range for positional args tuple", auto_idx); }
            v = args[auto_idx++];
        } else if (field[0] >= '0' && field[0] <= '9') {
            int idx = 0;
            for (size_t k = 0; k < name_len && field[k] >= '0' && field[k] <= '9'; k++)
                idx = idx > 100000 ? 100001 : idx * 10 + (field[k] - '0');
            if (idx >= nargs) { strbuf_free(&b); return jr_fail(r, "Replacement index %d out of range for positional args tuple", idx); }
            v = args[idx];
        } else {
            bool found = false;
            for (int k = 0; k < nkw; k++)
                if (strlen(kwnames[k]) == name_len && !memcmp(kwnames[k], field, name_len)) { v = kwvals[k]; found = true; }
            if (!found) { strbuf_free(&b); return jr_fail(r, "KeyError: '%.*s'", (int)name_len, field); }
        }
        if (bang && (!colon || bang < colon) && bang + 1 < field + fl && bang[1] == 'r') {
            strbuf t = STRBUF_INIT;
            jv_append_repr(&t, v);
            if (t.failed) { strbuf_free(&t); strbuf_free(&b); return jr_oom(r); }
            v = jv_str(&r->arena, t.data, t.len);
            strbuf_free(&t);
            if (!v.u.s) { strbuf_free(&b); return jr_oom(r); }
        }
        if (v.type == JV_UNDEFINED) v = jv_str(&r->arena, "", 0);
        if (colon) {
            if (format_spec(r, v, colon + 1, (size_t)(close - colon - 1), &b)) { strbuf_free(&b); return -1; }
        } else {
            jv_append_str(&b, v);
        }
        i = (size_t)(close - f);
    }
    return done_str(r, &b, out);
}

int jr_percent_format(jr *r, jv fmt, jv argv, jv *out) {
    const jv *items = &argv;
    size_t n_items = 1;
    if (argv.type == JV_LIST && argv.u.l->is_tuple) { items = argv.u.l->items; n_items = argv.u.l->n; }
    const char *f = fmt.u.s->data;
    size_t n = fmt.u.s->len, used = 0;
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '%') { strbuf_append(&b, f + i, 1); continue; }
        if (++i >= n) { strbuf_free(&b); return jr_fail(r, "incomplete format"); }
        if (f[i] == '%') { strbuf_append(&b, "%", 1); continue; }
        char spec[32];
        size_t sn = 0;
        while (i < n && sn < 20 && strchr("-+ #0123456789.", f[i])) spec[sn++] = f[i++];
        if (i >= n) { strbuf_free(&b); return jr_fail(r, "incomplete format"); }
        char t = f[i];
        if (used >= n_items) { strbuf_free(&b); return jr_fail(r, "not enough arguments for format string"); }
        jv v = items[used++];
        spec[sn] = '\0';
        char cf[48];
        if (t == 's' || t == 'r') {
            strbuf tmp = STRBUF_INIT;
            if (t == 's') jv_append_str(&tmp, v); else jv_append_repr(&tmp, v);
            snprintf(cf, sizeof cf, "%%%ss", spec);
            strbuf_printf(&b, cf, tmp.data ? tmp.data : "");
            strbuf_free(&tmp);
        } else if (t == 'd' || t == 'i' || t == 'x' || t == 'X' || t == 'o') {
            if (!(v.type == JV_INT || v.type == JV_BOOL || v.type == JV_FLOAT)) { strbuf_free(&b); return jr_fail(r, "%%%c format: a number is required, not %s", t, jv_type_name(v)); }
            long long x = v.type == JV_INT ? v.u.i : v.type == JV_BOOL ? v.u.b : (long long)v.u.f;
            snprintf(cf, sizeof cf, "%%%sll%c", spec, t == 'i' ? 'd' : t);
            strbuf_printf(&b, cf, x);
        } else if (t == 'f' || t == 'F' || t == 'e' || t == 'E' || t == 'g' || t == 'G') {
            if (!(v.type == JV_INT || v.type == JV_BOOL || v.type == JV_FLOAT)) { strbuf_free(&b); return jr_fail(r, "must be real number, not %s", jv_type_name(v)); }
            double x = v.type == JV_FLOAT ? v.u.f : v.type == JV_INT ? (double)v.u.i : v.u.b;
            snprintf(cf, sizeof cf, "%%%s%c", spec, t);
            strbuf_printf(&b, cf, x);
        } else {
            strbuf_free(&b);
            return jr_fail(r, "unsupported format character '%c'", t);
        }
    }
    if (used < n_items && argv.type == JV_LIST && argv.u.l->is_tuple) { strbuf_free(&b); return jr_fail(r, "not all arguments converted during string formatting"); }
    return done_str(r, &b, out);
}

/* ---- str methods */

static int need_str_arg(jr *r, jv v, const char *m) {
    if (v.type != JV_STRING) return jr_fail(r, "%s() argument must be str, not %s", m, jv_type_name(v));
    return 0;
}

static int m_strip(ARGS, bool left, bool right) {
    if (nargs + nkw > 1) return jr_fail(r, "strip expected at most 1 argument, got %d", nargs + nkw);
    jv c = ARG(0, "chars", jv_none());
    if (c.type == JV_STRING) *out = jr_str_strip(r, self, c.u.s->data, c.u.s->len, left, right);
    else if (c.type == JV_NONE) *out = jr_str_strip(r, self, NULL, 0, left, right);
    else return jr_fail(r, "strip arg must be None or str");
    return out->u.s ? 0 : jr_oom(r);
}
static int m_strip_both(ARGS) { return m_strip(r, self, args, nargs, kwnames, kwvals, nkw, out, true, true); }
static int m_lstrip(ARGS) { return m_strip(r, self, args, nargs, kwnames, kwvals, nkw, out, true, false); }
static int m_rstrip(ARGS) { return m_strip(r, self, args, nargs, kwnames, kwvals, nkw, out, false, true); }
static int m_lower(ARGS) { return jr_str_case(r, self, 0, out); }
static int m_upper(ARGS) { return jr_str_case(r, self, 1, out); }
static int m_capitalize(ARGS) { return jr_str_case(r, self, 2, out); }
static int m_title(ARGS) { return jr_str_case(r, self, 3, out); }

static int m_split(ARGS) {
    jv sep = ARG(0, "sep", jv_none()), mx = ARG(1, "maxsplit", jv_int(-1));
    return jr_str_split(r, self, &sep, mx.type == JV_INT ? mx.u.i : -1, out);
}

static int m_rsplit(ARGS) {
    jv sep = ARG(0, "sep", jv_none()), mx = ARG(1, "maxsplit", jv_int(-1));
    int64_t m = mx.type == JV_INT ? mx.u.i : -1;
    if (m < 0 || sep.type != JV_STRING) return jr_str_split(r, self, &sep, m, out);
    if (sep.u.s->len == 0) return jr_fail(r, "empty separator");
    /* split from the right at most m times */
    jlist *l = jlist_new(&r->arena, 0);
    if (!l) return jr_oom(r);
    const char *d = self.u.s->data;
    size_t end = self.u.s->len, sn = sep.u.s->len;
    jv parts[1];
    (void)parts;
    jlist *rev = jlist_new(&r->arena, 0);
    if (!rev) return jr_oom(r);
    int64_t done = 0;
    while (done < m) {
        size_t hit = (size_t)-1;
        for (size_t k = end >= sn ? end - sn + 1 : 0; k-- > 0;)
            if (!memcmp(d + k, sep.u.s->data, sn)) { hit = k; break; }
        if (hit == (size_t)-1) break;
        jv p = jv_str(&r->arena, d + hit + sn, end - hit - sn);
        if (!p.u.s || jlist_push(&r->arena, rev, p)) return jr_oom(r);
        end = hit;
        done++;
    }
    jv first = jv_str(&r->arena, d, end);
    if (!first.u.s || jlist_push(&r->arena, l, first)) return jr_oom(r);
    for (size_t k = rev->n; k-- > 0;)
        if (jlist_push(&r->arena, l, rev->items[k])) return jr_oom(r);
    *out = jv_list(l);
    return 0;
}

static int m_splitlines(ARGS) {
    jlist *l = jlist_new(&r->arena, 0);
    if (!l) return jr_oom(r);
    const char *d = self.u.s->data;
    size_t n = self.u.s->len, st = 0;
    for (size_t i = 0; i < n; i++) {
        size_t br = 0;
        unsigned char c = (unsigned char)d[i];
        if (c == '\r') br = i + 1 < n && d[i + 1] == '\n' ? 2 : 1;
        else if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e)) br = 1;
        if (!br) continue;
        jv p = jv_str(&r->arena, d + st, i - st);
        if (!p.u.s || jlist_push(&r->arena, l, p)) return jr_oom(r);
        i += br - 1;
        st = i + 1;
    }
    if (st < n) {
        jv p = jv_str(&r->arena, d + st, n - st);
        if (!p.u.s || jlist_push(&r->arena, l, p)) return jr_oom(r);
    }
    *out = jv_list(l);
    return 0;
}

static int affix(jr *r, jv self, jv a, bool suffix, bool *res) {
    if (a.type == JV_LIST && a.u.l->is_tuple) {
        *res = false;
        for (size_t i = 0; i < a.u.l->n && !*res; i++)
            if (affix(r, self, a.u.l->items[i], suffix, res)) return -1;
        return 0;
    }
    if (a.type != JV_STRING)
        return jr_fail(r, "%s first arg must be str or a tuple of str, not %s", suffix ? "endswith" : "startswith", jv_type_name(a));
    size_t n = self.u.s->len, k = a.u.s->len;
    *res = k <= n && !memcmp(self.u.s->data + (suffix ? n - k : 0), a.u.s->data, k);
    return 0;
}
static int m_startswith(ARGS) { bool b; if (nargs < 1 || affix(r, self, args[0], false, &b)) return nargs < 1 ? jr_fail(r, "startswith() takes at least 1 argument") : -1; *out = jv_bool(b); return 0; }
static int m_endswith(ARGS) { bool b; if (nargs < 1 || affix(r, self, args[0], true, &b)) return nargs < 1 ? jr_fail(r, "endswith() takes at least 1 argument") : -1; *out = jv_bool(b); return 0; }

static int m_replace(ARGS) {
    jv o = ARG(0, "old", jv_undef(NULL)), nw = ARG(1, "new", jv_undef(NULL)), c = ARG(2, "count", jv_int(-1));
    if (need_str_arg(r, o, "replace") || need_str_arg(r, nw, "replace")) return -1;
    return jr_str_replace(r, self, o, nw, c.type == JV_INT ? c.u.i : -1, out);
}

/* find/rfind/index/rindex/count: code point positions */
static int find_impl(ARGS, int mode) {
    if (nargs < 1) return jr_fail(r, "find() takes at least 1 argument");
    if (need_str_arg(r, args[0], "find")) return -1;
    const char *d = self.u.s->data, *sub = args[0].u.s->data;
    size_t n = self.u.s->len, sn = args[0].u.s->len, start = 0, end = n;
    size_t cps = utf8_count(d, n);
    if (nargs > 1 && args[1].type == JV_INT) {
        int64_t s = args[1].u.i < 0 ? args[1].u.i + (int64_t)cps : args[1].u.i;
        start = utf8_offset(d, n, s < 0 ? 0 : (size_t)s);
    }
    if (nargs > 2 && args[2].type == JV_INT) {
        int64_t e = args[2].u.i < 0 ? args[2].u.i + (int64_t)cps : args[2].u.i;
        end = utf8_offset(d, n, e < 0 ? 0 : (size_t)e);
    }
    if (mode == 4) { /* count */
        int64_t c = 0;
        if (start > end) { *out = jv_int(0); return 0; }
        if (sn == 0) { *out = jv_int((int64_t)utf8_count(d + start, end - start) + 1); return 0; }
        for (size_t i = start; i + sn <= end;) {
            const char *h = memmem(d + i, end - i, sub, sn);
            if (!h) break;
            c++;
            i = (size_t)(h - d) + sn;
        }
        *out = jv_int(c);
        return 0;
    }
    int64_t pos = -1;
    if (start <= end && sn <= end - start) {
        if (mode == 0 || mode == 2) {
            const char *h = sn ? memmem(d + start, end - start, sub, sn) : d + start;
            if (h) pos = (int64_t)utf8_count(d, (size_t)(h - d));
        } else {
            for (size_t k = end - sn + 1; k-- > start;)
                if (!memcmp(d + k, sub, sn)) { pos = (int64_t)utf8_count(d, k); break; }
        }
    }
    if (pos < 0 && (mode == 2 || mode == 3)) return jr_fail(r, "substring not found");
    *out = jv_int(pos);
    return 0;
}
static int m_find(ARGS) { return find_impl(r, self, args, nargs, kwnames, kwvals, nkw, out, 0); }
static int m_rfind(ARGS) { return find_impl(r, self, args, nargs, kwnames, kwvals, nkw, out, 1); }
static int m_index(ARGS) { return find_impl(r, self, args, nargs, kwnames, kwvals, nkw, out, 2); }
static int m_rindex(ARGS) { return find_impl(r, self, args, nargs, kwnames, kwvals, nkw, out, 3); }
static int m_count(ARGS) { return find_impl(r, self, args, nargs, kwnames, kwvals, nkw, out, 4); }

static int m_join(ARGS) {
    if (nargs != 1) return jr_fail(r, "join() takes exactly one argument");
    jlist *items;
    if (jr_iterate(r, args[0], &items)) return -1;
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < items->n; i++) {
        if (items->items[i].type != JV_STRING) { strbuf_free(&b); return jr_fail(r, "sequence item %zu: expected str instance, %s found", i, jv_type_name(items->items[i])); }
        if (i) strbuf_append(&b, self.u.s->data, self.u.s->len);
        strbuf_append(&b, items->items[i].u.s->data, items->items[i].u.s->len);
    }
    return done_str(r, &b, out);
}

static int char_class(ARGS, int cls) {
    const unsigned char *d = (const unsigned char *)self.u.s->data;
    size_t n = self.u.s->len;
    bool ok = n > 0, cased = false;
    for (size_t i = 0; i < n && ok; i++) {
        unsigned char c = d[i];
        switch (cls) {
        case 0: ok = c >= '0' && c <= '9'; break;                           /* isdigit / isnumeric / isdecimal */
        case 1: ok = is_lower(c) || is_upper(c) || c >= 0x80; break;        /* isalpha */
        case 2: ok = is_lower(c) || is_upper(c) || (c >= '0' && c <= '9') || c >= 0x80; break; /* isalnum */
        case 3: { size_t k = space_at((const char *)d, n, i); ok = k > 0; if (k > 1) i += k - 1; break; } /* isspace */
        case 4: if (is_upper(c)) ok = false; if (is_lower(c)) cased = true; break; /* islower */
        case 5: if (is_lower(c)) ok = false; if (is_upper(c)) cased = true; break; /* isupper */
        }
    }
    if (cls >= 4) ok = ok && cased;
    *out = jv_bool(ok);
    return 0;
}
static int m_isdigit(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 0); }
static int m_isalpha(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 1); }
static int m_isalnum(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 2); }
static int m_isspace(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 3); }
static int m_islower(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 4); }
static int m_isupper(ARGS) { return char_class(r, self, args, nargs, kwnames, kwvals, nkw, out, 5); }

static int m_removeprefix(ARGS) {
    if (nargs != 1 || need_str_arg(r, args[0], "removeprefix")) return nargs != 1 ? jr_fail(r, "removeprefix() takes exactly one argument") : -1;
    bool b;
    affix(r, self, args[0], false, &b);
    *out = b ? jv_str(&r->arena, self.u.s->data + args[0].u.s->len, self.u.s->len - args[0].u.s->len) : self;
    return out->u.s ? 0 : jr_oom(r);
}
static int m_removesuffix(ARGS) {
    if (nargs != 1 || need_str_arg(r, args[0], "removesuffix")) return nargs != 1 ? jr_fail(r, "removesuffix() takes exactly one argument") : -1;
    bool b;
    affix(r, self, args[0], true, &b);
    *out = b ? jv_str(&r->arena, self.u.s->data, self.u.s->len - args[0].u.s->len) : self;
    return out->u.s ? 0 : jr_oom(r);
}

/* ---- list methods */

static int m_list_index(ARGS) {
    if (nargs < 1) return jr_fail(r, "index() takes at least 1 argument");
    for (size_t i = 0; i < self.u.l->n; i++)
        if (jv_equal(self.u.l->items[i], args[0])) { *out = jv_int((int64_t)i); return 0; }
    return jr_fail(r, "value is not in list");
}
static int m_list_count(ARGS) {
    if (nargs != 1) return jr_fail(r, "count() takes exactly one argument");
    int64_t c = 0;
    for (size_t i = 0; i < self.u.l->n; i++) c += jv_equal(self.u.l->items[i], args[0]);
    *out = jv_int(c);
    return 0;
}
static int m_list_copy(ARGS) {
    jlist *c = jlist_new(&r->arena, self.u.l->n);
    if (!c) return jr_oom(r);
    if (self.u.l->n) memcpy(c->items, self.u.l->items, self.u.l->n * sizeof(jv));
    c->n = self.u.l->n;
    *out = jv_list(c);
    return 0;
}
static int m_list_append(ARGS) {
    if (nargs != 1) return jr_fail(r, "append() takes exactly one argument");
    if (jlist_push(&r->arena, self.u.l, args[0])) return jr_oom(r);
    *out = jv_none();
    return 0;
}
static int m_list_extend(ARGS) {
    if (nargs != 1) return jr_fail(r, "extend() takes exactly one argument");
    jlist *items;
    if (jr_iterate(r, args[0], &items)) return -1;
    size_t n = items->n;
    for (size_t i = 0; i < n; i++)
        if (jlist_push(&r->arena, self.u.l, items->items[i])) return jr_oom(r);
    *out = jv_none();
    return 0;
}
static int m_list_pop(ARGS) {
    jlist *l = self.u.l;
    if (!l->n) return jr_fail(r, "pop from empty list");
    int64_t i = nargs > 0 && args[0].type == JV_INT ? args[0].u.i : -1;
    if (i < 0) i += (int64_t)l->n;
    if (i < 0 || (size_t)i >= l->n) return jr_fail(r, "pop index out of range");
    *out = l->items[i];
    memmove(&l->items[i], &l->items[i + 1], (l->n - (size_t)i - 1) * sizeof(jv));
    l->n--;
    return 0;
}
static int m_list_insert(ARGS) {
    if (nargs != 2 || args[0].type != JV_INT) return jr_fail(r, "insert() takes an index and a value");
    jlist *l = self.u.l;
    if (jlist_push(&r->arena, l, jv_none())) return jr_oom(r);
    int64_t i = args[0].u.i;
    if (i < 0) i += (int64_t)l->n - 1;
    if (i < 0) i = 0;
    if ((size_t)i > l->n - 1) i = (int64_t)l->n - 1;
    memmove(&l->items[i + 1], &l->items[i], (l->n - 1 - (size_t)i) * sizeof(jv));
    l->items[i] = args[1];
    *out = jv_none();
    return 0;
}

/* ---- dict methods */

static int m_dict_items(ARGS) {
    jdict *d = self.u.d;
    jlist *l = jlist_new(&r->arena, d->n);
    if (!l) return jr_oom(r);
    for (size_t i = 0; i < d->n; i++) {
        jlist *t = jlist_new(&r->arena, 2);
        if (!t) return jr_oom(r);
        t->is_tuple = true;
        t->items[0] = d->e[i].key;
        t->items[1] = d->e[i].value;
        t->n = 2;
        l->items[l->n++] = jv_list(t);
    }
    *out = jv_list(l);
    return 0;
}
static int m_dict_keys(ARGS) { return jr_iterate(r, self, &out->u.l) ? -1 : (*out = jv_list(out->u.l), 0); }
static int m_dict_values(ARGS) {
    jdict *d = self.u.d;
    jlist *l = jlist_new(&r->arena, d->n);
    if (!l) return jr_oom(r);
    for (size_t i = 0; i < d->n; i++) l->items[l->n++] = d->e[i].value;
    *out = jv_list(l);
    return 0;
}
static int m_dict_get(ARGS) {
    if (nargs < 1) return jr_fail(r, "get expected at least 1 argument, got 0");
    jdict_entry *e = jdict_get(self.u.d, args[0]);
    *out = e ? e->value : nargs > 1 ? args[1] : jv_none();
    return 0;
}
static int m_dict_copy(ARGS) {
    jdict *d = jdict_new(&r->arena);
    if (!d) return jr_oom(r);
    for (size_t i = 0; i < self.u.d->n; i++)
        if (jdict_set(&r->arena, d, self.u.d->e[i].key, self.u.d->e[i].value)) return jr_oom(r);
    *out = jv_dict(d);
    return 0;
}
static int m_dict_update(ARGS) {
    if (nargs > 0) {
        if (args[0].type != JV_DICT) return jr_fail(r, "update() needs a dict");
        for (size_t i = 0; i < args[0].u.d->n; i++)
            if (jdict_set(&r->arena, self.u.d, args[0].u.d->e[i].key, args[0].u.d->e[i].value)) return jr_oom(r);
    }
    for (int k = 0; k < nkw; k++)
        if (jdict_set_str(&r->arena, self.u.d, kwnames[k], strlen(kwnames[k]), kwvals[k])) return jr_oom(r);
    *out = jv_none();
    return 0;
}
static int m_dict_pop(ARGS) {
    if (nargs < 1) return jr_fail(r, "pop expected at least 1 argument, got 0");
    jdict_entry *e = jdict_get(self.u.d, args[0]);
    if (!e) {
        if (nargs > 1) { *out = args[1]; return 0; }
        return jr_fail(r, "KeyError");
    }
    *out = e->value;
    jdict_del(self.u.d, args[0]);
    return 0;
}
static int m_dict_setdefault(ARGS) {
    if (nargs < 1) return jr_fail(r, "setdefault expected at least 1 argument, got 0");
    jdict_entry *e = jdict_get(self.u.d, args[0]);
    if (e) { *out = e->value; return 0; }
    *out = nargs > 1 ? args[1] : jv_none();
    return jdict_set(&r->arena, self.u.d, args[0], *out) ? jr_oom(r) : 0;
}

/* ---- loop.cycle */

static int m_loop_cycle(ARGS) {
    if (nargs < 1) return jr_fail(r, "no items for cycling given");
    *out = args[self.u.loop->index0 % (size_t)nargs];
    return 0;
}

/* ---- method tables */

typedef struct method {
    const char *name;
    jbuiltin_fn fn;
    bool mutates;
} method;

static const method STR_METHODS[] = {
    {"strip", m_strip_both, false}, {"lstrip", m_lstrip, false}, {"rstrip", m_rstrip, false},
    {"split", m_split, false}, {"rsplit", m_rsplit, false}, {"splitlines", m_splitlines, false},
    {"startswith", m_startswith, false}, {"endswith", m_endswith, false}, {"upper", m_upper, false},
    {"lower", m_lower, false}, {"title", m_title, false}, {"capitalize", m_capitalize, false},
    {"replace", m_replace, false}, {"find", m_find, false}, {"rfind", m_rfind, false}, {"index", m_index, false},
    {"rindex", m_rindex, false}, {"count", m_count, false}, {"format", str_format, false}, {"join", m_join, false},
    {"isdigit", m_isdigit, false}, {"isnumeric", m_isdigit, false}, {"isdecimal", m_isdigit, false},
    {"isalpha", m_isalpha, false}, {"isalnum", m_isalnum, false}, {"isspace", m_isspace, false},
    {"islower", m_islower, false}, {"isupper", m_isupper, false}, {"removeprefix", m_removeprefix, false},
    {"removesuffix", m_removesuffix, false}, {NULL, NULL, false},
};
static const method LIST_METHODS[] = {
    {"index", m_list_index, false}, {"count", m_list_count, false}, {"copy", m_list_copy, false},
    {"append", m_list_append, true}, {"extend", m_list_extend, true}, {"pop", m_list_pop, true},
    {"insert", m_list_insert, true}, {"remove", NULL, true}, {"clear", NULL, true}, {"reverse", NULL, true},
    {"sort", NULL, true}, {NULL, NULL, false},
};
static const method DICT_METHODS[] = {
    {"items", m_dict_items, false}, {"keys", m_dict_keys, false}, {"values", m_dict_values, false},
    {"get", m_dict_get, false}, {"copy", m_dict_copy, false}, {"update", m_dict_update, true},
    {"pop", m_dict_pop, true}, {"setdefault", m_dict_setdefault, true}, {"clear", NULL, true},
    {"popitem", NULL, true}, {"fromkeys", NULL, false}, {NULL, NULL, false},
};
static const method LOOP_METHODS[] = {{"cycle", m_loop_cycle, false}, {NULL, NULL, false}};

static int bind(jr *r, const char *name, jbuiltin_fn fn, jv self, jv *out) {
    jfunc *f = jarena_alloc(&r->arena, sizeof(jfunc));
    if (!f) return jr_oom(r);
    f->name = name;
    f->builtin = fn;
    f->self = self;
    out->type = JV_FUNC;
    out->aux = 0;
    out->u.fn = f;
    return 0;
}

/* A mutating method may run on obj: always with allow_mutation; with
 * mutate_own_values only on a list or dict the template made (the context's
 * values, the caller's data, stay immutable; tuples never change). */
static bool mutation_allowed(const jr *r, jv obj) {
    if (r->opt->allow_mutation) return true;
    if (!r->opt->mutate_own_values) return false;
    if (obj.type == JV_LIST) return !obj.u.l->from_context && !obj.u.l->is_tuple && !obj.u.l->is_gen;
    return obj.type == JV_DICT && !obj.u.d->from_context;
}

int jinja_method_lookup(jr *r, jv obj, const char *name, size_t n, jv *out, bool *found) {
    const method *table = obj.type == JV_STRING ? STR_METHODS : obj.type == JV_LIST ? LIST_METHODS
                          : obj.type == JV_DICT ? DICT_METHODS : obj.type == JV_LOOP ? LOOP_METHODS : NULL;
    *found = false;
    if (!table) return 0;
    for (const method *m = table; m->name; m++) {
        if (strlen(m->name) != n || memcmp(m->name, name, n)) continue;
        *found = true;
        if (m->mutates && !mutation_allowed(r, obj)) {
            char msg[160];
            snprintf(msg, sizeof msg, "access to attribute '%s' of '%s' object is unsafe.", m->name, jv_type_name(obj));
            jstr *s = jstr_new(&r->arena, msg, strlen(msg));
            if (!s) return jr_oom(r);
            *out = jv_undef(s->data);
            out->aux = 1;
            return 0;
        }
        if (!m->fn) return jr_fail(r, "'%s' method '%s' is not supported", jv_type_name(obj), m->name);
        return bind(r, m->name, m->fn, obj, out);
    }
    return 0;
}

/* ---- globals */

static int g_range(ARGS) {
    int64_t a = 0, b, st = 1;
    for (int i = 0; i < nargs; i++)
        if (args[i].type != JV_INT && args[i].type != JV_BOOL) return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_type_name(args[i]));
#define IV(k) (args[k].type == JV_INT ? args[k].u.i : (int64_t)args[k].u.b)
    if (nargs == 1) b = IV(0);
    else if (nargs == 2) { a = IV(0); b = IV(1); }
    else if (nargs == 3) { a = IV(0); b = IV(1); st = IV(2); }
    else return jr_fail(r, "range expected 1 to 3 arguments, got %d", nargs);
#undef IV
    if (st == 0) return jr_fail(r, "range() arg 3 must not be zero");
    double count = st > 0 ? ceil(((double)b - (double)a) / (double)st) : ceil(((double)a - (double)b) / (double)-st);
    if (count < 0) count = 0;
    if (count > JINJA_MAX_RANGE)
        return jr_fail_code(r, ERR_LIMIT, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JINJA_MAX_RANGE);
    jlist *l = jlist_new(&r->arena, (size_t)count);
    if (!l) return jr_oom(r);
    for (int64_t v = a; st > 0 ? v < b : v > b; v += st) l->items[l->n++] = jv_int(v);
    *out = jv_list(l);
    return 0;
}

static int g_dict(ARGS) {
    jdict *d = jdict_new(&r->arena);
    if (!d) return jr_oom(r);
    if (nargs > 1) return jr_fail(r, "dict expected at most 1 argument, got %d", nargs);
    if (nargs == 1) {
        if (args[0].type == JV_DICT) {
            for (size_t i = 0; i < args[0].u.d->n; i++)
                if (jdict_set(&r->arena, d, args[0].u.d->e[i].key, args[0].u.d->e[i].value)) return jr_oom(r);
        } else {
            jlist *items;
            if (jr_iterate(r, args[0], &items)) return -1;
            for (size_t i = 0; i < items->n; i++) {
                jv p = items->items[i];
                if (p.type != JV_LIST || p.u.l->n != 2) return jr_fail(r, "dictionary update sequence element #%zu has the wrong length", i);
                if (jdict_set(&r->arena, d, p.u.l->items[0], p.u.l->items[1])) return jr_oom(r);
            }
        }
    }
    for (int k = 0; k < nkw; k++)
        if (jdict_set_str(&r->arena, d, kwnames[k], strlen(kwnames[k]), kwvals[k])) return jr_oom(r);
    *out = jv_dict(d);
    return 0;
}

static int g_namespace(ARGS) {
    if (g_dict(r, self, args, nargs, kwnames, kwvals, nkw, out)) return -1;
    out->type = JV_NAMESPACE;
    return 0;
}

static int g_raise_exception(ARGS) {
    jv m = nargs > 0 ? args[0] : jv_str(&r->arena, "", 0);
    if (jr_to_string(r, m, &m)) return -1;
    return jr_fail(r, "%s", m.u.s->data);
}

static int g_strftime_now(ARGS) {
    if (nargs != 1 || args[0].type != JV_STRING) return jr_fail(r, "strftime_now() takes one format string");
    struct tm tmv;
    if (r->opt->has_now) {
        /* broken-down fields; weekday and day of year computed from the date */
        memset(&tmv, 0, sizeof tmv);
        tmv.tm_year = r->opt->now_year - 1900;
        tmv.tm_mon = r->opt->now_month - 1;
        tmv.tm_mday = r->opt->now_day;
        tmv.tm_hour = r->opt->now_hour;
        tmv.tm_min = r->opt->now_minute;
        tmv.tm_sec = r->opt->now_second;
        struct tm g = tmv;
        time_t tt = timegm(&g);
        struct tm norm;
        if (gmtime_r(&tt, &norm)) { tmv.tm_wday = norm.tm_wday; tmv.tm_yday = norm.tm_yday; }
    } else {
        time_t t = time(NULL);
        localtime_r(&t, &tmv);
    }
    const char *fmt = args[0].u.s->data;
    if (!*fmt) { *out = jv_str(&r->arena, "", 0); return out->u.s ? 0 : jr_oom(r); }
    for (size_t cap = 256; cap <= (1u << 20); cap *= 4) {
        char *buf = jarena_alloc(&r->arena, cap);
        if (!buf) return jr_oom(r);
        size_t n = strftime(buf, cap, fmt, &tmv);
        if (n > 0) { *out = jv_str(&r->arena, buf, n); return out->u.s ? 0 : jr_oom(r); }
    }
    *out = jv_str(&r->arena, "", 0); /* a format that expands to nothing */
    return out->u.s ? 0 : jr_oom(r);
}

int jinja_globals_init(jr *r, jdict *g) {
    static const struct { const char *name; jbuiltin_fn fn; } G[] = {
        {"range", g_range}, {"dict", g_dict}, {"namespace", g_namespace},
        {"raise_exception", g_raise_exception}, {"strftime_now", g_strftime_now},
    };
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++) {
        jv f;
        if (bind(r, G[i].name, G[i].fn, jv_none(), &f)) return -1;
        if (jdict_set_str(&r->arena, g, G[i].name, strlen(G[i].name), f)) return jr_oom(r);
    }
    return 0;
}
