/*
 * jinja_render.c — runs the AST: statements write to the output buffer,
 * expressions evaluate to values (Python semantics), with Jinja2's scoping:
 * a for loop's body runs in its own frame (a `set` inside it does not leak
 * out), macros run in a frame under the frame they were defined in, and
 * namespace() objects are the one way to carry state out of a loop.
 *
 * Every bound from jinja.h is checked here: loop iterations, call depth,
 * evaluation nesting, output bytes; the arena enforces memory.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "jinja/jinja_internal.h"

static int out_append(jr *r, const char *s, size_t n) {
    if (r->out->len + n > r->max_output_bytes)
        return jr_fail_code(r, ERR_LIMIT, "template output longer than %zu bytes", r->max_output_bytes);
    if (strbuf_append(r->out, s, n)) return jr_oom(r);
    return 0;
}

/* ---- frames */

static jframe *frame_new(jr *r, jframe *parent) {
    jframe *f = jarena_alloc(&r->arena, sizeof(jframe));
    if (!f) return NULL;
    f->parent = parent;
    f->vars = jdict_new(&r->arena);
    return f->vars ? f : NULL;
}

static jdict_entry *frame_find(jframe *f, const char *name, size_t n) {
    for (; f; f = f->parent) {
        jdict_entry *e = jdict_get_str(f->vars, name, n);
        if (e) return e;
    }
    return NULL;
}

static int frame_set(jr *r, jframe *f, const char *name, size_t n, jv v) {
    jdict_entry *e = jdict_get_str(f->vars, name, n);
    if (e) { e->value = v; return 0; }
    if (jdict_set_str(&r->arena, f->vars, name, n, v)) return jr_oom(r);
    return 0;
}

/* ---- slices */

/* Python slice indices for length n with optional start/stop/step. */
static int slice_indices(jr *r, jv start, jv stop, jv step, size_t n, int64_t *s0, int64_t *s1, int64_t *st) {
    int64_t len = (int64_t)n, k = 1;
    if (step.type != JV_NONE && step.type != JV_UNDEFINED) {
        if (step.type != JV_INT) return jr_fail(r, "slice indices must be integers or None");
        k = step.u.i;
        if (k == 0) return jr_fail(r, "slice step cannot be zero");
    }
    int64_t lo = k > 0 ? 0 : -1, hi = k > 0 ? len : len - 1;
    int64_t a = k > 0 ? lo : hi, b = k > 0 ? hi : lo;
    if (start.type == JV_INT) {
        a = start.u.i < 0 ? start.u.i + len : start.u.i;
        if (a < lo) a = lo;
        if (a > hi) a = hi;
    } else if (start.type != JV_NONE && start.type != JV_UNDEFINED) {
        return jr_fail(r, "slice indices must be integers or None");
    }
    if (stop.type == JV_INT) {
        b = stop.u.i < 0 ? stop.u.i + len : stop.u.i;
        if (b < lo) b = lo;
        if (b > hi) b = hi;
    } else if (stop.type != JV_NONE && stop.type != JV_UNDEFINED) {
        return jr_fail(r, "slice indices must be integers or None");
    }
    *s0 = a;
    *s1 = b;
    *st = k;
    return 0;
}

static int eval_slice(jr *r, const jnode *n, jv *out) {
    jv obj, a = jv_none(), b = jv_none(), c = jv_none();
    if (!n->a) { /* a slice inside a tuple subscript (x[1:2, 3]): no Python object for it here */
        *out = jv_undef("slice objects are not supported");
        out->aux = 1;
        return 0;
    }
    if (jr_eval(r, n->a, &obj)) return -1;
    if ((n->b && jr_eval(r, n->b, &a)) || (n->c && jr_eval(r, n->c, &b)) || (n->d && jr_eval(r, n->d, &c))) return -1;
    if (a.type == JV_BOOL) a = jv_int(a.u.b);
    if (b.type == JV_BOOL) b = jv_int(b.u.b);
    if (obj.type == JV_UNDEFINED) return jr_undefined_error(r, obj);
    if (obj.type == JV_LIST) {
        int64_t s0, s1, st;
        if (slice_indices(r, a, b, c, obj.u.l->n, &s0, &s1, &st)) return -1;
        jlist *l = jlist_new(&r->arena, 0);
        if (!l) return jr_oom(r);
        l->is_tuple = obj.u.l->is_tuple;
        for (int64_t i = s0; st > 0 ? i < s1 : i > s1; i += st)
            if (jlist_push(&r->arena, l, obj.u.l->items[i])) return jr_oom(r);
        *out = jv_list(l);
        return 0;
    }
    if (obj.type == JV_STRING) {
        const jstr *s = obj.u.s;
        size_t cps = utf8_count(s->data, s->len);
        int64_t s0, s1, st;
        if (slice_indices(r, a, b, c, cps, &s0, &s1, &st)) return -1;
        if (st == 1 && cps == s->len) {
            *out = jv_str(&r->arena, s->data + s0, s1 > s0 ? (size_t)(s1 - s0) : 0);
            return out->u.s ? 0 : jr_oom(r);
        }
        strbuf bb = STRBUF_INIT;
        for (int64_t i = s0; st > 0 ? i < s1 : i > s1; i += st) {
            size_t x = utf8_offset(s->data, s->len, (size_t)i), y = utf8_offset(s->data, s->len, (size_t)i + 1);
            strbuf_append(&bb, s->data + x, y - x);
        }
        if (bb.failed) { strbuf_free(&bb); return jr_oom(r); }
        *out = jv_str(&r->arena, bb.data ? bb.data : "", bb.len);
        strbuf_free(&bb);
        return out->u.s ? 0 : jr_oom(r);
    }
    if (obj.type == JV_NONE || obj.type == JV_DICT) { *out = jv_undef(NULL); return 0; }
    return jr_fail(r, "'%s' object is not subscriptable", jv_type_name(obj));
}

/* ---- arithmetic */

static bool numeric(jv v) { return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL; }
static double as_f(jv v) { return v.type == JV_FLOAT ? v.u.f : v.type == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t as_i(jv v) { return v.type == JV_INT ? v.u.i : (int64_t)v.u.b; }

static const char *op_text(int op) {
    static const char *const t[] = {"+", "-", "*", "/", "//", "%", "**"};
    return op >= 0 && op <= JOP_POW ? t[op] : "?";
}

static int repeat(jr *r, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.type == JV_STRING) {
        size_t n = seq.u.s->len;
        if (n && (uint64_t)times > (r->arena.limit_bytes / n)) return jr_fail_code(r, ERR_LIMIT, "string repetition too large");
        jstr *s = jarena_alloc(&r->arena, sizeof(jstr) + n * (size_t)times + 1);
        if (!s) return jr_oom(r);
        for (int64_t i = 0; i < times; i++) memcpy(s->data + (size_t)i * n, seq.u.s->data, n);
        s->len = n * (size_t)times;
        s->data[s->len] = '\0';
        out->type = JV_STRING;
        out->aux = 0;
        out->u.s = s;
        return 0;
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)times > (r->arena.limit_bytes / sizeof(jv) / n)) return jr_fail_code(r, ERR_LIMIT, "list repetition too large");
    jlist *l = jlist_new(&r->arena, n * (size_t)times);
    if (!l) return jr_oom(r);
    for (int64_t i = 0; i < times; i++) memcpy(l->items + (size_t)i * n, seq.u.l->items, n * sizeof(jv));
    l->n = n * (size_t)times;
    l->is_tuple = seq.u.l->is_tuple;
    *out = jv_list(l);
    return 0;
}

static int binop(jr *r, int op, jv a, jv b, jv *out) {
    if (a.type == JV_UNDEFINED) return jr_undefined_error(r, a);
    if (b.type == JV_UNDEFINED) return jr_undefined_error(r, b);
    if (numeric(a) && numeric(b)) {
        bool fl = a.type == JV_FLOAT || b.type == JV_FLOAT;
        if (op == JOP_DIV) {
            double y = as_f(b);
            if (y == 0) return jr_fail(r, "division by zero");
            *out = jv_float(as_f(a) / y);
            return 0;
        }
        if (fl) {
            double x = as_f(a), y = as_f(b), z;
            switch (op) {
            case JOP_ADD: z = x + y; break;
            case JOP_SUB: z = x - y; break;
            case JOP_MUL: z = x * y; break;
            case JOP_FLOORDIV:
                if (y == 0) return jr_fail(r, "float floor division by zero");
                z = floor(x / y);
                break;
            case JOP_MOD:
                if (y == 0) return jr_fail(r, "float modulo");
                z = fmod(x, y);
                if (z != 0 && ((z < 0) != (y < 0))) z += y;
                break;
            default: z = pow(x, y); break;
            }
            *out = jv_float(z);
            return 0;
        }
        int64_t x = as_i(a), y = as_i(b), z = 0;
        bool ovf = false;
        switch (op) {
        case JOP_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
        case JOP_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
        case JOP_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (y == 0) return jr_fail(r, op == JOP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) { ovf = op == JOP_FLOORDIV; z = 0; break; }
            z = op == JOP_FLOORDIV ? x / y : x % y;
            if (op == JOP_FLOORDIV) { if ((x % y != 0) && ((x < 0) != (y < 0))) z--; }
            else if (z != 0 && ((z < 0) != (y < 0))) z += y;
            break;
        default:
            if (y < 0) { *out = jv_float(pow((double)x, (double)y)); return 0; }
            z = 1;
            for (int64_t k = 0; k < y && !ovf; k++) {
                ovf = __builtin_mul_overflow(z, x, &z);
                if (z == 0 || z == 1) break;
                if (z == -1) { z = (y % 2) ? -1 : 1; break; }
            }
            break;
        }
        if (ovf) return jr_fail(r, "integer overflow in '%s'", op_text(op));
        *out = jv_int(z);
        return 0;
    }
    if (op == JOP_ADD && (a.type == JV_STRING || b.type == JV_STRING) && (a.aux == 1 || b.aux == 1) &&
        (a.type == JV_STRING || b.type == JV_STRING)) {
        /* Markup + str escapes the str; the result is Markup */
        if (a.type != JV_STRING || b.type != JV_STRING)
            return jr_fail(r, "unsupported operand type(s) for +: '%s' and '%s'", a.type == JV_STRING ? "Markup" : jv_type_name(a), b.type == JV_STRING ? "Markup" : jv_type_name(b));
        if (jr_html_escape(r, a, &a) || jr_html_escape(r, b, &b)) return -1;
    }
    if (op == JOP_ADD && a.type == JV_STRING && b.type == JV_STRING) {
        bool markup = a.aux == 1 || b.aux == 1;
        size_t n = a.u.s->len + b.u.s->len;
        jstr *s = jarena_alloc(&r->arena, sizeof(jstr) + n + 1);
        if (!s) return jr_oom(r);
        memcpy(s->data, a.u.s->data, a.u.s->len);
        memcpy(s->data + a.u.s->len, b.u.s->data, b.u.s->len);
        s->len = n;
        out->type = JV_STRING;
        out->aux = markup;
        out->u.s = s;
        return 0;
    }
    if (op == JOP_ADD && a.type == JV_LIST && b.type == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple && !a.u.l->is_gen && !b.u.l->is_gen) {
        jlist *l = jlist_new(&r->arena, a.u.l->n + b.u.l->n);
        if (!l) return jr_oom(r);
        memcpy(l->items, a.u.l->items, a.u.l->n * sizeof(jv));
        memcpy(l->items + a.u.l->n, b.u.l->items, b.u.l->n * sizeof(jv));
        l->n = a.u.l->n + b.u.l->n;
        l->is_tuple = a.u.l->is_tuple;
        *out = jv_list(l);
        return 0;
    }
    if (op == JOP_MUL && (a.type == JV_STRING || a.type == JV_LIST) && (b.type == JV_INT || b.type == JV_BOOL))
        return repeat(r, a, as_i(b), out);
    if (op == JOP_MUL && (b.type == JV_STRING || b.type == JV_LIST) && (a.type == JV_INT || a.type == JV_BOOL))
        return repeat(r, b, as_i(a), out);
    if (op == JOP_MOD && a.type == JV_STRING) return jr_percent_format(r, a, b, out);
    return jr_fail(r, "unsupported operand type(s) for %s: '%s' and '%s'", op_text(op), jv_type_name(a), jv_type_name(b));
}

static int contains(jr *r, jv needle, jv hay, bool *out) {
    switch (hay.type) {
    case JV_UNDEFINED: *out = false; return 0;
    case JV_STRING:
        if (needle.type == JV_UNDEFINED) return jr_undefined_error(r, needle);
        if (needle.type != JV_STRING) return jr_fail(r, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        *out = needle.u.s->len == 0 || memmem(hay.u.s->data, hay.u.s->len, needle.u.s->data, needle.u.s->len) != NULL;
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_equal(hay.u.l->items[i], needle)) { *out = true; return 0; }
        *out = false;
        return 0;
    case JV_DICT: case JV_NAMESPACE: *out = jdict_get(hay.u.d, needle) != NULL; return 0;
    default: return jr_fail(r, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int compare(jr *r, int op, jv a, jv b, bool *res) {
    if (op == JOP_EQ) { *res = jv_equal(a, b); return 0; }
    if (op == JOP_NE) { *res = !jv_equal(a, b); return 0; }
    if (op == JOP_IN || op == JOP_NOTIN) {
        if (contains(r, a, b, res)) return -1;
        if (op == JOP_NOTIN) *res = !*res;
        return 0;
    }
    if (a.type == JV_UNDEFINED) return jr_undefined_error(r, a);
    if (b.type == JV_UNDEFINED) return jr_undefined_error(r, b);
    int c;
    if (jv_compare(a, b, &c)) {
        static const char *const names[] = {"<", "<=", ">", ">="};
        return jr_fail(r, "'%s' not supported between instances of '%s' and '%s'", names[op - JOP_LT], jv_type_name(a), jv_type_name(b));
    }
    switch (op) {
    case JOP_LT: *res = c < 0; break;
    case JOP_LE: *res = c <= 0; break;
    case JOP_GT: *res = c > 0; break;
    default: *res = c >= 0; break;
    }
    return 0;
}

/* ---- calls */

typedef struct callargs {
    jv *args;
    int nargs;
    const char **kwnames;
    jv *kwvals;
    int nkw;
} callargs;

static int eval_args(jr *r, const jnode *n, callargs *ca) {
    ca->nargs = n->n_kids;
    ca->nkw = n->n_kw;
    ca->args = jarena_alloc(&r->arena, sizeof(jv) * (size_t)(n->n_kids + 1));
    ca->kwnames = jarena_alloc(&r->arena, sizeof(char *) * (size_t)(n->n_kw + 1));
    ca->kwvals = jarena_alloc(&r->arena, sizeof(jv) * (size_t)(n->n_kw + 1));
    if (!ca->args || !ca->kwnames || !ca->kwvals) return jr_oom(r);
    for (int i = 0; i < n->n_kids; i++)
        if (jr_eval(r, n->kids[i], &ca->args[i])) return -1;
    for (int i = 0; i < n->n_kw; i++) {
        ca->kwnames[i] = n->kw[i]->name;
        if (jr_eval(r, n->kw[i]->a, &ca->kwvals[i])) return -1;
    }
    return 0;
}

static int exec_body(jr *r, const jnode *body, jframe *f);

static int call_macro(jr *r, jfunc *fn, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
                      int nkw, jv *out) {
    const jnode *m = fn->macro;
    if (r->call_depth >= r->max_call_depth)
        return jr_fail_code(r, ERR_LIMIT, "macro calls nested deeper than %d", r->max_call_depth);
    jframe *f = frame_new(r, fn->closure);
    if (!f) return jr_oom(r);
    int n_params = m->n_kids;
    jlist *varargs = jlist_new(&r->arena, 0);
    jdict *kwargs = jdict_new(&r->arena);
    if (!varargs || !kwargs) return jr_oom(r);
    varargs->is_tuple = true;
    for (int i = 0; i < nargs; i++) {
        if (i < n_params) {
            if (frame_set(r, f, m->kids[i]->name, m->kids[i]->name_len, args[i])) return -1;
        } else if (jlist_push(&r->arena, varargs, args[i])) {
            return jr_oom(r);
        }
    }
    for (int k = 0; k < nkw; k++) {
        bool is_param = false;
        for (int i = 0; i < n_params; i++)
            if (!strcmp(m->kids[i]->name, kwnames[k])) {
                if (i < nargs) return jr_fail(r, "macro '%s' got multiple values for argument '%s'", fn->name, kwnames[k]);
                if (frame_set(r, f, m->kids[i]->name, m->kids[i]->name_len, kwvals[k])) return -1;
                is_param = true;
            }
        if (!is_param && jdict_set_str(&r->arena, kwargs, kwnames[k], strlen(kwnames[k]), kwvals[k])) return jr_oom(r);
    }
    /* defaults for parameters not given, evaluated in the macro's frame */
    for (int i = nargs; i < n_params; i++) {
        const jnode *p = m->kids[i];
        if (jdict_get_str(f->vars, p->name, p->name_len)) continue;
        jv v = jv_undef(p->name);
        for (int k = 0; k < m->n_kw; k++)
            if (!strcmp(m->kw[k]->name, p->name)) {
                int line = r->line;
                if (jr_eval(r, m->kw[k]->a, &v)) return -1;
                r->line = line;
            }
        if (frame_set(r, f, p->name, p->name_len, v)) return -1;
    }
    if (frame_set(r, f, "varargs", 7, jv_list(varargs)) || frame_set(r, f, "kwargs", 6, jv_dict(kwargs))) return -1;
    if (fn->caller) {
        jv c;
        c.type = JV_FUNC;
        c.aux = 0;
        c.u.fn = fn->caller;
        if (frame_set(r, f, "caller", 6, c)) return -1;
    }
    strbuf capture = STRBUF_INIT, *saved = r->out;
    int saved_lc = r->loop_control;
    r->out = &capture;
    r->call_depth++;
    int rc = exec_body(r, m->b, f);
    r->call_depth--;
    r->out = saved;
    r->loop_control = saved_lc;
    if (rc) { strbuf_free(&capture); return -1; }
    if (capture.failed) { strbuf_free(&capture); return jr_oom(r); }
    *out = jv_str(&r->arena, capture.data ? capture.data : "", capture.len);
    strbuf_free(&capture);
    return out->u.s ? 0 : jr_oom(r);
}

int jr_call(jr *r, jv callee, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals, int nkw,
            jv *out) {
    if (callee.type == JV_UNDEFINED) return jr_undefined_error(r, callee);
    if (callee.type != JV_FUNC) return jr_fail(r, "'%s' object is not callable", jv_type_name(callee));
    jfunc *fn = callee.u.fn;
    if (fn->macro) return call_macro(r, fn, args, nargs, kwnames, kwvals, nkw, out);
    return fn->builtin(r, fn->self, args, nargs, kwnames, kwvals, nkw, out);
}

/* ---- expressions */

static int eval_inner(jr *r, const jnode *n, jv *out);

int jr_eval(jr *r, const jnode *n, jv *out) {
    if (++r->eval_depth > JINJA_MAX_EVAL_DEPTH) {
        r->eval_depth--;
        return jr_fail_code(r, ERR_LIMIT, "template evaluation nested deeper than %d", JINJA_MAX_EVAL_DEPTH);
    }
    int line = r->line;
    r->line = n->line;
    int rc = eval_inner(r, n, out);
    if (!rc) r->line = line;
    r->eval_depth--;
    return rc;
}

/* f(args): a call of any callable value. */
static int eval_call(jr *r, const jnode *n, jv *out) {
    jv f;
    callargs ca;
    if (jr_eval(r, n->a, &f) || eval_args(r, n, &ca)) return -1;
    r->line = n->line;
    return jr_call(r, f, ca.args, ca.nargs, ca.kwnames, ca.kwvals, ca.nkw, out);
}

/* x | name(args); inside a filter block x is the captured body. */
static int eval_filter(jr *r, const jnode *n, jv *out) {
    jv x;
    callargs ca;
    if (n->a) { if (jr_eval(r, n->a, &x)) return -1; }
    else x = r->block_input;
    if (eval_args(r, n, &ca)) return -1;
    r->line = n->line;
    if (n->op < 0) return jr_fail(r, "No filter named '%s'.", n->name);
    return jinja_apply_filter(r, n->op, x, ca.args, ca.nargs, ca.kwnames, ca.kwvals, ca.nkw, out);
}

/* x is [not] name(args) */
static int eval_test(jr *r, const jnode *n, jv *out) {
    jv x;
    callargs ca;
    if (jr_eval(r, n->a, &x) || eval_args(r, n, &ca)) return -1;
    r->line = n->line;
    if (n->op < 0) return jr_fail(r, "No test named '%s'.", n->name);
    bool res = false;
    if (jinja_apply_test(r, n->op, x, ca.args, ca.nargs, &res)) return -1;
    *out = jv_bool(n->c ? !res : res);
    return 0;
}

/* -x, +x */
static int eval_sign(jr *r, const jnode *n, jv *out) {
    jv x;
    if (jr_eval(r, n->a, &x)) return -1;
    if (x.type == JV_UNDEFINED) return jr_undefined_error(r, x);
    bool neg = n->kind == JN_NEG;
    if (x.type == JV_INT || x.type == JV_BOOL) {
        int64_t i = as_i(x);
        if (neg && i == INT64_MIN) return jr_fail(r, "integer overflow");
        *out = jv_int(neg ? -i : i);
    } else if (x.type == JV_FLOAT) {
        *out = jv_float(neg ? -x.u.f : x.u.f);
    } else {
        return jr_fail(r, "bad operand type for unary %s: '%s'", neg ? "-" : "+", jv_type_name(x));
    }
    return 0;
}

/* a < b <= c ...: chained, each operand evaluated once, stops at the first false. */
static int eval_compare(jr *r, const jnode *n, jv *out) {
    jv a, b;
    if (jr_eval(r, n->a, &a)) return -1;
    for (int i = 0; i < n->n_kids; i++) {
        bool res = false;
        if (jr_eval(r, n->kids[i], &b) || compare(r, n->ops[i], a, b, &res)) return -1;
        if (!res) { *out = jv_bool(false); return 0; }
        a = b;
    }
    *out = jv_bool(true);
    return 0;
}

/* a ~ b ~ ...: str() of each, joined. */
static int eval_concat(jr *r, const jnode *n, jv *out) {
    strbuf s = STRBUF_INIT;
    for (int i = 0; i < n->n_kids; i++) {
        jv x;
        if (jr_eval(r, n->kids[i], &x)) { strbuf_free(&s); return -1; }
        jv_append_str(&s, x);
    }
    if (s.failed) { strbuf_free(&s); return jr_oom(r); }
    *out = jv_str(&r->arena, s.data ? s.data : "", s.len);
    strbuf_free(&s);
    return out->u.s ? 0 : jr_oom(r);
}

/* [a, b] and (a, b) */
static int eval_list(jr *r, const jnode *n, jv *out) {
    jlist *l = jlist_new(&r->arena, (size_t)n->n_kids);
    if (!l) return jr_oom(r);
    l->is_tuple = n->kind == JN_TUPLE;
    for (int i = 0; i < n->n_kids; i++)
        if (jr_eval(r, n->kids[i], &l->items[i])) return -1;
    l->n = (size_t)n->n_kids;
    *out = jv_list(l);
    return 0;
}

/* {k: v, ...}; lists and dicts are not hashable, as in Python. */
static int eval_dict(jr *r, const jnode *n, jv *out) {
    jdict *d = jdict_new(&r->arena);
    if (!d) return jr_oom(r);
    for (int i = 0; i < n->n_kids; i++) {
        jv k, v;
        if (jr_eval(r, n->kids[i], &k) || jr_eval(r, n->kw[i]->a, &v)) return -1;
        if (k.type == JV_LIST && !k.u.l->is_tuple) return jr_fail(r, "unhashable type: 'list'");
        if (k.type == JV_DICT) return jr_fail(r, "unhashable type: 'dict'");
        if (jdict_set(&r->arena, d, k, v)) return jr_oom(r);
    }
    *out = jv_dict(d);
    return 0;
}

static int eval_inner(jr *r, const jnode *n, jv *out) {
    jv a, b;
    switch (n->kind) {
    case JN_LIT: *out = n->lit; return 0;
    case JN_NAME: {
        /* scopes innermost first; a frame chain ends at the globals */
        jdict_entry *e = frame_find(r->frame, n->name, n->name_len);
        *out = e ? e->value : jv_undef(n->name);
        return 0;
    }
    case JN_ATTR:
        if (jr_eval(r, n->a, &a)) return -1;
        return jr_getattr(r, a, n->name, n->name_len, out);
    case JN_ITEM:
        if (jr_eval(r, n->a, &a) || jr_eval(r, n->b, &b)) return -1;
        return jr_getitem(r, a, b, out);
    case JN_SLICE: return eval_slice(r, n, out);
    case JN_CALL: return eval_call(r, n, out);
    case JN_FILTER: return eval_filter(r, n, out);
    case JN_TEST: return eval_test(r, n, out);
    case JN_NEG: case JN_POS: return eval_sign(r, n, out);
    case JN_NOT:
        if (jr_eval(r, n->a, &a)) return -1;
        *out = jv_bool(!jv_truthy(a));
        return 0;
    case JN_AND: case JN_OR: /* the deciding operand itself, as Python */
        if (jr_eval(r, n->a, &a)) return -1;
        if (jv_truthy(a) == (n->kind == JN_OR)) { *out = a; return 0; }
        return jr_eval(r, n->b, out);
    case JN_BINOP:
        if (jr_eval(r, n->a, &a) || jr_eval(r, n->b, &b)) return -1;
        r->line = n->line;
        return binop(r, n->op, a, b, out);
    case JN_COMPARE: return eval_compare(r, n, out);
    case JN_CONCAT: return eval_concat(r, n, out);
    case JN_COND:
        if (jr_eval(r, n->a, &a)) return -1;
        if (jv_truthy(a)) return jr_eval(r, n->b, out);
        if (n->c) return jr_eval(r, n->c, out);
        *out = jv_undef(NULL);
        return 0;
    case JN_LIST: case JN_TUPLE: return eval_list(r, n, out);
    case JN_DICT: return eval_dict(r, n, out);
    default: return jr_fail(r, "internal error: node %d is not an expression", (int)n->kind);
    }
}

/* ---- statements */

static int assign(jr *r, jframe *f, const jnode *target, jv v) {
    if (target->kind == JN_NAME) return frame_set(r, f, target->name, target->name_len, v);
    /* ns.attr */
    jdict_entry *e = frame_find(f, target->a->name, target->a->name_len);
    if (!e || e->value.type != JV_NAMESPACE)
        return jr_fail(r, "cannot assign attribute on non-namespace object");
    if (jdict_set_str(&r->arena, e->value.u.d, target->name, target->name_len, v)) return jr_oom(r);
    return 0;
}

static int assign_targets(jr *r, jframe *f, jnode *const *targets, int n, jv v) {
    if (n == 1) return assign(r, f, targets[0], v);
    jlist *items;
    if (v.type == JV_LIST) items = v.u.l;
    else if (jr_iterate(r, v, &items)) return -1;
    if (items->n != (size_t)n)
        return items->n > (size_t)n ? jr_fail(r, "too many values to unpack (expected %d)", n)
                                    : jr_fail(r, "not enough values to unpack (expected %d, got %zu)", n, items->n);
    for (int i = 0; i < n; i++)
        if (assign(r, f, targets[i], items->items[i])) return -1;
    return 0;
}

static int exec_node(jr *r, const jnode *n, jframe *f);

static int exec_body(jr *r, const jnode *body, jframe *f) {
    jframe *saved = r->frame;
    r->frame = f;
    int rc = 0;
    for (int i = 0; i < body->n_kids && !rc; i++) {
        rc = exec_node(r, body->kids[i], f);
        if (r->loop_control) break;
    }
    r->frame = saved;
    return rc;
}

static int exec_for(jr *r, const jnode *n, jframe *f) {
    jv it;
    if (jr_eval(r, n->a, &it)) return -1;
    jlist *items;
    if (jr_iterate(r, it, &items)) return -1;
    jframe *lf = frame_new(r, f);
    if (!lf) return jr_oom(r);
    size_t count = items->n;
    jframe *saved = r->frame;
    r->frame = lf;
    if (n->d) { /* loop filter: evaluated with the target bound */
        jlist *kept = jlist_new(&r->arena, count);
        if (!kept) { r->frame = saved; return jr_oom(r); }
        for (size_t i = 0; i < count; i++) {
            if (++r->loop_iterations > r->max_loop_iterations) { r->frame = saved; return jr_loop_limit(r); }
            jv c;
            if (assign_targets(r, lf, n->kids, n->n_kids, items->items[i]) || jr_eval(r, n->d, &c)) { r->frame = saved; return -1; }
            if (jv_truthy(c)) kept->items[kept->n++] = items->items[i];
        }
        items = kept;
        count = kept->n;
    }
    r->frame = saved;
    jloop *L = jarena_alloc(&r->arena, sizeof(jloop));
    if (!L) return jr_oom(r);
    L->items = items;
    L->length = count;
    L->depth = 1;
    jv lv;
    lv.type = JV_LOOP;
    lv.aux = 0;
    lv.u.loop = L;
    /* the loop variable of an enclosing loop is visible as loop only until rebound */
    if (frame_set(r, lf, "loop", 4, lv)) return -1;
    for (size_t i = 0; i < count; i++) {
        if (++r->loop_iterations > r->max_loop_iterations) return jr_loop_limit(r);
        L->index0 = i;
        if (assign_targets(r, lf, n->kids, n->n_kids, items->items[i])) return -1;
        if (exec_body(r, n->b, lf)) return -1;
        if (r->loop_control == 1) { r->loop_control = 0; break; }
        r->loop_control = 0;
    }
    if (count == 0 && n->c) return exec_body(r, n->c, f);
    return 0;
}

static int capture_body(jr *r, const jnode *body, jframe *f, jv *out) {
    strbuf capture = STRBUF_INIT, *saved = r->out;
    r->out = &capture;
    int rc = exec_body(r, body, f);
    r->out = saved;
    if (rc) { strbuf_free(&capture); return -1; }
    if (capture.failed) { strbuf_free(&capture); return jr_oom(r); }
    *out = jv_str(&r->arena, capture.data ? capture.data : "", capture.len);
    strbuf_free(&capture);
    return out->u.s ? 0 : jr_oom(r);
}

static int apply_chain(jr *r, const jnode *chain, jv in, jv *out) {
    jv saved = r->block_input;
    r->block_input = in;
    int rc = jr_eval(r, chain, out);
    r->block_input = saved;
    return rc;
}

static int exec_node(jr *r, const jnode *n, jframe *f) {
    r->line = n->line;
    jv v;
    switch (n->kind) {
    case JN_TEXT: return out_append(r, n->lit.u.s->data, n->lit.u.s->len);
    case JN_EMIT:
        if (jr_eval(r, n->a, &v)) return -1;
        if (v.type == JV_STRING) return out_append(r, v.u.s->data, v.u.s->len);
        if (v.type == JV_UNDEFINED) return 0;
        if (jr_to_string(r, v, &v)) return -1;
        return out_append(r, v.u.s->data, v.u.s->len);
    case JN_IF:
        if (jr_eval(r, n->a, &v)) return -1;
        if (jv_truthy(v)) return exec_body(r, n->b, f);
        if (!n->c) return 0;
        if (n->c->kind == JN_IF) return exec_node(r, n->c, f);
        return exec_body(r, n->c, f);
    case JN_FOR: {
        if (++r->eval_depth > JINJA_MAX_EVAL_DEPTH) { r->eval_depth--; return jr_fail_code(r, ERR_LIMIT, "template evaluation nested deeper than %d", JINJA_MAX_EVAL_DEPTH); }
        int rc = exec_for(r, n, f);
        r->eval_depth--;
        return rc;
    }
    case JN_SET:
        if (jr_eval(r, n->a, &v)) return -1;
        return assign_targets(r, f, n->kids, n->n_kids, v);
    case JN_SETBLOCK:
        if (capture_body(r, n->b, f, &v)) return -1;
        if (n->d && apply_chain(r, n->d, v, &v)) return -1;
        return assign(r, f, n->kids[0], v);
    case JN_MACRO: {
        jfunc *fn = jarena_alloc(&r->arena, sizeof(jfunc));
        if (!fn) return jr_oom(r);
        fn->name = n->name;
        fn->macro = n;
        fn->closure = f;
        v.type = JV_FUNC;
        v.aux = 0;
        v.u.fn = fn;
        return frame_set(r, f, n->name, n->name_len, v);
    }
    case JN_CALLBLOCK: {
        jfunc *caller = jarena_alloc(&r->arena, sizeof(jfunc));
        if (!caller) return jr_oom(r);
        caller->name = "caller";
        caller->macro = n;
        caller->closure = f;
        jv callee;
        callargs ca;
        if (jr_eval(r, n->a->a, &callee) || eval_args(r, n->a, &ca)) return -1;
        if (callee.type != JV_FUNC || !callee.u.fn->macro) return jr_fail(r, "{%% call %%} needs a macro");
        jfunc *with = jarena_alloc(&r->arena, sizeof(jfunc));
        if (!with) return jr_oom(r);
        *with = *callee.u.fn;
        with->caller = caller;
        callee.u.fn = with;
        if (jr_call(r, callee, ca.args, ca.nargs, ca.kwnames, ca.kwvals, ca.nkw, &v)) return -1;
        return out_append(r, v.u.s->data, v.u.s->len);
    }
    case JN_FILTERBLOCK:
        if (capture_body(r, n->b, f, &v) || apply_chain(r, n->d, v, &v)) return -1;
        if (jr_to_string(r, v, &v)) return -1;
        return out_append(r, v.u.s->data, v.u.s->len);
    case JN_SCOPE: {
        jframe *sf = frame_new(r, f);
        if (!sf) return jr_oom(r);
        return exec_body(r, n->b, sf);
    }
    case JN_BREAK: r->loop_control = 1; return 0;
    case JN_CONTINUE: r->loop_control = 2; return 0;
    case JN_BODY: return exec_body(r, n, f);
    default: return jr_fail(r, "internal error: node %d is not a statement", (int)n->kind);
    }
}

/* ---- entry points */

jinja_template *jinja_template_parse(const char *src, size_t len, larder_error *err) {
    if (len > JINJA_MAX_TEMPLATE_BYTES) {
        error_set(err, ERR_LIMIT, "template is %zu bytes, more than the %u allowed", len, (unsigned)JINJA_MAX_TEMPLATE_BYTES);
        return NULL;
    }
    size_t valid = utf8_valid_prefix(src, len);
    if (valid != len) {
        int line = 1;
        for (size_t i = 0; i < valid; i++) line += src[i] == '\n';
        error_set(err, ERR_FORMAT, "line %d: template is not valid UTF-8 (byte %zu)", line, valid);
        return NULL;
    }
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->root = jinja_parse_tree(&t->arena, src, len, err);
    if (!t->root) {
        jinja_template_free(t);
        return NULL;
    }
    return t;
}

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    jarena_free_all(&t->arena);
    free(t);
}

/* The render shared by both entry points: context from cJSON or JSON text. */
static char *render_common(const jinja_template *t, const cJSON *context, const char *json_text, size_t json_len,
                           const jinja_render_options *opt, size_t *len_bytes, larder_error *err) {
    static const jinja_render_options defaults = {0};
    jr r;
    memset(&r, 0, sizeof r);
    r.opt = opt ? opt : &defaults;
    const jinja_limits *lim = r.opt->limits;
    r.arena.limit_bytes = lim && lim->max_memory_bytes ? lim->max_memory_bytes : JINJA_MAX_MEMORY_BYTES;
    r.max_output_bytes = lim && lim->max_output_bytes ? lim->max_output_bytes : JINJA_MAX_OUTPUT_BYTES;
    r.max_loop_iterations = lim && lim->max_loop_iterations ? lim->max_loop_iterations : JINJA_MAX_LOOP_ITERATIONS;
    r.max_call_depth = lim && lim->max_call_depth > 0 ? lim->max_call_depth : JINJA_MAX_CALL_DEPTH;
    if (r.max_call_depth > JINJA_MAX_CALL_DEPTH) r.max_call_depth = JINJA_MAX_CALL_DEPTH;
    r.err = err;
    if (err) error_clear(err);
    strbuf out = STRBUF_INIT;
    r.out = &out;
    char *result = NULL;
    jframe *globals = frame_new(&r, NULL), *root = globals ? frame_new(&r, globals) : NULL;
    if (!root) { jr_oom(&r); goto done; }
    r.globals = globals;
    if (jinja_globals_init(&r, globals->vars)) goto done;
    if (context) {
        if (!cJSON_IsObject(context)) { error_set(err, ERR_INVALID, "the template context must be a JSON object"); goto done; }
        for (const cJSON *c = context->child; c; c = c->next) {
            jv v;
            if (!c->string) continue;
            if (jinja_from_json(&r, c, &v)) goto done;
            if (frame_set(&r, root, c->string, strlen(c->string), v)) goto done;
        }
    } else if (json_text) {
        jv ctx;
        if (jinja_from_json_text(&r, json_text, json_len, &ctx)) goto done;
        if (ctx.type != JV_DICT) { error_set(err, ERR_INVALID, "the template context must be a JSON object"); goto done; }
        for (size_t i = 0; i < ctx.u.d->n; i++)
            if (ctx.u.d->e[i].key.type == JV_STRING &&
                frame_set(&r, root, ctx.u.d->e[i].key.u.s->data, ctx.u.d->e[i].key.u.s->len, ctx.u.d->e[i].value))
                goto done;
    }
    r.line = 0;
    if (exec_body(&r, t->root, root)) goto done;
    if (out.failed) { jr_oom(&r); goto done; }
    if (len_bytes) *len_bytes = out.len;
    result = strbuf_take(&out);
    if (!result) jr_oom(&r);
done:
    if (!result && err && !err->code) error_set(err, ERR_INVALID, "template render failed");
    strbuf_free(&out);
    jarena_free_all(&r.arena);
    return result;
}

char *jinja_render_json(const jinja_template *t, const cJSON *context, const jinja_render_options *opt,
                        size_t *len_bytes, larder_error *err) {
    return render_common(t, context, NULL, 0, opt, len_bytes, err);
}

char *jinja_render_json_text(const jinja_template *t, const char *json, size_t json_len,
                             const jinja_render_options *opt, size_t *len_bytes, larder_error *err) {
    return render_common(t, NULL, json ? json : "{}", json ? json_len : 2, opt, len_bytes, err);
}

int jinja_options_set_now(jinja_render_options *opt, const char *s, larder_error *err) {
    int Y, M, D, h = 0, m = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &n) != 3 || n != 10) goto bad;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &k) != 2 || k != 5) goto bad;
        p += 1 + k;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &k) != 1 || k != 2) goto bad;
            p += 3;
            if (*p == '.') { p++; while (*p >= '0' && *p <= '9') p++; }
        }
        if (*p == 'Z') p++;
        else if ((*p == '+' || *p == '-') && strlen(p) >= 3) p += strlen(p); /* offset ignored: the time as written */
    }
    if (*p) goto bad;
    if (Y < 1 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) goto bad;
    opt->has_now = true;
    opt->now_year = Y;
    opt->now_month = M;
    opt->now_day = D;
    opt->now_hour = h;
    opt->now_minute = m;
    opt->now_second = sec;
    return 0;
bad:
    return error_set(err, ERR_INVALID, "'%s' is not an ISO-8601 date-time (YYYY-MM-DD[THH:MM[:SS]])", s);
}
