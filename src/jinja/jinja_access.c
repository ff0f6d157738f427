/*
 * jinja_access.c — `a.name` and `a[key]` as Jinja2's sandbox does them:
 * names starting with '_' are never reached, a namespace's attributes, the
 * `loop` variable's fields, then the object's methods (jinja_methods.c),
 * then dict keys; negative indexes and code-point indexing of strings; a
 * missing attribute is an undefined value that carries Jinja2's message.
 */
#include <string.h>

#include "jinja/jinja_internal.h"

/* An undefined value whose message (Jinja2's) is b's text; b is freed. */
static int undef_with_message(jr *r, strbuf *b, jv *out) {
    jstr *m = b->failed ? NULL : jstr_new(&r->arena, b->data, b->len);
    strbuf_free(b);
    if (!m) return jr_oom(r);
    *out = jv_undef(m->data);
    out->aux = 1;
    return 0;
}

static int undef_attr(jr *r, jv obj, const char *name, size_t n, jv *out) {
    strbuf b = STRBUF_INIT;
    const char *tn = obj.type == JV_NONE ? "None" : jv_type_name(obj);
    strbuf_printf(&b, "'%s%s' has no attribute '%.*s'", tn, obj.type == JV_NONE ? "" : " object", (int)n, name);
    return undef_with_message(r, &b, out);
}

static int loop_attr(jr *r, jloop *L, const char *name, size_t n, jv *out, bool *found) {
    *found = true;
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
    if (IS("index")) *out = jv_int((int64_t)L->index0 + 1);
    else if (IS("index0")) *out = jv_int((int64_t)L->index0);
    else if (IS("revindex")) *out = jv_int((int64_t)(L->length - L->index0));
    else if (IS("revindex0")) *out = jv_int((int64_t)(L->length - L->index0 - 1));
    else if (IS("first")) *out = jv_bool(L->index0 == 0);
    else if (IS("last")) *out = jv_bool(L->index0 + 1 == L->length);
    else if (IS("length")) *out = jv_int((int64_t)L->length);
    else if (IS("depth")) *out = jv_int(L->depth);
    else if (IS("depth0")) *out = jv_int(L->depth - 1);
    else if (IS("previtem")) *out = L->index0 > 0 ? L->items->items[L->index0 - 1] : jv_undef("previtem");
    else if (IS("nextitem")) *out = L->index0 + 1 < L->length ? L->items->items[L->index0 + 1] : jv_undef("nextitem");
    else *found = false;
#undef IS
    (void)r;
    return 0;
}

int jr_getattr(jr *r, jv obj, const char *name, size_t n, jv *out) {
    if (obj.type == JV_UNDEFINED) return jr_undefined_error(r, obj);
    if (n && name[0] == '_') return undef_attr(r, obj, name, n, out); /* sandbox: private attributes */
    bool found = false;
    if (obj.type == JV_LOOP) {
        loop_attr(r, obj.u.loop, name, n, out, &found);
        if (found) return 0;
    }
    if (obj.type == JV_NAMESPACE) {
        jdict_entry *e = jdict_get_str(obj.u.d, name, n);
        if (e) { *out = e->value; return 0; }
        return undef_attr(r, obj, name, n, out);
    }
    if (jinja_method_lookup(r, obj, name, n, out, &found)) return -1;
    if (found) return 0;
    if (obj.type == JV_DICT) {
        jdict_entry *e = jdict_get_str(obj.u.d, name, n);
        if (e) { *out = e->value; return 0; }
    }
    return undef_attr(r, obj, name, n, out);
}

static int64_t norm_index(int64_t i, size_t n) { return i < 0 ? i + (int64_t)n : i; }

int jr_getitem(jr *r, jv obj, jv key, jv *out) {
    if (obj.type == JV_UNDEFINED) return jr_undefined_error(r, obj);
    if (obj.type == JV_DICT || obj.type == JV_NAMESPACE) {
        jdict_entry *e = jdict_get(obj.u.d, key);
        if (e) { *out = e->value; return 0; }
    } else if (obj.type == JV_LIST && obj.u.l->is_gen) {
        *out = jv_undef("'generator' object is not subscriptable");
        out->aux = 1;
        return 0;
    } else if ((obj.type == JV_LIST || obj.type == JV_STRING) && (key.type == JV_INT || key.type == JV_BOOL)) {
        int64_t i = key.type == JV_BOOL ? key.u.b : key.u.i;
        if (obj.type == JV_LIST) {
            i = norm_index(i, obj.u.l->n);
            if (i >= 0 && (size_t)i < obj.u.l->n) { *out = obj.u.l->items[i]; return 0; }
        } else {
            const jstr *s = obj.u.s;
            size_t cps = utf8_count(s->data, s->len);
            i = norm_index(i, cps);
            if (i >= 0 && (size_t)i < cps) {
                size_t a = utf8_offset(s->data, s->len, (size_t)i), b = utf8_offset(s->data, s->len, (size_t)i + 1);
                *out = jv_str(&r->arena, s->data + a, b - a);
                return out->u.s ? 0 : jr_oom(r);
            }
        }
    } else if (obj.type == JV_LOOP && key.type == JV_STRING) {
        return jr_getattr(r, obj, key.u.s->data, key.u.s->len, out);
    }
    if (key.type == JV_STRING && obj.type != JV_DICT) return jr_getattr(r, obj, key.u.s->data, key.u.s->len, out);
    if (key.type == JV_STRING) {
        /* a dict without that key: a method of that name, else undefined */
        bool found = false;
        if (key.u.s->len && key.u.s->data[0] != '_' &&
            jinja_method_lookup(r, obj, key.u.s->data, key.u.s->len, out, &found))
            return -1;
        if (found) return 0;
    }
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "'%s object' has no attribute '", jv_type_name(obj));
    jv_append_str(&b, key);
    strbuf_puts(&b, "'");
    return undef_with_message(r, &b, out);
}
