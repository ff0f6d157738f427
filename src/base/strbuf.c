/*
 * strbuf.c — growable byte string (see strbuf.h). Capacity doubles, so n
 * appends cost O(total bytes).
 */
#include "base/strbuf.h"

#include "base/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(strbuf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->failed = true;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int strbuf_append(strbuf *b, const char *s, size_t n) {
    if (reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int strbuf_puts(strbuf *b, const char *s) { return strbuf_append(b, s, strlen(s)); }

int strbuf_printf(strbuf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) {
        va_end(ap2);
        b->failed = true;
        return -1;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int strbuf_json_string(strbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (strbuf_append(b, "\"", 1)) return -1;
    size_t i = 0, start = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            /* A whole valid character passes; a byte that starts none becomes U+FFFD. */
            size_t window = n - i < 4 ? n - i : 4;
            size_t len = (size_t)utf8_sequence_bytes(c);
            if (len && utf8_valid_prefix(s + i, window) >= len) {
                i += len;
                continue;
            }
            strbuf_append(b, s + start, i - start);
            strbuf_append(b, "\\ufffd", 6);
            start = ++i;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        strbuf_append(b, s + start, i - start);
        start = ++i;
        switch (c) {
        case '"': strbuf_append(b, "\\\"", 2); break;
        case '\\': strbuf_append(b, "\\\\", 2); break;
        case '\n': strbuf_append(b, "\\n", 2); break;
        case '\r': strbuf_append(b, "\\r", 2); break;
        case '\t': strbuf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            strbuf_append(b, u, 6);
        }
        }
    }
    strbuf_append(b, s + start, n - start);
    return strbuf_append(b, "\"", 1);
}

void strbuf_consume(strbuf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data) b->data[b->len] = '\0';
}

void strbuf_reset(strbuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *strbuf_take(strbuf *b) {
    if (b->failed) {
        strbuf_free(b);
        return NULL;
    }
    char *d = b->data;
    if (!d) d = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void strbuf_free(strbuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
