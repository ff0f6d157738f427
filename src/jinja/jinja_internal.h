/*
 * jinja_internal.h — what the jinja_*.c files share: values, the arena they
 * live in, AST nodes, and the render state. Not a public contract (jinja.h is).
 *
 * Key idea: every value made while rendering lives in one arena that is freed
 * when the render ends, so values are plain 16-byte structs passed by value
 * with no reference counting; the arena's byte total is the render's memory
 * bound. The AST lives in the template's own arena.
 */
#ifndef LARDER_JINJA_INTERNAL_H
#define LARDER_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "jinja/jinja.h"

/* ---- arena */

typedef struct jarena_chunk jarena_chunk;
typedef struct jarena {
    jarena_chunk *head;
    size_t used_bytes;  /* total handed out (the bound is checked against this) */
    size_t limit_bytes; /* 0: unlimited */
} jarena;

/* n bytes, 16-aligned, zeroed; NULL when out of memory or over the limit. */
void *jarena_alloc(jarena *a, size_t n);
void jarena_free_all(jarena *a);

/* ---- values */

typedef enum jv_type {
    JV_UNDEFINED = 0, /* a missing name/attribute; name kept for messages */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STRING,
    JV_LIST,      /* also tuples (is_tuple) */
    JV_DICT,      /* insertion-ordered */
    JV_NAMESPACE, /* namespace(): a dict whose attributes can be set */
    JV_FUNC,      /* builtin function, bound method or macro */
    JV_LOOP,      /* the `loop` variable of a for loop */
} jv_type;

typedef struct jstr {
    size_t len;     /* bytes, without the NUL */
    char data[];    /* NUL-terminated UTF-8 */
} jstr;

struct jlist;
struct jdict;
struct jfunc;
struct jloop;

typedef struct jv {
    jv_type type;
    int aux;          /* JV_UNDEFINED: 1 when undef_name is a whole message, not a name;
                         JV_STRING: 1 for Markup (from |safe, |escape): `+` escapes the other side */
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        struct jlist *l;
        struct jdict *d;
        struct jfunc *fn;
        struct jloop *loop;
        const char *undef_name; /* JV_UNDEFINED: the missing name, or NULL */
    } u;
} jv;

typedef struct jlist {
    jv *items;
    size_t n, cap;
    bool is_tuple;
    bool is_gen;    /* a lazy iterator in Jinja2 (map, select, reverse, ...): truthy, no len(), not JSON */
    bool from_context; /* made from the render's context (the caller's data), not by the template */
} jlist;

typedef struct jdict_entry {
    jstr *key_str; /* string keys (the common case) */
    jv key;        /* the key as a value */
    jv value;
} jdict_entry;

typedef struct jdict {
    jdict_entry *e;
    size_t n, cap;
    int32_t *index;    /* open-addressing hash of entry positions (-1 empty), or NULL when small */
    size_t index_cap;  /* slots, a power of two */
    bool from_context; /* made from the render's context (the caller's data), not by the template */
} jdict;

struct jnode;
struct jframe;
struct jr;

typedef int (*jbuiltin_fn)(struct jr *r, jv self, const jv *args, int nargs, const char *const *kwnames,
                           const jv *kwvals, int nkw, jv *out);

typedef struct jfunc {
    const char *name;       /* for messages: "upper", "range", a macro's name */
    jbuiltin_fn builtin;    /* NULL for a macro */
    jv self;                /* bound object of a method */
    const struct jnode *macro;   /* JN_MACRO or JN_CALLBLOCK (caller) */
    struct jframe *closure;      /* frame a macro/caller body runs under */
    struct jfunc *caller;        /* the caller() a {% call %} passes */
} jfunc;

typedef struct jloop {
    size_t index0, length;
    jlist *items;           /* the sequence iterated */
    int depth;
} jloop;

/* constructors */
static inline jv jv_undef(const char *name) { jv v; v.type = JV_UNDEFINED; v.aux = 0; v.u.undef_name = name; return v; }
static inline jv jv_none(void) { jv v; v.aux = 0; v.type = JV_NONE; v.u.i = 0; return v; }
static inline jv jv_bool(bool b) { jv v; v.aux = 0; v.type = JV_BOOL; v.u.i = 0; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v; v.aux = 0; v.type = JV_INT; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v; v.aux = 0; v.type = JV_FLOAT; v.u.f = f; return v; }

jstr *jstr_new(jarena *a, const char *s, size_t n);
jv jv_str(jarena *a, const char *s, size_t n); /* type JV_UNDEFINED with NULL name is never returned: check jv_is_oom */
jlist *jlist_new(jarena *a, size_t cap);
int jlist_push(jarena *a, jlist *l, jv v);
jdict *jdict_new(jarena *a);
/* Sets key (replacing an existing equal key in place). */
int jdict_set(jarena *a, jdict *d, jv key, jv value);
int jdict_set_str(jarena *a, jdict *d, const char *key, size_t n, jv value);
/* The entry for key, or NULL. */
jdict_entry *jdict_get(const jdict *d, jv key);
jdict_entry *jdict_get_str(const jdict *d, const char *key, size_t n);
int jdict_del(jdict *d, jv key);

static inline jv jv_list(jlist *l) { jv v; v.aux = 0; v.type = JV_LIST; v.u.l = l; return v; }
static inline jv jv_dict(jdict *d) { jv v; v.aux = 0; v.type = JV_DICT; v.u.d = d; return v; }

bool jv_truthy(jv v);
/* Python ==. */
bool jv_equal(jv a, jv b);
/* Python <-style ordering: -1/0/1 in *cmp; -1 when the types do not order. */
int jv_compare(jv a, jv b, int *cmp);
/* Python type name for messages ("str", "int", "list", "dict", "NoneType"...). */
const char *jv_type_name(jv v);
/* str(v) / repr(v) appended to b. */
int jv_append_str(strbuf *b, jv v);
int jv_append_repr(strbuf *b, jv v);
/* Python repr of a float (shortest round-trip). */
void jv_format_float(double f, char *buf, size_t cap);
/* Number of code points in s[0, n). */
size_t utf8_count(const char *s, size_t n);
/* Byte offset of code point number cp (clamped to n). */
size_t utf8_offset(const char *s, size_t n, size_t cp);

/* ---- AST */

typedef enum jnode_kind {
    /* expressions */
    JN_LIT, JN_NAME, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR, JN_BINOP, JN_COMPARE, JN_CONCAT, JN_COND,
    JN_LIST, JN_TUPLE, JN_DICT, JN_KWARG,
    /* statements */
    JN_BODY, JN_TEXT, JN_EMIT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO, JN_CALLBLOCK,
    JN_FILTERBLOCK, JN_BREAK, JN_CONTINUE, JN_SCOPE,
} jnode_kind;

/* JN_BINOP ops and JN_COMPARE ops */
enum { JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
       JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN };

typedef struct jnode {
    jnode_kind kind;
    int op;            /* JOP_*, filter/test index, negation flag... per kind */
    int line;
    const char *name;  /* NAME/ATTR/FILTER/TEST/KWARG/MACRO/SET target */
    size_t name_len;
    jv lit;            /* JN_LIT, JN_TEXT (a string) */
    struct jnode *a, *b, *c, *d;
    struct jnode **kids;  /* args, list items, body statements, for targets... */
    int n_kids;
    struct jnode **kw;    /* JN_KWARG nodes (call kwargs, macro defaults) */
    int n_kw;
    int *ops;             /* JN_COMPARE: op per right operand */
} jnode;
/*
 * Per kind:
 *  LIT lit | NAME name | ATTR a.name | ITEM a[b] | SLICE a[b:c:d] (NULL = omitted)
 *  CALL a(kids, kw) | FILTER a|name(kids, kw) (a NULL inside a filter block), op = filter id
 *  TEST a is [not] name(kids), op = test id, c != NULL means negated (c == a)
 *  NEG/POS/NOT a | AND/OR a b | BINOP a op b | COMPARE a (ops[i] kids[i])...
 *  CONCAT kids joined by ~ | COND b if a else c (c may be NULL)
 *  LIST/TUPLE kids | DICT kids = keys, kw = values (JN_KWARG a = value)
 *  BODY kids | TEXT lit | EMIT a | IF a then b else c (c a BODY or IF)
 *  FOR kids = target names (NAME), a = iterable, b = body, c = else, d = filter
 *  SET kids = targets (NAME or ATTR on a name), a = value
 *  SETBLOCK kids[0] = target, b = body, d = filter chain (FILTER with a NULL at the bottom)
 *  MACRO name, kids = params (NAME), kw = defaults (KWARG name = a), b = body
 *  CALLBLOCK a = the call, kids = caller params, kw = defaults, b = body
 *  FILTERBLOCK d = filter chain, b = body
 *  SCOPE b = body run in a child frame ({% generation %})
 */

typedef struct jinja_template_impl jinja_template_impl;
struct jinja_template {
    jarena arena;
    jnode *root;
};

/* Lexer+parser entry (jinja_parser.c). */
jnode *jinja_parse_tree(jarena *a, const char *src, size_t len, larder_error *err);

/* Filters and tests by name (jinja_filters.c): index or -1. */
int jinja_filter_lookup(const char *name, size_t n);
int jinja_test_lookup(const char *name, size_t n);

/* ---- rendering */

typedef struct jframe {
    struct jframe *parent;
    jdict *vars;
} jframe;

typedef struct jr {
    jarena arena;
    strbuf *out;                 /* current output (block set / filter / caller capture swaps it) */
    larder_error *err;
    const jinja_render_options *opt;
    jframe *globals;
    jframe *frame;               /* innermost scope of the statement running */
    int line;                    /* line of the node being evaluated */
    int call_depth;
    int eval_depth;
    uint64_t loop_iterations;
    uint64_t max_loop_iterations;   /* limits in force (jinja_limits or the defaults) */
    size_t max_output_bytes;
    int max_call_depth;
    int loop_control;            /* 0, 1 = break, 2 = continue */
    jv block_input;              /* the captured body a filter block's chain starts from */
} jr;

/* ---- the runtime (jinja_rt.c): errors, str(), iteration */

/* Sets the render error "line N: msg" (code ERR_INVALID unless code given). Returns -1. */
int jr_fail(jr *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int jr_fail_code(jr *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int jr_oom(jr *r);
int jr_loop_limit(jr *r);
/* Undefined used where a value is needed: the Jinja2 UndefinedError message. */
int jr_undefined_error(jr *r, jv u);
/* str(v) as a new string value. */
int jr_to_string(jr *r, jv v, jv *out);
/* The items a for loop / filter walks over: list as is, dict keys, string
 * characters, undefined empty; error for others. */
int jr_iterate(jr *r, jv v, jlist **out);

/* ---- attribute and item access (jinja_access.c) */

/* getattr-then-getitem (a.name) */
int jr_getattr(jr *r, jv obj, const char *name, size_t n, jv *out);
/* getitem-then-getattr (a[key]) */
int jr_getitem(jr *r, jv obj, jv key, jv *out);

/* ---- the evaluator (jinja_render.c) */

int jr_eval(jr *r, const jnode *n, jv *out);
/* Calls a callable value. */
int jr_call(jr *r, jv callee, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
            int nkw, jv *out);

/* Filters/tests (jinja_filters.c). */
int jinja_apply_filter(jr *r, int id, jv in, const jv *args, int nargs, const char *const *kwnames,
                       const jv *kwvals, int nkw, jv *out);
int jinja_apply_test(jr *r, int id, jv in, const jv *args, int nargs, bool *out);
/* A filter id's name. */
const char *jinja_filter_name(int id);

/* Methods and globals (jinja_methods.c). */
/* Bound method name of obj (str/list/dict/loop), or *found = false. */
int jinja_method_lookup(jr *r, jv obj, const char *name, size_t n, jv *out, bool *found);
/* Fills the globals frame: range, dict, namespace, raise_exception, strftime_now. */
int jinja_globals_init(jr *r, jdict *g);

/* JSON (jinja_json.c). */
int jinja_from_json(jr *r, const cJSON *j, jv *out);
/* JSON text to a value, ints and floats kept apart like json.loads. */
int jinja_from_json_text(jr *r, const char *s, size_t n, jv *out);
/* json.dumps(v, ensure_ascii=, indent=, separators=, sort_keys=) options */
typedef struct jtojson_opts {
    int indent;              /* spaces per level; -1: None (one line) */
    const char *indent_str;  /* indent given as a string (overrides indent) */
    const char *item_sep, *key_sep;
    bool sort_keys, ensure_ascii;
} jtojson_opts;
int jinja_tojson(jr *r, jv v, const jtojson_opts *o, strbuf *b);
/* "%s" % args (Python printf-style formatting). */
int jr_percent_format(jr *r, jv fmt, jv args, jv *out);

/* HTML-escapes s (& < > " ' as Jinja2/markupsafe do) into a Markup string;
 * a Markup input is returned unchanged. */
int jr_html_escape(jr *r, jv s, jv *out);

/* Python str methods shared by filters and methods. */
jv jr_str_strip(jr *r, jv s, const char *chars, size_t nchars, bool left, bool right);
int jr_str_replace(jr *r, jv s, jv old, jv new_, int64_t count, jv *out);
int jr_str_case(jr *r, jv s, int mode, jv *out); /* 0 lower, 1 upper, 2 capitalize, 3 str.title, 4 jinja title */
int jr_str_split(jr *r, jv s, const jv *sep, int64_t maxsplit, jv *out);

#endif
