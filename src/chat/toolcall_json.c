/*
 * toolcall_json.c — strict JSON validation without a tree, for the
 * tool-call parsers (see toolcall_json.h). Recursive descent bounded by
 * TJSON_MAX_DEPTH; numbers and literals per RFC 8259; strings reject raw
 * control bytes and unknown escapes.
 */
#include "chat/toolcall_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t tjson_skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* s[i] == '"': index past the closing quote, or TJSON_BAD. */
static size_t string_end(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') return i + 1;
        if (c < 0x20) return TJSON_BAD;
        if (c == '\\') {
            if (++i >= n) return TJSON_BAD;
            switch (s[i]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': break;
            case 'u':
                if (n - i < 5) return TJSON_BAD;
                for (int k = 1; k <= 4; k++)
                    if (hex_val(s[i + k]) < 0) return TJSON_BAD;
                i += 4;
                break;
            default: return TJSON_BAD;
            }
        }
    }
    return TJSON_BAD;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t number_end(const char *s, size_t n, size_t i) {
    if (i < n && s[i] == '-') i++;
    if (i >= n || !is_digit(s[i])) return TJSON_BAD;
    if (s[i] == '0') i++;
    else while (i < n && is_digit(s[i])) i++;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) return TJSON_BAD;
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !is_digit(s[i])) return TJSON_BAD;
        while (i < n && is_digit(s[i])) i++;
    }
    return i;
}

static size_t value_end(const char *s, size_t n, size_t i, int depth);

static size_t container_end(const char *s, size_t n, size_t i, int depth) {
    char close = s[i] == '{' ? '}' : ']';
    bool object = s[i] == '{';
    if (depth >= TJSON_MAX_DEPTH) return TJSON_BAD;
    i = tjson_skip_ws(s, n, i + 1);
    if (i < n && s[i] == close) return i + 1;
    for (;;) {
        if (object) {
            if (i >= n || s[i] != '"') return TJSON_BAD;
            i = string_end(s, n, i);
            if (i == TJSON_BAD) return TJSON_BAD;
            i = tjson_skip_ws(s, n, i);
            if (i >= n || s[i] != ':') return TJSON_BAD;
            i = tjson_skip_ws(s, n, i + 1);
        }
        i = value_end(s, n, i, depth + 1);
        if (i == TJSON_BAD) return TJSON_BAD;
        i = tjson_skip_ws(s, n, i);
        if (i >= n) return TJSON_BAD;
        if (s[i] == close) return i + 1;
        if (s[i] != ',') return TJSON_BAD;
        i = tjson_skip_ws(s, n, i + 1);
    }
}

static size_t literal_end(const char *s, size_t n, size_t i, const char *lit) {
    size_t len = strlen(lit);
    if (n - i < len || memcmp(s + i, lit, len) != 0) return TJSON_BAD;
    return i + len;
}

static size_t value_end(const char *s, size_t n, size_t i, int depth) {
    if (i >= n) return TJSON_BAD;
    switch (s[i]) {
    case '{': case '[': return container_end(s, n, i, depth);
    case '"': return string_end(s, n, i);
    case 't': return literal_end(s, n, i, "true");
    case 'f': return literal_end(s, n, i, "false");
    case 'n': return literal_end(s, n, i, "null");
    default: return number_end(s, n, i);
    }
}

size_t tjson_value_end(const char *s, size_t n, size_t i) { return value_end(s, n, i, 0); }

bool tjson_is_value(const char *s, size_t n) {
    size_t i = tjson_skip_ws(s, n, 0);
    size_t e = tjson_value_end(s, n, i);
    return e != TJSON_BAD && tjson_skip_ws(s, n, e) == n;
}

/* Shared walk for objects (with keys) and arrays. */
static int member_next(const char *s, size_t n, size_t *i, bool *first, bool object,
                       size_t *k0, size_t *k1, size_t *v0, size_t *v1) {
    char close = object ? '}' : ']';
    size_t j = *i;
    if (*first) {
        if (j >= n || s[j] != (object ? '{' : '[')) return -1;
        j = tjson_skip_ws(s, n, j + 1);
        *first = false;
        if (j < n && s[j] == close) { *i = j + 1; return 0; }
    } else {
        j = tjson_skip_ws(s, n, j);
        if (j < n && s[j] == close) { *i = j + 1; return 0; }
        if (j >= n || s[j] != ',') return -1;
        j = tjson_skip_ws(s, n, j + 1);
    }
    if (object) {
        if (j >= n || s[j] != '"') return -1;
        size_t e = string_end(s, n, j);
        if (e == TJSON_BAD) return -1;
        *k0 = j + 1;
        *k1 = e - 1;
        j = tjson_skip_ws(s, n, e);
        if (j >= n || s[j] != ':') return -1;
        j = tjson_skip_ws(s, n, j + 1);
    }
    size_t e = tjson_value_end(s, n, j);
    if (e == TJSON_BAD) return -1;
    *v0 = j;
    *v1 = e;
    *i = e;
    return 1;
}

int tjson_object_next(const char *s, size_t n, size_t *i, bool *first,
                      size_t *k0, size_t *k1, size_t *v0, size_t *v1) {
    return member_next(s, n, i, first, true, k0, k1, v0, v1);
}

int tjson_array_next(const char *s, size_t n, size_t *i, bool *first, size_t *v0, size_t *v1) {
    size_t k0, k1;
    return member_next(s, n, i, first, false, &k0, &k1, v0, v1);
}

/* Writes code point cp as UTF-8 at out (room for 4 bytes); returns bytes. */
static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *s) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v = v * 16 + (uint32_t)hex_val(s[k]);
    return v;
}

char *tjson_string_decode(const char *s, size_t n, size_t *out_len) {
    if (n < 2 || s[0] != '"' || string_end(s, n, 0) != n) return NULL;
    /* Decoded text is never longer than the literal (\uXXXX: 6 bytes -> at most
     * 3; a surrogate pair: 12 -> 4). */
    char *out = malloc(n);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (s[i] != '\\') { out[o++] = s[i]; continue; }
        char e = s[++i];
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(s + i + 1);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
                uint32_t lo = hex4(s + i + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate */
            if (cp == 0) { free(out); return NULL; }
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = e; break; /* " \ / */
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

size_t tjson_scan_feed(tjson_scan *sc, const char *s, size_t from, size_t n, size_t *bad_at) {
    for (size_t i = from; i < n; i++) {
        char c = s[i];
        if (sc->in_string) {
            if (sc->escape) sc->escape = false;
            else if (c == '\\') sc->escape = true;
            else if (c == '"') sc->in_string = false;
            continue;
        }
        if (!sc->started) {
            if (c != '{' && c != '[') { *bad_at = i; return TJSON_BAD; }
            sc->started = true;
        }
        switch (c) {
        case '{': case '[':
            if (++sc->depth > TJSON_MAX_DEPTH) { *bad_at = i; return TJSON_BAD; }
            break;
        case '}': case ']':
            if (--sc->depth == 0) return i + 1;
            break;
        case '"': sc->in_string = true; break;
        case ':': case ',': case '-': case '+': case '.': case ' ': case '\t': case '\n': case '\r':
            break;
        default:
            /* digits and the letters of true/false/null/exponents */
            if (!is_digit(c) && !(c >= 'a' && c <= 'z') && c != 'E') { *bad_at = i; return TJSON_BAD; }
            break;
        }
    }
    return TJSON_SCAN_MORE;
}
