/*
 * toolcall_json.h — the small strict JSON reader the tool-call parsers need.
 *
 * Model output is checked against RFC 8259 without building a tree, so a
 * call's arguments can be passed on as the model wrote them (numbers keep
 * every digit; cJSON would round them through a double). Two tools:
 *
 *   - tjson_value_end: validates one complete value in a finished text and
 *     says where it ends;
 *   - tjson_scan: an incremental scanner that, fed a growing text from a
 *     cursor, finds where a top-level object/array closes (bracket depth and
 *     string state carried between calls, so no byte is looked at twice) or
 *     that it cannot be JSON (a byte outside strings that no JSON text has).
 *     The scanner only finds the end; tjson_value_end then validates.
 */
#ifndef LARDER_CHAT_TOOLCALL_JSON_H
#define LARDER_CHAT_TOOLCALL_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Deepest nesting of objects/arrays accepted (recursion bound). */
#define TJSON_MAX_DEPTH 128

/* Returned by the functions below for "not a valid value". */
#define TJSON_BAD ((size_t)-1)

/* Index just past the whitespace run that starts at s[i]. */
size_t tjson_skip_ws(const char *s, size_t n, size_t i);

/* Index just past the single JSON value that starts at s[i] (no leading
 * whitespace skipped), or TJSON_BAD when s[i, n) does not start with a
 * complete, valid value (nesting deeper than TJSON_MAX_DEPTH is invalid). */
size_t tjson_value_end(const char *s, size_t n, size_t i);

/* True when s[0, n) is exactly one JSON value, surrounding whitespace allowed. */
bool tjson_is_value(const char *s, size_t n);

/* Walks the members of the object s[*i] == '{' ... one per call.
 * Before the first call set *i to the index of '{' and *first = true.
 * Returns 1 with the key's raw bytes (between the quotes, escapes not
 * decoded) in [*k0, *k1) and the value in [*v0, *v1); 0 at the closing '}'
 * (then *i is just past it); -1 when the text is not a valid object. */
int tjson_object_next(const char *s, size_t n, size_t *i, bool *first,
                      size_t *k0, size_t *k1, size_t *v0, size_t *v1);

/* The same for the elements of an array s[*i] == '['. */
int tjson_array_next(const char *s, size_t n, size_t *i, bool *first, size_t *v0, size_t *v1);

/* Decodes the JSON string literal s[0, n) (with its quotes) into a malloc'd
 * NUL-terminated string (length in *out_len, may be NULL). NULL when the
 * literal is invalid, decodes to a NUL byte, or memory runs out. */
char *tjson_string_decode(const char *s, size_t n, size_t *out_len);

/* Incremental end finder for one object or array. */
typedef struct tjson_scan {
    int depth;          /* open brackets */
    bool in_string;     /* inside a string literal */
    bool escape;        /* the previous byte was a backslash inside a string */
    bool started;       /* the opening bracket was seen */
} tjson_scan;

#define TJSON_SCAN_MORE ((size_t)-2)   /* the value has not ended yet */

/* Scans s[from, n) (s[from] continuing where the last call stopped; the first
 * call must start at the opening '{' or '['). Returns the index just past the
 * closing bracket, TJSON_SCAN_MORE when s ends first, or TJSON_BAD when a
 * byte cannot belong to a JSON text here (then *bad_at is its index). */
size_t tjson_scan_feed(tjson_scan *sc, const char *s, size_t from, size_t n, size_t *bad_at);

#endif
