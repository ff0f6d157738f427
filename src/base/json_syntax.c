/*
 * json_syntax.c — is a text one JSON value? (see json_syntax.h)
 */
#include "base/json_syntax.h"

#include <stdint.h>
#include <string.h>

/* ---- the grammar (RFC 8259), iteratively: a stack of open containers */

static size_t skip_ws(const char *t, size_t i, size_t n) {
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
    return i;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A scalar at t[i]: its end, or 0 when it is not one. */
static size_t scalar_end(const char *t, size_t i, size_t n) {
    if (t[i] == '"') {
        for (i++; i < n; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c == '"') return i + 1;
            if (c < 0x20) return 0;
            if (c == '\\') {
                if (++i >= n) return 0;
                if (t[i] == 'u') {
                    for (int k = 1; k <= 4; k++)
                        if (i + (size_t)k >= n || !strchr("0123456789abcdefABCDEF", t[i + (size_t)k]) || !t[i + (size_t)k]) return 0;
                    i += 4;
                } else if (!strchr("\"\\/bfnrt", t[i]) || !t[i]) {
                    return 0;
                }
            }
        }
        return 0;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t l = strlen(words[w]);
        if (n - i >= l && !memcmp(t + i, words[w], l)) return i + l;
    }
    size_t s = i;
    if (i < n && t[i] == '-') i++;
    if (i >= n || !is_digit(t[i])) return 0;
    if (t[i] == '0') i++;
    else while (i < n && is_digit(t[i])) i++;
    if (i < n && t[i] == '.') {
        if (++i >= n || !is_digit(t[i])) return 0;
        while (i < n && is_digit(t[i])) i++;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        if (++i < n && (t[i] == '+' || t[i] == '-')) i++;
        if (i >= n || !is_digit(t[i])) return 0;
        while (i < n && is_digit(t[i])) i++;
    }
    return i > s ? i : 0;
}

bool json_syntax_ok(const char *t, size_t n, int max_depth) {
    /* stack of open containers as bits: 1 object, 0 array (depth <= max_depth) */
    size_t words = (size_t)(max_depth > 0 ? max_depth : 1) / 64 + 1;
    uint64_t stack_bits[64];
    if (words > sizeof stack_bits / sizeof stack_bits[0]) return false;
    memset(stack_bits, 0, sizeof stack_bits);
    int depth = 0;
    size_t i = skip_ws(t, 0, n);
    for (;;) {
        /* a value */
        if (i >= n) return false;
        if (t[i] == '{' || t[i] == '[') {
            if (++depth > max_depth) return false;
            bool obj = t[i] == '{';
            if (obj) stack_bits[(depth - 1) / 64] |= (uint64_t)1 << ((depth - 1) % 64);
            else stack_bits[(depth - 1) / 64] &= ~((uint64_t)1 << ((depth - 1) % 64));
            i = skip_ws(t, i + 1, n);
            if (i < n && t[i] == (obj ? '}' : ']')) {
                depth--;
                i++;
            } else {
                if (obj) { /* first key */
                    size_t e = i < n && t[i] == '"' ? scalar_end(t, i, n) : 0;
                    if (!e) return false;
                    i = skip_ws(t, e, n);
                    if (i >= n || t[i] != ':') return false;
                    i = skip_ws(t, i + 1, n);
                }
                continue;
            }
        } else {
            size_t e = scalar_end(t, i, n);
            if (!e) return false;
            i = e;
        }
        /* after a value: close containers or go on to the next element */
        for (;;) {
            i = skip_ws(t, i, n);
            if (depth == 0) return i == n;
            bool obj = (stack_bits[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
            if (i >= n) return false;
            if (t[i] == (obj ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            if (t[i] != ',') return false;
            i = skip_ws(t, i + 1, n);
            if (obj) {
                size_t e = i < n && t[i] == '"' ? scalar_end(t, i, n) : 0;
                if (!e) return false;
                i = skip_ws(t, e, n);
                if (i >= n || t[i] != ':') return false;
                i = skip_ws(t, i + 1, n);
            }
            break;
        }
    }
}

