/*
 * jinja.h — a Jinja template engine for chat templates: parse once into an
 * AST, render many times with a JSON context.
 *
 * It follows Python Jinja2 as Hugging Face configures it for chat templates
 * (ImmutableSandboxedEnvironment by default, or with mutate_own_values
 * SandboxedEnvironment with the context frozen; trim_blocks and lstrip_blocks on,
 * loopcontrols, `tojson` = json.dumps(ensure_ascii=False, ...), globals
 * raise_exception and strftime_now): output is meant to be byte-identical.
 * Values follow Python semantics (truthiness, int64 vs float arithmetic,
 * printing with Python repr); a missing variable is Jinja's default
 * Undefined (prints "", is falsy, iterates as empty, errors when called or
 * when an attribute of it is read).
 *
 * Templates are untrusted input: every resource a render can consume is
 * bounded by a named limit (jinja_limits), and every failure — syntax error,
 * raise_exception, type error, a limit — is an error message with the
 * template line, never a crash.
 *
 *   jinja_template *t = jinja_template_parse(src, strlen(src), &err);
 *   char *out = jinja_render_json(t, context_object, NULL, &len, &err);
 *   ...; free(out); jinja_template_free(t);
 *
 * Also supported: transformers' {% generation %}...{% endgeneration %} tag
 * (renders its body), Markup semantics of |safe (`safe + str` escapes the
 * str), and Jinja2's lazy results (map/select/reject/... are truthy, have
 * no length and are not JSON until |list), since real templates depend on
 * them. Not supported: include/extends/import, recursive loops, lipsum.
 *
 * Files: jinja_lexer.c (tokens, whitespace control), jinja_parser.c (AST),
 * jinja_value.c (values, arena, Python str/repr), jinja_rt.c (the render
 * runtime: errors, str(), iteration), jinja_access.c (a.b and a[b], the
 * sandbox), jinja_json.c (JSON in, json.dumps out), jinja_render.c
 * (statements, expressions, entry points), jinja_filters.c (filters, tests),
 * jinja_methods.c (str/list/dict methods, globals); shared internals in
 * jinja_internal.h. Nothing here knows about models or chat: src/chat
 * builds the chat context. Byte equality with
 * Jinja2: tests/jinja/test_jinja_reference.py and test_jinja_snippets.py.
 */
#ifndef LARDER_JINJA_H
#define LARDER_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/error.h"

/* Default limits (each has a test that hits it: tests/jinja/test_jinja_limits.c). */
#define JINJA_MAX_TEMPLATE_BYTES (4u << 20)       /* template source size */
#define JINJA_MAX_PARSE_DEPTH 200                 /* nesting of expressions + blocks while parsing */
#define JINJA_MAX_LOOP_ITERATIONS 1000000         /* for-loop iterations, summed over a render */
#define JINJA_MAX_CALL_DEPTH 100                  /* nested macro / caller() calls (recursion) */
#define JINJA_MAX_EVAL_DEPTH 3000                 /* nested evaluation frames (bounds C stack use) */
#define JINJA_MAX_OUTPUT_BYTES ((size_t)32 << 20) /* rendered text (and any captured block) */
#define JINJA_MAX_MEMORY_BYTES ((size_t)512 << 20) /* all values of one render (arena) */
#define JINJA_MAX_VALUE_DEPTH 512                 /* nesting of lists/dicts printed or compared */
#define JINJA_MAX_RANGE 100000                    /* range() length, as Jinja2's sandbox */

typedef struct jinja_limits {
    uint64_t max_loop_iterations;
    int max_call_depth;
    size_t max_output_bytes;
    size_t max_memory_bytes;
} jinja_limits;

typedef struct jinja_render_options {
    /* The clock strftime_now reads, as broken-down local time fields;
     * has_now false: the real local time. */
    bool has_now;
    int now_year, now_month, now_day, now_hour, now_minute, now_second; /* month 1-12 */
    /* false (Hugging Face's immutable sandbox): list.append, dict.update, ...
     * are unsafe and raise when called. true: they mutate. */
    bool allow_mutation;
    /* With allow_mutation false: true lets those methods mutate the lists
     * and dicts the template itself made (literals, namespace(ids=[]),
     * slices, copies), as Jinja2's SandboxedEnvironment does, while the
     * context's values stay immutable (their methods raise as above).
     * Appended items live in the render's arena: max_memory_bytes bounds
     * them. Chat templates render with this (Kimi K2's tool-call queue). */
    bool mutate_own_values;
    const jinja_limits *limits; /* NULL: the JINJA_MAX_* defaults */
} jinja_render_options;

typedef struct jinja_template jinja_template;

/* Parses src[0, len) (must be valid UTF-8). NULL with err (ERR_FORMAT,
 * "line N: ...") on a syntax error, ERR_LIMIT past a limit. */
jinja_template *jinja_template_parse(const char *src, size_t len, larder_error *err);
void jinja_template_free(jinja_template *t);

/* Renders with the top-level keys of `context` (a cJSON object, or NULL) as
 * variables. Returns malloc'd NUL-terminated text (length in *len_bytes) or
 * NULL with err: ERR_INVALID for a template error (raise_exception, type
 * error: "line N: message"), ERR_LIMIT for a limit, ERR_NOMEM. */
char *jinja_render_json(const jinja_template *t, const cJSON *context, const jinja_render_options *opt,
                        size_t *len_bytes, larder_error *err);

/* Same, with the context given as JSON text (an object). Unlike the cJSON
 * path, numbers keep Python's int/float distinction (1.0 stays a float and
 * prints "1.0"), as json.loads gives them to Hugging Face's renderer. */
char *jinja_render_json_text(const jinja_template *t, const char *json, size_t json_len,
                             const jinja_render_options *opt, size_t *len_bytes, larder_error *err);

/* Parses "YYYY-MM-DD[THH:MM[:SS]]" into opt's clock fields (has_now = true).
 * -1 with err (ERR_INVALID) when malformed. */
int jinja_options_set_now(jinja_render_options *opt, const char *iso8601, larder_error *err);

#endif
