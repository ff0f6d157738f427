/*
 * jinja_parser.c — tokens to AST by recursive descent, following Jinja2's
 * grammar and operator precedence (lowest first):
 *   ternary `a if c else b` < or < and < not < comparisons/in/not in
 *   < + - < ~ < * / // % < ** < unary - + < postfix .x [i] [a:b:c] (args)
 *   and filters `|f(args)` / tests `is [not] t args`.
 * Nesting depth is bounded (JINJA_MAX_PARSE_DEPTH) so hostile input cannot
 * exhaust the stack. Unknown filters/tests are syntax errors outside `if`
 * bodies and runtime errors inside them, like Jinja2 3.x.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja_internal.h"
#include "jinja/jinja_lexer.h"

typedef struct parser {
    jarena *a;
    jtok *t;
    size_t n, i;
    int depth;
    int cond_depth; /* inside an if body / ternary: unknown filters fail at runtime */
    larder_error *err;
} parser;

static jtok *cur(parser *p) { return &p->t[p->i]; }
static jtok *peek(parser *p, size_t k) { return p->i + k < p->n ? &p->t[p->i + k] : &p->t[p->n - 1]; }
static void advance(parser *p) { if (p->i + 1 < p->n) p->i++; }

static bool is_op(const jtok *t, const char *op) { return t->type == JT_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n); }
static bool is_name(const jtok *t, const char *nm) { return t->type == JT_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n); }

static const char *tok_desc(const jtok *t, char *buf, size_t cap) {
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_BLOCK_END: return "end of statement block";
    case JT_VAR_END: return "end of print statement";
    case JT_STRING: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "float";
    default: snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s); return buf;
    }
}

static void *fail_at(parser *p, const char *fmt, const char *arg) {
    if (p->err && p->err->code) return NULL;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg);
    error_set(p->err, ERR_FORMAT, "line %d: %s", cur(p)->line, msg);
    return NULL;
}

static void *unexpected(parser *p) {
    char b[64];
    return fail_at(p, "unexpected %s", tok_desc(cur(p), b, sizeof b));
}

static jnode *node(parser *p, jnode_kind k) {
    jnode *n = jarena_alloc(p->a, sizeof(jnode));
    if (!n) {
        if (!p->err || !p->err->code) error_set(p->err, ERR_NOMEM, "out of memory parsing the template");
        return NULL;
    }
    n->kind = k;
    n->line = cur(p)->line;
    return n;
}

/* growable node arrays */
typedef struct nvec { jnode **v; int n, cap; } nvec;
static int nvec_push(parser *p, nvec *v, jnode *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        jnode **nv = jarena_alloc(p->a, (size_t)cap * sizeof(jnode *));
        if (!nv) { error_set(p->err, ERR_NOMEM, "out of memory parsing the template"); return -1; }
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof(jnode *));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

static bool expect_op(parser *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char b[64], m[160];
        snprintf(m, sizeof m, "expected '%s', got %s", op, tok_desc(cur(p), b, sizeof b));
        fail_at(p, "%s", m);
        return false;
    }
    advance(p);
    return true;
}

static bool enter(parser *p) {
    if (++p->depth > JINJA_MAX_PARSE_DEPTH) {
        if (!p->err || !p->err->code)
            error_set(p->err, ERR_LIMIT, "line %d: template nested deeper than %d levels", cur(p)->line, JINJA_MAX_PARSE_DEPTH);
        return false;
    }
    return true;
}
#define LEAVE(p, x) do { (p)->depth--; return (x); } while (0)

static jnode *parse_expression(parser *p, bool with_condexpr);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_filter_expr(parser *p, jnode *n);

/* `a, b, c` (a tuple when a comma appears), stopping before end markers. */
static jnode *parse_tuple(parser *p, bool with_condexpr, bool explicit_parens) {
    jnode *first = NULL;
    nvec items = {0};
    bool comma = false;
    for (;;) {
        jtok *t = cur(p);
        if (items.n || first) {
            if (!is_op(t, ",")) break;
            advance(p);
            comma = true;
            t = cur(p);
        }
        if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF || is_op(t, ")") ||
            is_name(t, "recursive") || is_name(t, "in") || (!with_condexpr && is_name(t, "if")))
            break;
        jnode *e = parse_expression(p, with_condexpr);
        if (!e) return NULL;
        if (!first) first = e;
        if (nvec_push(p, &items, e)) return NULL;
    }
    if (!comma) {
        if (first) return first;
        if (!explicit_parens) return unexpected(p);
    }
    jnode *tu = node(p, JN_TUPLE);
    if (!tu) return NULL;
    tu->kids = items.v;
    tu->n_kids = items.n;
    return tu;
}

static jnode *parse_condexpr(parser *p) {
    jnode *e = parse_or(p);
    while (e && is_name(cur(p), "if")) {
        advance(p);
        p->cond_depth++;
        jnode *c = node(p, JN_COND);
        if (!c) return NULL;
        c->a = parse_or(p);
        if (!c->a) return NULL;
        c->b = e;
        if (is_name(cur(p), "else")) {
            advance(p);
            c->c = parse_condexpr(p);
            if (!c->c) return NULL;
        }
        p->cond_depth--;
        e = c;
    }
    return e;
}

static jnode *parse_expression(parser *p, bool with_condexpr) {
    if (!enter(p)) return NULL;
    jnode *e = with_condexpr ? parse_condexpr(p) : parse_or(p);
    LEAVE(p, e);
}

static jnode *parse_not(parser *p);

static jnode *parse_or(parser *p) {
    jnode *l = NULL;
    /* and */
    for (;;) {
        jnode *r = parse_not(p);
        if (!r) return NULL;
        while (is_name(cur(p), "and")) {
            advance(p);
            jnode *r2 = parse_not(p);
            if (!r2) return NULL;
            jnode *n = node(p, JN_AND);
            if (!n) return NULL;
            n->a = r;
            n->b = r2;
            r = n;
        }
        if (l) {
            jnode *n = node(p, JN_OR);
            if (!n) return NULL;
            n->a = l;
            n->b = r;
            l = n;
        } else {
            l = r;
        }
        if (!is_name(cur(p), "or")) return l;
        advance(p);
    }
}

static jnode *parse_math1(parser *p);

static jnode *parse_compare(parser *p) {
    jnode *e = parse_math1(p);
    if (!e) return NULL;
    nvec rhs = {0};
    int ops[64];
    for (;;) {
        jtok *t = cur(p);
        int op = -1;
        if (is_op(t, "==")) op = JOP_EQ;
        else if (is_op(t, "!=")) op = JOP_NE;
        else if (is_op(t, "<")) op = JOP_LT;
        else if (is_op(t, "<=")) op = JOP_LE;
        else if (is_op(t, ">")) op = JOP_GT;
        else if (is_op(t, ">=")) op = JOP_GE;
        else if (is_name(t, "in")) op = JOP_IN;
        else if (is_name(t, "not") && is_name(peek(p, 1), "in")) { op = JOP_NOTIN; advance(p); }
        if (op < 0) break;
        advance(p);
        if (rhs.n >= 64) return fail_at(p, "%s", "comparison chain too long");
        ops[rhs.n] = op;
        jnode *r = parse_math1(p);
        if (!r || nvec_push(p, &rhs, r)) return NULL;
    }
    if (!rhs.n) return e;
    jnode *c = node(p, JN_COMPARE);
    if (!c) return NULL;
    c->a = e;
    c->kids = rhs.v;
    c->n_kids = rhs.n;
    c->ops = jarena_alloc(p->a, sizeof(int) * (size_t)rhs.n);
    if (!c->ops) return NULL;
    memcpy(c->ops, ops, sizeof(int) * (size_t)rhs.n);
    return c;
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        if (!enter(p)) return NULL;
        jnode *n = node(p, JN_NOT);
        advance(p);
        if (!n) return NULL;
        n->a = parse_not(p);
        if (!n->a) return NULL;
        LEAVE(p, n);
    }
    return parse_compare(p);
}

static jnode *binop(parser *p, int op, jnode *l, jnode *r) {
    jnode *n = node(p, JN_BINOP);
    if (!n) return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *l = parse_unary(p, true);
    while (l && is_op(cur(p), "**")) {
        advance(p);
        jnode *r = parse_unary(p, true);
        if (!r) return NULL;
        l = binop(p, JOP_POW, l, r);
    }
    return l;
}

static jnode *parse_math2(parser *p) {
    jnode *l = parse_pow(p);
    for (;;) {
        if (!l) return NULL;
        int op = is_op(cur(p), "*") ? JOP_MUL : is_op(cur(p), "/") ? JOP_DIV : is_op(cur(p), "//") ? JOP_FLOORDIV
                 : is_op(cur(p), "%") ? JOP_MOD : -1;
        if (op < 0) return l;
        advance(p);
        jnode *r = parse_pow(p);
        if (!r) return NULL;
        l = binop(p, op, l, r);
    }
}

static jnode *parse_concat(parser *p) {
    jnode *first = parse_math2(p);
    if (!first || !is_op(cur(p), "~")) return first;
    nvec v = {0};
    if (nvec_push(p, &v, first)) return NULL;
    while (is_op(cur(p), "~")) {
        advance(p);
        jnode *r = parse_math2(p);
        if (!r || nvec_push(p, &v, r)) return NULL;
    }
    jnode *n = node(p, JN_CONCAT);
    if (!n) return NULL;
    n->kids = v.v;
    n->n_kids = v.n;
    return n;
}

static jnode *parse_math1(parser *p) {
    jnode *l = parse_concat(p);
    for (;;) {
        if (!l) return NULL;
        int op = is_op(cur(p), "+") ? JOP_ADD : is_op(cur(p), "-") ? JOP_SUB : -1;
        if (op < 0) return l;
        advance(p);
        jnode *r = parse_concat(p);
        if (!r) return NULL;
        l = binop(p, op, l, r);
    }
}

static jnode *parse_unary(parser *p, bool with_filter) {
    if (!enter(p)) return NULL;
    jnode *n;
    if (is_op(cur(p), "-") || is_op(cur(p), "+")) {
        n = node(p, is_op(cur(p), "-") ? JN_NEG : JN_POS);
        advance(p);
        if (!n) return NULL;
        n->a = parse_unary(p, false);
        if (!n->a) return NULL;
    } else {
        n = parse_primary(p);
    }
    if (n) n = parse_postfix(p, n);
    if (n && with_filter) n = parse_filter_expr(p, n);
    LEAVE(p, n);
}

static char *dup_name(parser *p, const char *s, size_t n) {
    char *d = jarena_alloc(p->a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* (args, kw=...) after the '(' has been seen. */
static bool parse_call_args(parser *p, jnode *n) {
    if (!expect_op(p, "(")) return false;
    nvec args = {0}, kws = {0};
    while (!is_op(cur(p), ")")) {
        if (args.n || kws.n) {
            if (!expect_op(p, ",")) return false;
            if (is_op(cur(p), ")")) break;
        }
        if (is_op(cur(p), "*") || is_op(cur(p), "**")) { unexpected(p); return false; }
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), "=")) {
            jnode *kw = node(p, JN_KWARG);
            if (!kw) return false;
            kw->name = dup_name(p, cur(p)->s, cur(p)->n);
            kw->name_len = cur(p)->n;
            if (!kw->name) return false;
            advance(p);
            advance(p);
            kw->a = parse_expression(p, true);
            if (!kw->a || nvec_push(p, &kws, kw)) return false;
        } else {
            if (kws.n) { fail_at(p, "%s", "positional argument after keyword argument"); return false; }
            jnode *e = parse_expression(p, true);
            if (!e || nvec_push(p, &args, e)) return false;
        }
    }
    advance(p);
    n->kids = args.v;
    n->n_kids = args.n;
    n->kw = kws.v;
    n->n_kw = kws.n;
    return true;
}

/* filter/test name, dotted names joined */
static bool parse_dotted_name(parser *p, jnode *n) {
    if (cur(p)->type != JT_NAME) { unexpected(p); return false; }
    const char *s = cur(p)->s;
    size_t len = cur(p)->n;
    advance(p);
    while (is_op(cur(p), ".") && peek(p, 1)->type == JT_NAME) {
        advance(p);
        len = (size_t)(cur(p)->s + cur(p)->n - s);
        advance(p);
    }
    n->name = dup_name(p, s, len);
    n->name_len = len;
    return n->name != NULL;
}

static jnode *parse_filter(parser *p, jnode *in) {
    jnode *f = node(p, JN_FILTER);
    if (!f) return NULL;
    f->a = in;
    if (!parse_dotted_name(p, f)) return NULL;
    f->op = jinja_filter_lookup(f->name, f->name_len);
    if (f->op < 0 && p->cond_depth == 0) return fail_at(p, "No filter named '%s'.", f->name);
    if (is_op(cur(p), "(") && !parse_call_args(p, f)) return NULL;
    return f;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    for (;;) {
        if (is_op(cur(p), "|")) {
            advance(p);
            n = parse_filter(p, n);
        } else if (is_name(cur(p), "is")) {
            advance(p);
            jnode *t = node(p, JN_TEST);
            if (!t) return NULL;
            t->a = n;
            if (is_name(cur(p), "not")) { advance(p); t->c = n; }
            if (!parse_dotted_name(p, t)) return NULL;
            t->op = jinja_test_lookup(t->name, t->name_len);
            if (t->op < 0 && p->cond_depth == 0) return fail_at(p, "No test named '%s'.", t->name);
            jtok *c = cur(p);
            if (is_op(c, "(")) {
                if (!parse_call_args(p, t)) return NULL;
            } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT || c->type == JT_FLOAT ||
                        is_op(c, "[") || is_op(c, "{")) &&
                       !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                if (is_name(c, "is")) return fail_at(p, "%s", "You cannot chain multiple tests with is");
                jnode *arg = parse_primary(p);
                if (arg) arg = parse_postfix(p, arg);
                if (!arg) return NULL;
                t->kids = jarena_alloc(p->a, sizeof(jnode *));
                if (!t->kids) return NULL;
                t->kids[0] = arg;
                t->n_kids = 1;
            }
            n = t;
        } else if (is_op(cur(p), "(")) {
            jnode *c = node(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (!parse_call_args(p, c)) return NULL;
            n = c;
        } else {
            return n;
        }
        if (!n) return NULL;
    }
}

static jnode *parse_subscript_arg(parser *p) {
    /* expression or slice a:b:c */
    jnode *args[3] = {NULL, NULL, NULL};
    int k = 0;
    bool is_slice = false;
    for (;;) {
        jtok *t = cur(p);
        if (is_op(t, ":")) {
            is_slice = true;
            if (++k > 2) return unexpected(p);
            advance(p);
            continue;
        }
        if (is_op(t, "]") || is_op(t, ",")) break;
        if (args[k]) return unexpected(p);
        args[k] = parse_expression(p, true);
        if (!args[k]) return NULL;
    }
    if (!is_slice) {
        if (!args[0]) return unexpected(p);
        return args[0];
    }
    jnode *s = node(p, JN_SLICE);
    if (!s) return NULL;
    s->b = args[0];
    s->c = args[1];
    s->d = args[2];
    return s;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    for (;;) {
        if (!n) return NULL;
        jtok *t = cur(p);
        if (is_op(t, ".")) {
            advance(p);
            jtok *a = cur(p);
            if (a->type == JT_NAME) {
                jnode *g = node(p, JN_ATTR);
                if (!g) return NULL;
                g->a = n;
                g->name = dup_name(p, a->s, a->n);
                g->name_len = a->n;
                if (!g->name) return NULL;
                advance(p);
                n = g;
            } else if (a->type == JT_INT) {
                jnode *g = node(p, JN_ITEM), *k = node(p, JN_LIT);
                if (!g || !k) return NULL;
                k->lit = jv_int(a->i);
                g->a = n;
                g->b = k;
                advance(p);
                n = g;
            } else {
                return unexpected(p);
            }
        } else if (is_op(t, "[")) {
            advance(p);
            nvec idx = {0};
            while (!is_op(cur(p), "]")) {
                if (idx.n && !expect_op(p, ",")) return NULL;
                if (is_op(cur(p), "]")) break;
                jnode *e = parse_subscript_arg(p);
                if (!e || nvec_push(p, &idx, e)) return NULL;
            }
            advance(p);
            if (idx.n == 0) return unexpected(p);
            jnode *key = idx.v[0];
            for (int k = 0; idx.n > 1 && k < idx.n; k++)
                if (idx.v[k]->kind == JN_SLICE) return fail_at(p, "%s", "a slice inside a tuple subscript is not supported");
            if (idx.n > 1) {
                key = node(p, JN_TUPLE);
                if (!key) return NULL;
                key->kids = idx.v;
                key->n_kids = idx.n;
            }
            if (key->kind == JN_SLICE) {
                key->a = n;
                n = key;
            } else {
                jnode *g = node(p, JN_ITEM);
                if (!g) return NULL;
                g->a = n;
                g->b = key;
                n = g;
            }
        } else if (is_op(t, "(")) {
            jnode *c = node(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (!parse_call_args(p, c)) return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *lit(parser *p, jv v) {
    jnode *n = node(p, JN_LIT);
    if (n) n->lit = v;
    return n;
}

static jnode *parse_primary(parser *p) {
    jtok *t = cur(p);
    if (t->type == JT_NAME) {
        advance(p);
        if ((t->n == 4 && (!memcmp(t->s, "true", 4) || !memcmp(t->s, "True", 4)))) return lit(p, jv_bool(true));
        if ((t->n == 5 && (!memcmp(t->s, "false", 5) || !memcmp(t->s, "False", 5)))) return lit(p, jv_bool(false));
        if ((t->n == 4 && (!memcmp(t->s, "none", 4) || !memcmp(t->s, "None", 4)))) return lit(p, jv_none());
        jnode *n = node(p, JN_NAME);
        if (!n) return NULL;
        n->line = t->line;
        n->name = dup_name(p, t->s, t->n);
        n->name_len = t->n;
        return n->name ? n : NULL;
    }
    if (t->type == JT_STRING) {
        /* adjacent literals concatenate */
        size_t total = 0, k = p->i;
        while (p->t[k].type == JT_STRING) total += p->t[k++].n;
        jstr *s = jarena_alloc(p->a, sizeof(jstr) + total + 1);
        if (!s) return NULL;
        s->len = total;
        size_t o = 0;
        while (cur(p)->type == JT_STRING) {
            memcpy(s->data + o, cur(p)->s, cur(p)->n);
            o += cur(p)->n;
            advance(p);
        }
        s->data[total] = '\0';
        jv v;
        v.type = JV_STRING;
        v.aux = 0;
        v.u.s = s;
        return lit(p, v);
    }
    if (t->type == JT_INT) { advance(p); return lit(p, jv_int(t->i)); }
    if (t->type == JT_FLOAT) { advance(p); return lit(p, jv_float(t->f)); }
    if (is_op(t, "(")) {
        advance(p);
        jnode *e = parse_tuple(p, true, true);
        if (!e || !expect_op(p, ")")) return NULL;
        return e;
    }
    if (is_op(t, "[")) {
        advance(p);
        nvec items = {0};
        while (!is_op(cur(p), "]")) {
            if (items.n && !expect_op(p, ",")) return NULL;
            if (is_op(cur(p), "]")) break;
            jnode *e = parse_expression(p, true);
            if (!e || nvec_push(p, &items, e)) return NULL;
        }
        advance(p);
        jnode *n = node(p, JN_LIST);
        if (!n) return NULL;
        n->kids = items.v;
        n->n_kids = items.n;
        return n;
    }
    if (is_op(t, "{")) {
        advance(p);
        nvec keys = {0}, vals = {0};
        while (!is_op(cur(p), "}")) {
            if (keys.n && !expect_op(p, ",")) return NULL;
            if (is_op(cur(p), "}")) break;
            jnode *k = parse_expression(p, true);
            if (!k || !expect_op(p, ":")) return NULL;
            jnode *v = node(p, JN_KWARG);
            if (!v) return NULL;
            v->a = parse_expression(p, true);
            if (!v->a || nvec_push(p, &keys, k) || nvec_push(p, &vals, v)) return NULL;
        }
        advance(p);
        jnode *n = node(p, JN_DICT);
        if (!n) return NULL;
        n->kids = keys.v;
        n->n_kids = keys.n;
        n->kw = vals.v;
        n->n_kw = vals.n;
        return n;
    }
    return unexpected(p);
}

/* ---- statements */

static jnode *parse_body(parser *p, const char *const *ends, int n_ends);

static bool expect_block_end(parser *p) {
    if (cur(p)->type != JT_BLOCK_END) { unexpected(p); return false; }
    advance(p);
    return true;
}

/* Consumes `{% name %}` (an end tag that parse_body stopped at). */
static bool expect_end_tag(parser *p, const char *name) {
    /* parse_body stops with cur at the name token after BLOCK_BEGIN */
    if (!is_name(cur(p), name)) {
        char b[64], m[160];
        snprintf(m, sizeof m, "expected '%s', got %s", name, tok_desc(cur(p), b, sizeof b));
        fail_at(p, "%s", m);
        return false;
    }
    advance(p);
    if (cur(p)->type == JT_NAME && !strcmp(name, "endmacro")) advance(p); /* {% endmacro name %} */
    return expect_block_end(p);
}

static jnode *name_node(parser *p) {
    if (cur(p)->type != JT_NAME) return unexpected(p);
    jnode *n = node(p, JN_NAME);
    if (!n) return NULL;
    n->name = dup_name(p, cur(p)->s, cur(p)->n);
    n->name_len = cur(p)->n;
    advance(p);
    return n->name ? n : NULL;
}

/* for/set targets: name | name.attr (set only) | a, b | (a, b) */
static bool parse_targets(parser *p, jnode *n, bool allow_attr) {
    nvec v = {0};
    bool paren = false;
    if (is_op(cur(p), "(")) { paren = true; advance(p); }
    for (;;) {
        jnode *t = name_node(p);
        if (!t) return false;
        if (allow_attr && is_op(cur(p), ".")) {
            advance(p);
            jnode *g = node(p, JN_ATTR);
            if (!g || cur(p)->type != JT_NAME) { if (g) unexpected(p); return false; }
            g->a = t;
            g->name = dup_name(p, cur(p)->s, cur(p)->n);
            g->name_len = cur(p)->n;
            advance(p);
            t = g;
        }
        if (nvec_push(p, &v, t)) return false;
        if (!is_op(cur(p), ",")) break;
        advance(p);
        if (paren && is_op(cur(p), ")")) break;
    }
    if (paren && !expect_op(p, ")")) return false;
    n->kids = v.v;
    n->n_kids = v.n;
    return true;
}

static jnode *parse_filter_chain(parser *p) {
    jnode *f = NULL;
    do {
        if (f) advance(p); /* the '|' */
        f = parse_filter(p, f);
        if (!f) return NULL;
    } while (is_op(cur(p), "|"));
    return f;
}

/* macro/call parameter list "(a, b=1)" */
static bool parse_params(parser *p, jnode *n) {
    if (!expect_op(p, "(")) return false;
    nvec names = {0}, defs = {0};
    while (!is_op(cur(p), ")")) {
        if (names.n && !expect_op(p, ",")) return false;
        if (is_op(cur(p), ")")) break;
        jnode *nm = name_node(p);
        if (!nm || nvec_push(p, &names, nm)) return false;
        if (is_op(cur(p), "=")) {
            advance(p);
            jnode *kw = node(p, JN_KWARG);
            if (!kw) return false;
            kw->name = nm->name;
            kw->name_len = nm->name_len;
            kw->a = parse_expression(p, true);
            if (!kw->a || nvec_push(p, &defs, kw)) return false;
        } else if (defs.n) {
            fail_at(p, "%s", "non-default argument follows default argument");
            return false;
        }
    }
    advance(p);
    n->kids = names.v;
    n->n_kids = names.n;
    n->kw = defs.v;
    n->n_kw = defs.n;
    return true;
}

/* The body of a block into n->b, up to and including {% end_tag %}. Returns
 * n, or NULL on error. */
static jnode *parse_block_body(parser *p, jnode *n, const char *end_tag) {
    const char *const ends[] = {end_tag};
    n->b = parse_body(p, ends, 1);
    if (!n->b) return NULL;
    return expect_end_tag(p, end_tag) ? n : NULL;
}

/* A body that stopped at `else`: {% else %} and the statements up to
 * end_tag into *out (left NULL when there is no else). False on error. */
static bool parse_else_body(parser *p, jnode **out, const char *end_tag) {
    if (!is_name(cur(p), "else")) return true;
    advance(p);
    if (!expect_block_end(p)) return false;
    const char *const ends[] = {end_tag};
    *out = parse_body(p, ends, 1);
    return *out != NULL;
}

static jnode *parse_if(parser *p) {
    jnode *n = node(p, JN_IF);
    if (!n) return NULL;
    advance(p); /* if / elif */
    n->a = parse_tuple(p, false, false);
    if (!n->a || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif"};
    p->cond_depth++;
    n->b = parse_body(p, ends, 3);
    if (!n->b) return NULL;
    if (is_name(cur(p), "elif")) {
        n->c = parse_if(p);
        p->cond_depth--;
        return n->c ? n : NULL;
    }
    if (!parse_else_body(p, &n->c, "endif")) return NULL;
    p->cond_depth--;
    if (!expect_end_tag(p, "endif")) return NULL;
    return n;
}

/* {% for targets in iterable [if filter] %} body [{% else %} body] {% endfor %} */
static jnode *parse_for(parser *p) {
    jnode *n = node(p, JN_FOR);
    if (!n) return NULL;
    advance(p);
    if (!parse_targets(p, n, false)) return NULL;
    if (!is_name(cur(p), "in")) return fail_at(p, "%s", "expected 'in' in for loop");
    advance(p);
    n->a = parse_tuple(p, false, false);
    if (!n->a) return NULL;
    if (is_name(cur(p), "if")) {
        advance(p);
        n->d = parse_expression(p, true);
        if (!n->d) return NULL;
    }
    if (is_name(cur(p), "recursive")) return fail_at(p, "%s", "recursive for loops are not supported");
    if (!expect_block_end(p)) return NULL;
    static const char *const ends[] = {"else", "endfor"};
    n->b = parse_body(p, ends, 2);
    if (!n->b || !parse_else_body(p, &n->c, "endfor")) return NULL;
    return expect_end_tag(p, "endfor") ? n : NULL;
}

/* {% set targets = value %}, or the block form {% set name [| filters] %} body {% endset %} */
static jnode *parse_set(parser *p) {
    jnode *n = node(p, JN_SET);
    if (!n) return NULL;
    advance(p);
    if (!parse_targets(p, n, true)) return NULL;
    if (is_op(cur(p), "=")) {
        advance(p);
        n->a = parse_tuple(p, true, false);
        if (!n->a || !expect_block_end(p)) return NULL;
        return n;
    }
    if (n->n_kids != 1 || n->kids[0]->kind != JN_NAME) return unexpected(p);
    n->kind = JN_SETBLOCK;
    if (is_op(cur(p), "|")) {
        advance(p);
        n->d = parse_filter_chain(p);
        if (!n->d) return NULL;
    }
    if (!expect_block_end(p)) return NULL;
    return parse_block_body(p, n, "endset");
}

/* {% macro name(params) %} body {% endmacro %} */
static jnode *parse_macro(parser *p) {
    jnode *n = node(p, JN_MACRO);
    if (!n) return NULL;
    advance(p);
    jnode *nm = name_node(p);
    if (!nm) return NULL;
    n->name = nm->name;
    n->name_len = nm->name_len;
    if (!parse_params(p, n) || !expect_block_end(p)) return NULL;
    return parse_block_body(p, n, "endmacro");
}

/* {% call[(params)] macro(args) %} body {% endcall %}: the body is `caller` */
static jnode *parse_call(parser *p) {
    jnode *n = node(p, JN_CALLBLOCK);
    if (!n) return NULL;
    advance(p);
    if (is_op(cur(p), "(") && !parse_params(p, n)) return NULL;
    n->a = parse_expression(p, true);
    if (!n->a) return NULL;
    if (n->a->kind != JN_CALL) return fail_at(p, "%s", "expected call");
    if (!expect_block_end(p)) return NULL;
    n->name = "caller";
    n->name_len = 6;
    return parse_block_body(p, n, "endcall");
}

/* {% filter chain %} body {% endfilter %} */
static jnode *parse_filter_block(parser *p) {
    jnode *n = node(p, JN_FILTERBLOCK);
    if (!n) return NULL;
    advance(p);
    n->d = parse_filter_chain(p);
    if (!n->d || !expect_block_end(p)) return NULL;
    return parse_block_body(p, n, "endfilter");
}

/* {% generation %} body {% endgeneration %}: transformers' AssistantTracker
 * tag, rendered as its body in its own scope. */
static jnode *parse_generation(parser *p) {
    jnode *n = node(p, JN_SCOPE);
    if (!n) return NULL;
    advance(p);
    if (!expect_block_end(p)) return NULL;
    return parse_block_body(p, n, "endgeneration");
}

/* {% break %} / {% continue %} */
static jnode *parse_loop_control(parser *p) {
    jnode *n = node(p, is_name(cur(p), "break") ? JN_BREAK : JN_CONTINUE);
    if (!n) return NULL;
    advance(p);
    return expect_block_end(p) ? n : NULL;
}

/* One statement per tag name; cur is the tag's name token. */
static const struct {
    const char *tag;
    jnode *(*parse)(parser *p);
} STATEMENTS[] = {
    {"if", parse_if}, {"for", parse_for}, {"set", parse_set}, {"macro", parse_macro}, {"call", parse_call},
    {"filter", parse_filter_block}, {"generation", parse_generation}, {"break", parse_loop_control},
    {"continue", parse_loop_control},
};

static jnode *parse_statement(parser *p) {
    jtok *t = cur(p);
    if (t->type != JT_NAME) return unexpected(p);
    for (size_t i = 0; i < sizeof STATEMENTS / sizeof STATEMENTS[0]; i++)
        if (is_name(t, STATEMENTS[i].tag)) return STATEMENTS[i].parse(p);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(t->n > 40 ? 40 : t->n), t->s);
    return fail_at(p, "Encountered unknown tag '%s'.", name);
}

/* Statements until a block tag whose name is one of ends (cur left on that
 * name), or the end of the template when ends is empty. */
static jnode *parse_body(parser *p, const char *const *ends, int n_ends) {
    if (!enter(p)) return NULL;
    jnode *body = node(p, JN_BODY);
    if (!body) return NULL;
    nvec st = {0};
    for (;;) {
        jtok *t = cur(p);
        if (t->type == JT_EOF) {
            if (n_ends) {
                char m[120];
                snprintf(m, sizeof m, "Unexpected end of template. Jinja was looking for '%s'.", ends[n_ends - 1]);
                return fail_at(p, "%s", m);
            }
            break;
        }
        if (t->type == JT_DATA) {
            jnode *n = node(p, JN_TEXT);
            if (!n) return NULL;
            n->lit.type = JV_STRING;
            n->lit.u.s = jstr_new(p->a, t->s, t->n);
            if (!n->lit.u.s || nvec_push(p, &st, n)) return NULL;
            advance(p);
            continue;
        }
        if (t->type == JT_VAR_BEGIN) {
            advance(p);
            jnode *n = node(p, JN_EMIT);
            if (!n) return NULL;
            n->a = parse_tuple(p, true, false);
            if (!n->a) return NULL;
            if (cur(p)->type != JT_VAR_END) return unexpected(p);
            advance(p);
            if (nvec_push(p, &st, n)) return NULL;
            continue;
        }
        if (t->type == JT_BLOCK_BEGIN) {
            advance(p);
            for (int k = 0; k < n_ends; k++)
                if (is_name(cur(p), ends[k])) goto done;
            jtok *nm = cur(p);
            if (nm->type == JT_NAME && nm->n > 3 && (!memcmp(nm->s, "end", 3) || is_name(nm, "elif") || is_name(nm, "else"))) {
                char m[120];
                snprintf(m, sizeof m, "Encountered unknown tag '%.*s'.", (int)(nm->n > 40 ? 40 : nm->n), nm->s);
                return fail_at(p, "%s", m);
            }
            if (is_name(nm, "else") || is_name(nm, "elif")) {
                char m[120];
                snprintf(m, sizeof m, "Encountered unknown tag '%.*s'.", (int)nm->n, nm->s);
                return fail_at(p, "%s", m);
            }
            jnode *s = parse_statement(p);
            if (!s || nvec_push(p, &st, s)) return NULL;
            continue;
        }
        return unexpected(p);
    }
done:
    body->kids = st.v;
    body->n_kids = st.n;
    LEAVE(p, body);
}

jnode *jinja_parse_tree(jarena *a, const char *src, size_t len, larder_error *err) {
    jtok *toks;
    size_t n;
    if (jinja_lex(a, src, len, &toks, &n, err)) return NULL;
    parser p = {.a = a, .t = toks, .n = n, .i = 0, .err = err};
    return parse_body(&p, NULL, 0);
}
