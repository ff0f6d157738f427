/*
 * jinja_value.c — Jinja values with Python semantics: the arena they live in,
 * strings, lists, insertion-ordered dicts (hash-indexed once they grow),
 * truthiness, ==, ordering, and str()/repr() as Python prints them
 * ("{'a': 1, 'b': [True, None]}", 1.0 -> "1.0").
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja_internal.h"

/* ---- arena: chunks of at least 64 KiB, bump allocation */

struct jarena_chunk {
    jarena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define JARENA_CHUNK_BYTES (64u << 10)

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit_bytes && (n > a->limit_bytes || a->used_bytes > a->limit_bytes - n)) return NULL;
    jarena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > JARENA_CHUNK_BYTES ? n : JARENA_CHUNK_BYTES;
        c = malloc(sizeof(jarena_chunk) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        /* A big one-off block goes behind the current chunk so the current
         * chunk keeps serving small allocations. */
        if (a->head && n > JARENA_CHUNK_BYTES) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_bytes += n;
    memset(p, 0, n);
    return p;
}

void jarena_free_all(jarena *a) {
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

/* ---- strings */

jstr *jstr_new(jarena *a, const char *s, size_t n) {
    if (n > SIZE_MAX - sizeof(jstr) - 1) return NULL;
    jstr *j = jarena_alloc(a, sizeof(jstr) + n + 1);
    if (!j) return NULL;
    j->len = n;
    if (n) memcpy(j->data, s, n);
    j->data[n] = '\0';
    return j;
}

jv jv_str(jarena *a, const char *s, size_t n) {
    jv v;
    v.type = JV_STRING;
    v.aux = 0;
    v.u.s = jstr_new(a, s, n);
    return v;
}

size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

size_t utf8_offset(const char *s, size_t n, size_t cp) {
    size_t i = 0;
    while (i < n && cp > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        cp--;
    }
    return i;
}

/* ---- lists */

jlist *jlist_new(jarena *a, size_t cap) {
    jlist *l = jarena_alloc(a, sizeof(jlist));
    if (!l) return NULL;
    if (cap == 0) cap = 1; /* items is never NULL (memcpy of zero items stays defined) */
    if (cap > SIZE_MAX / sizeof(jv)) return NULL;
    l->items = jarena_alloc(a, cap * sizeof(jv));
    if (!l->items) return NULL;
    l->cap = cap;
    return l;
}

int jlist_push(jarena *a, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv)) return -1;
        jv *items = jarena_alloc(a, cap * sizeof(jv));
        if (!items) return -1;
        if (l->n) memcpy(items, l->items, l->n * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return 0;
}

/* ---- dicts: entries in insertion order; a hash index over them past 8 entries */

#define JDICT_LINEAR_MAX 8

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_key(jv k) {
    switch (k.type) {
    case JV_STRING: return hash_bytes(k.u.s->data, k.u.s->len);
    case JV_BOOL: return (uint64_t)k.u.b * 0x9E3779B97F4A7C15ull;
    case JV_INT: return (uint64_t)k.u.i * 0x9E3779B97F4A7C15ull;
    case JV_FLOAT:
        if (k.u.f == floor(k.u.f) && fabs(k.u.f) < 9e18) return (uint64_t)(int64_t)k.u.f * 0x9E3779B97F4A7C15ull;
        return 7;
    default: return 0;
    }
}

jdict *jdict_new(jarena *a) { return jarena_alloc(a, sizeof(jdict)); }

static int dict_reindex(jarena *a, jdict *d, size_t slots) {
    int32_t *idx = jarena_alloc(a, slots * sizeof(int32_t));
    if (!idx) return -1;
    memset(idx, 0xFF, slots * sizeof(int32_t));
    for (size_t i = 0; i < d->n; i++) {
        size_t s = hash_key(d->e[i].key) & (slots - 1);
        while (idx[s] >= 0) s = (s + 1) & (slots - 1);
        idx[s] = (int32_t)i;
    }
    d->index = idx;
    d->index_cap = slots;
    return 0;
}

jdict_entry *jdict_get(const jdict *d, jv key) {
    if (!d) return NULL;
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++)
            if (jv_equal(d->e[i].key, key)) return &d->e[i];
        return NULL;
    }
    size_t s = hash_key(key) & (d->index_cap - 1);
    while (d->index[s] >= 0) {
        jdict_entry *e = &d->e[d->index[s]];
        if (jv_equal(e->key, key)) return e;
        s = (s + 1) & (d->index_cap - 1);
    }
    return NULL;
}

jdict_entry *jdict_get_str(const jdict *d, const char *key, size_t n) {
    if (!d) return NULL;
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++) {
            const jdict_entry *e = &d->e[i];
            if (e->key.type == JV_STRING && e->key.u.s->len == n && !memcmp(e->key.u.s->data, key, n))
                return &d->e[i];
        }
        return NULL;
    }
    size_t s = hash_bytes(key, n) & (d->index_cap - 1);
    while (d->index[s] >= 0) {
        jdict_entry *e = &d->e[d->index[s]];
        if (e->key.type == JV_STRING && e->key.u.s->len == n && !memcmp(e->key.u.s->data, key, n)) return e;
        s = (s + 1) & (d->index_cap - 1);
    }
    return NULL;
}

int jdict_set(jarena *a, jdict *d, jv key, jv value) {
    jdict_entry *e = jdict_get(d, key);
    if (e) {
        e->value = value;
        return 0;
    }
    if (d->n >= INT32_MAX - 1) return -1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jdict_entry *ne = jarena_alloc(a, cap * sizeof(jdict_entry));
        if (!ne) return -1;
        if (d->n) memcpy(ne, d->e, d->n * sizeof(jdict_entry));
        d->e = ne;
        d->cap = cap;
    }
    d->e[d->n].key = key;
    d->e[d->n].key_str = key.type == JV_STRING ? key.u.s : NULL;
    d->e[d->n].value = value;
    d->n++;
    if (d->n > JDICT_LINEAR_MAX) {
        if (!d->index || d->n * 2 > d->index_cap) {
            size_t slots = 32;
            while (slots < d->n * 4) slots *= 2;
            return dict_reindex(a, d, slots);
        }
        size_t s = hash_key(key) & (d->index_cap - 1);
        while (d->index[s] >= 0) s = (s + 1) & (d->index_cap - 1);
        d->index[s] = (int32_t)(d->n - 1);
    }
    return 0;
}

int jdict_set_str(jarena *a, jdict *d, const char *key, size_t n, jv value) {
    jv k = jv_str(a, key, n);
    if (!k.u.s) return -1;
    return jdict_set(a, d, k, value);
}

int jdict_del(jdict *d, jv key) {
    jdict_entry *e = jdict_get(d, key);
    if (!e) return 0;
    size_t i = (size_t)(e - d->e);
    memmove(&d->e[i], &d->e[i + 1], (d->n - i - 1) * sizeof(jdict_entry));
    d->n--;
    if (d->index) {
        /* rebuild in place (same slot count) */
        memset(d->index, 0xFF, d->index_cap * sizeof(int32_t));
        for (size_t k = 0; k < d->n; k++) {
            size_t s = hash_key(d->e[k].key) & (d->index_cap - 1);
            while (d->index[s] >= 0) s = (s + 1) & (d->index_cap - 1);
            d->index[s] = (int32_t)k;
        }
    }
    return 1;
}

/* ---- truthiness, equality, ordering */

bool jv_truthy(jv v) {
    switch (v.type) {
    case JV_UNDEFINED: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STRING: return v.u.s->len != 0;
    case JV_LIST: return v.u.l->is_gen || v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool is_number(jv v) { return v.type == JV_BOOL || v.type == JV_INT || v.type == JV_FLOAT; }
static double num_f(jv v) { return v.type == JV_FLOAT ? v.u.f : v.type == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t num_i(jv v) { return v.type == JV_INT ? v.u.i : (int64_t)v.u.b; }

static bool equal_depth(jv a, jv b, int depth);

bool jv_equal(jv a, jv b) { return equal_depth(a, b, 0); }

/* Values nest at most JINJA_MAX_VALUE_DEPTH deep here (a list that contains
 * itself, possible with allow_mutation, compares unequal past that). */
static bool equal_depth(jv a, jv b, int depth) {
    if (depth > JINJA_MAX_VALUE_DEPTH) return false;
    if (is_number(a) && is_number(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.type != b.type) return false;
    switch (a.type) {
    case JV_UNDEFINED: case JV_NONE: return true;
    case JV_STRING: return a.u.s->len == b.u.s->len && !memcmp(a.u.s->data, b.u.s->data, a.u.s->len);
    case JV_LIST:
        if (a.u.l->is_tuple != b.u.l->is_tuple || a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_depth(a.u.l->items[i], b.u.l->items[i], depth + 1)) return false;
        return true;
    case JV_DICT:
    case JV_NAMESPACE:
        if (a.type == JV_NAMESPACE) return a.u.d == b.u.d;
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jdict_entry *e = jdict_get(b.u.d, a.u.d->e[i].key);
            if (!e || !equal_depth(a.u.d->e[i].value, e->value, depth + 1)) return false;
        }
        return true;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

static int compare_depth(jv a, jv b, int *cmp, int depth);

int jv_compare(jv a, jv b, int *cmp) { return compare_depth(a, b, cmp, 0); }

static int compare_depth(jv a, jv b, int *cmp, int depth) {
    if (depth > JINJA_MAX_VALUE_DEPTH) return -1;
    if (is_number(a) && is_number(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        } else {
            int64_t x = num_i(a), y = num_i(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        }
        return 0;
    }
    if (a.type == JV_STRING && b.type == JV_STRING) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->data, b.u.s->data, n);
        if (c == 0) c = a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len ? 1 : 0;
        *cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.l->items[i], b.u.l->items[i])) continue;
            return compare_depth(a.u.l->items[i], b.u.l->items[i], cmp, depth + 1);
        }
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
        return 0;
    }
    return -1;
}

const char *jv_type_name(jv v) {
    switch (v.type) {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_LIST: return v.u.l->is_gen ? "generator" : v.u.l->is_tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NAMESPACE: return "Namespace";
    case JV_FUNC: return v.u.fn->macro ? "Macro" : "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

/* ---- printing */

void jv_format_float(double f, char *buf, size_t cap) {
    if (isnan(f)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(f)) { snprintf(buf, cap, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { snprintf(buf, cap, signbit(f) ? "-0.0" : "0.0"); return; }
    /* shortest digits that round-trip */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    if (prec > 17) prec = 17;
    /* tmp = [-]d.ddde[+-]XX : collect digits and exponent */
    char digits[24];
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-') { neg = 1; p++; }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++) out[o++] = '0';
        for (int i = 0; i < nd; i++) out[o++] = digits[i];
        out[o] = '\0';
    } else {
        for (int i = 0; i <= exp10; i++) out[o++] = i < nd ? digits[i] : '0';
        out[o++] = '.';
        if (nd > exp10 + 1)
            for (int i = exp10 + 1; i < nd; i++) out[o++] = digits[i];
        else
            out[o++] = '0';
        out[o] = '\0';
    }
    snprintf(buf, cap, "%s", out);
}

/* Python repr of a str: single quotes unless it holds ' and no ". */
static int append_str_repr(strbuf *b, const jstr *s) {
    bool has_sq = memchr(s->data, '\'', s->len) != NULL, has_dq = memchr(s->data, '"', s->len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    strbuf_append(b, &q, 1);
    size_t run = 0;
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->data[i];
        const char *esc = NULL;
        char hex[8];
        if (c == '\\') esc = "\\\\";
        else if (c == (unsigned char)q) esc = q == '\'' ? "\\'" : "\\\"";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7f) { snprintf(hex, sizeof hex, "\\x%02x", c); esc = hex; }
        else if (c == 0xC2 && i + 1 < s->len && (unsigned char)s->data[i + 1] >= 0x80 &&
                 (unsigned char)s->data[i + 1] <= 0xA0) {
            /* U+0080..U+00A0 are not printable in Python */
            strbuf_append(b, s->data + i - run, run);
            run = 0;
            snprintf(hex, sizeof hex, "\\x%02x", (unsigned char)s->data[i + 1]);
            strbuf_puts(b, hex);
            i++;
            continue;
        }
        if (esc) {
            strbuf_append(b, s->data + i - run, run);
            run = 0;
            strbuf_puts(b, esc);
        } else {
            run++;
        }
    }
    strbuf_append(b, s->data + s->len - run, run);
    return strbuf_append(b, &q, 1);
}

static int append_value(strbuf *b, jv v, bool repr, int depth);

static int append_dict(strbuf *b, const jdict *d, int depth) {
    strbuf_puts(b, "{");
    for (size_t i = 0; i < d->n; i++) {
        if (i) strbuf_puts(b, ", ");
        append_value(b, d->e[i].key, true, depth + 1);
        strbuf_puts(b, ": ");
        append_value(b, d->e[i].value, true, depth + 1);
    }
    return strbuf_puts(b, "}");
}

static int append_value(strbuf *b, jv v, bool repr, int depth) {
    char num[64];
    if (depth > JINJA_MAX_VALUE_DEPTH) return strbuf_puts(b, "...");
    switch (v.type) {
    case JV_UNDEFINED: return repr ? strbuf_puts(b, "Undefined") : 0;
    case JV_NONE: return strbuf_puts(b, "None");
    case JV_BOOL: return strbuf_puts(b, v.u.b ? "True" : "False");
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return strbuf_puts(b, num);
    case JV_FLOAT: jv_format_float(v.u.f, num, sizeof num); return strbuf_puts(b, num);
    case JV_STRING: return repr ? append_str_repr(b, v.u.s) : strbuf_append(b, v.u.s->data, v.u.s->len);
    case JV_LIST:
        if (v.u.l->is_gen) return strbuf_puts(b, "<generator object>");
        strbuf_puts(b, v.u.l->is_tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) strbuf_puts(b, ", ");
            append_value(b, v.u.l->items[i], true, depth + 1);
        }
        if (v.u.l->is_tuple && v.u.l->n == 1) strbuf_puts(b, ",");
        return strbuf_puts(b, v.u.l->is_tuple ? ")" : "]");
    case JV_DICT: return append_dict(b, v.u.d, depth);
    case JV_NAMESPACE:
        strbuf_puts(b, "<Namespace ");
        append_dict(b, v.u.d, depth);
        return strbuf_puts(b, ">");
    case JV_FUNC:
        if (v.u.fn->macro) return strbuf_printf(b, "<Macro '%s'>", v.u.fn->name);
        return strbuf_printf(b, "<built-in method %s>", v.u.fn->name);
    case JV_LOOP: return strbuf_puts(b, "<LoopContext>");
    }
    return 0;
}

int jv_append_str(strbuf *b, jv v) { return append_value(b, v, false, 0); }
int jv_append_repr(strbuf *b, jv v) { return append_value(b, v, true, 0); }
