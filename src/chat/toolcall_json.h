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

/*
 * A validating incremental reader for one JSON value, for sending a value
 * (a tool call's arguments) while it is being generated: fed the text piece
 * by piece, it checks RFC 8259 byte by byte (strings hold valid UTF-8) and
 * keeps `safe`, the longest prefix that the text so far can be cut at and
 * completed by appending `closer` (e.g. `{"a": "xy` + `"}`): after an
 * opening bracket, inside a string value, after a complete value. Bytes up
 * to `safe` can be sent at once; if the text then breaks off, sending the
 * closer makes what was sent a valid value.
 */
typedef struct tjson_stream {
    char stack[TJSON_MAX_DEPTH];   /* open containers: '{' or '[' */
    int depth;
    int state, sub;                /* where in the grammar (toolcall_json.c) */
    size_t pos;                    /* bytes consumed */
    size_t safe;                   /* see above */
    char closer[TJSON_MAX_DEPTH + 2];
    int closer_len;
    bool done, bad;
} tjson_stream;

/* Starts reading a value. */
void tjson_stream_init(tjson_stream *st);

/* Consumes s[0, n) (the next bytes of the text). Returns 1 when the value
 * ended (st->pos is then just past it; bytes after it are not consumed), 0
 * when more is needed, -1 when the text cannot be JSON (st->bad; nothing
 * more is read). */
int tjson_stream_feed(tjson_stream *st, const char *s, size_t n);

#endif
