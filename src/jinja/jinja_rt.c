/*
 * jinja_rt.c — the render runtime that the evaluator (jinja_render.c), the
 * filters, the methods and the JSON conversion share: how a render fails
 * ("line N: msg", out of memory versus over the memory limit, undefined
 * values, the loop limit), str() of a value, and what a for loop walks over.
 * It calls nothing above the values (jinja_value.c), so those files depend
 * on it and not on the evaluator.
 */
#include <stdarg.h>
#include <stdio.h>

#include "jinja/jinja_internal.h"

/* The first error of a render wins; later ones are dropped. */
static int fail_v(jr *r, int code, const char *fmt, va_list ap) {
    if (r->err && r->err->code) return -1;
    char msg[LARDER_ERROR_MESSAGE_BYTES];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (r->line > 0) error_set(r->err, code, "line %d: %s", r->line, msg);
    else error_set(r->err, code, "%s", msg);
    if (r->err && !r->err->code) r->err->code = code;
    return -1;
}

int jr_fail_code(jr *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(r, code, fmt, ap);
    va_end(ap);
    return -1;
}

int jr_fail(jr *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(r, ERR_INVALID, fmt, ap);
    va_end(ap);
    return -1;
}

int jr_oom(jr *r) {
    if (r->arena.limit_bytes && r->arena.used_bytes + (1u << 20) > r->arena.limit_bytes)
        return jr_fail_code(r, ERR_LIMIT, "template used more than %zu bytes of memory", r->arena.limit_bytes);
    return jr_fail_code(r, ERR_NOMEM, "out of memory rendering the template");
}

int jr_undefined_error(jr *r, jv u) {
    if (u.aux && u.u.undef_name) return jr_fail(r, "%s", u.u.undef_name);
    if (u.u.undef_name) return jr_fail(r, "'%s' is undefined", u.u.undef_name);
    return jr_fail(r, "value is undefined");
}

int jr_loop_limit(jr *r) {
    return jr_fail_code(r, ERR_LIMIT, "template ran more than %llu loop iterations", (unsigned long long)r->max_loop_iterations);
}

int jr_to_string(jr *r, jv v, jv *out) {
    if (v.type == JV_STRING) { *out = v; return 0; }
    strbuf b = STRBUF_INIT;
    jv_append_str(&b, v);
    if (b.failed) { strbuf_free(&b); return jr_oom(r); }
    *out = jv_str(&r->arena, b.data ? b.data : "", b.len);
    strbuf_free(&b);
    return out->u.s ? 0 : jr_oom(r);
}

int jr_iterate(jr *r, jv v, jlist **out) {
    switch (v.type) {
    case JV_LIST: *out = v.u.l; return 0;
    case JV_UNDEFINED: *out = jlist_new(&r->arena, 0); return *out ? 0 : jr_oom(r);
    case JV_DICT: case JV_NAMESPACE: {
        jlist *l = jlist_new(&r->arena, v.u.d->n);
        if (!l) return jr_oom(r);
        for (size_t i = 0; i < v.u.d->n; i++) l->items[i] = v.u.d->e[i].key;
        l->n = v.u.d->n;
        *out = l;
        return 0;
    }
    case JV_STRING: {
        const jstr *s = v.u.s;
        jlist *l = jlist_new(&r->arena, utf8_count(s->data, s->len));
        if (!l) return jr_oom(r);
        for (size_t i = 0; i < s->len;) {
            size_t k = 1;
            while (i + k < s->len && ((unsigned char)s->data[i + k] & 0xC0) == 0x80) k++;
            jv c = jv_str(&r->arena, s->data + i, k);
            if (!c.u.s) return jr_oom(r);
            l->items[l->n++] = c;
            i += k;
        }
        *out = l;
        return 0;
    }
    default: return jr_fail(r, "'%s' object is not iterable", jv_type_name(v));
    }
}
