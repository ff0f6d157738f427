/*
 * strbuf.h — a growable byte string (always NUL-terminated) for building
 * responses, JSON and logs. Appends report allocation failure: once one
 * fails the buffer remembers it (`failed`), later appends are no-ops, and the
 * caller checks once at the end.
 */
#ifndef LARDER_BASE_STRBUF_H
#define LARDER_BASE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *data;      /* NUL-terminated; NULL until the first append */
    size_t len;      /* bytes, without the NUL */
    size_t cap;      /* allocated bytes */
    bool failed;     /* an append ran out of memory */
} strbuf;

#define STRBUF_INIT {NULL, 0, 0, false}

int strbuf_append(strbuf *b, const char *s, size_t n);
int strbuf_puts(strbuf *b, const char *s);
int strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0, n) as a JSON string literal with quotes: valid UTF-8 kept as
 * is, control characters escaped, bytes that are not valid UTF-8 replaced by
 * U+FFFD (so the output is always valid JSON). */
int strbuf_json_string(strbuf *b, const char *s, size_t n);
/* Removes the first n bytes. */
void strbuf_consume(strbuf *b, size_t n);
void strbuf_reset(strbuf *b);
/* Gives the caller the malloc'd data (an empty string if nothing was
 * appended, NULL on failure) and resets b. */
char *strbuf_take(strbuf *b);
void strbuf_free(strbuf *b);

#endif
