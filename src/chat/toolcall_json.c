/*
 * toolcall_json.c — strict JSON validation without a tree, for the
 * tool-call parsers (see toolcall_json.h). Recursive descent bounded by
 * TJSON_MAX_DEPTH; numbers and literals per RFC 8259; strings reject raw
 * control bytes and unknown escapes.
 */
#include "chat/toolcall_json.h"

#include "base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <ctype.h>
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

/* ---- the validating stream reader (tjson_stream, see toolcall_json.h) */

enum {
    JS_VALUE,       /* a value must start here */
    JS_OBJ_FIRST,   /* after '{': a key or '}' */
    JS_OBJ_KEY,     /* after ',' in an object: a key */
    JS_KEY,         /* inside a key string */
    JS_COLON,       /* after a key */
    JS_ARR_FIRST,   /* after '[': a value or ']' */
    JS_STR,         /* inside a string value */
    JS_NUM,         /* inside a number (sub: NUM_*) */
    JS_LIT,         /* inside true/false/null (sub: letters matched; lit below) */
    JS_AFTER,       /* after a value inside a container: ',' or its closer */
};
enum { NUM_MINUS, NUM_ZERO, NUM_INT, NUM_DOT, NUM_FRAC, NUM_E, NUM_ESIGN, NUM_EXP };

/* String sub-state, kept in sub: escape progress and UTF-8 continuation bytes due. */
enum { STR_PLAIN = 0, STR_ESC = 1, STR_U1 = 2 /* .. STR_U1 + 3 */, STR_UTF8 = 16 /* + bytes due */ };

static const char *const js_literals[] = {"true", "false", "null"};

void tjson_stream_init(tjson_stream *st) {
    memset(st, 0, sizeof *st);
    st->state = JS_VALUE;
}

/* A safe cut point at st->pos: the closer is the open string's quote (when
 * in_string) and the open containers' closing brackets. */
static void js_safe(tjson_stream *st, bool in_string) {
    st->safe = st->pos;
    int k = 0;
    if (in_string) st->closer[k++] = '"';
    for (int d = st->depth - 1; d >= 0; d--) st->closer[k++] = st->stack[d] == '{' ? '}' : ']';
    st->closer_len = k;
}

/* A value just ended: back in the container (or the whole value is done). */
static void js_value_end(tjson_stream *st) {
    if (st->depth == 0) {
        st->done = true;
        st->safe = st->pos;
        st->closer_len = 0;
        return;
    }
    st->state = JS_AFTER;
    js_safe(st, false);
}

static bool js_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* One byte; false when it cannot continue the text. Numbers and literals end
 * at the first byte that is not theirs, which is then read again (*again). */
static bool js_byte(tjson_stream *st, char c, bool *again) {
    unsigned char u = (unsigned char)c;
    *again = false;
    switch (st->state) {
    case JS_VALUE:
    value:
        if (js_is_ws(c)) return true;
        if (c == '{' || c == '[') {
            if (st->depth >= TJSON_MAX_DEPTH) return false;
            st->stack[st->depth++] = c;
            st->state = c == '{' ? JS_OBJ_FIRST : JS_ARR_FIRST;
            st->pos++;
            js_safe(st, false);
            st->pos--;
            return true;
        }
        if (c == '"') { st->state = JS_STR; st->sub = STR_PLAIN; st->pos++; js_safe(st, true); st->pos--; return true; }
        if (c == '-') { st->state = JS_NUM; st->sub = NUM_MINUS; return true; }
        if (c >= '0' && c <= '9') { st->state = JS_NUM; st->sub = c == '0' ? NUM_ZERO : NUM_INT; return true; }
        for (int i = 0; i < 3; i++)
            if (c == js_literals[i][0]) { st->state = JS_LIT; st->sub = i * 8 + 1; return true; }
        return false;
    case JS_ARR_FIRST:
        if (js_is_ws(c)) return true;
        if (c == ']') { st->depth--; st->pos++; js_value_end(st); st->pos--; return true; }
        st->state = JS_VALUE;
        goto value;
    case JS_OBJ_FIRST:
    case JS_OBJ_KEY:
        if (js_is_ws(c)) return true;
        if (c == '}' && st->state == JS_OBJ_FIRST) { st->depth--; st->pos++; js_value_end(st); st->pos--; return true; }
        if (c != '"') return false;
        st->state = JS_KEY;
        st->sub = STR_PLAIN;
        return true;
    case JS_COLON:
        if (js_is_ws(c)) return true;
        if (c != ':') return false;
        st->state = JS_VALUE;
        return true;
    case JS_KEY:
    case JS_STR: {
        bool key = st->state == JS_KEY;
        int sub = st->sub;
        if (sub >= STR_UTF8) {
            if ((u & 0xC0) != 0x80) return false;
            st->sub = sub - 1 == STR_UTF8 ? STR_PLAIN : sub - 1;
        } else if (sub == STR_ESC) {
            if (c == 'u') st->sub = STR_U1;
            else if (strchr("\"\\/bfnrt", c) && c) st->sub = STR_PLAIN;
            else return false;
        } else if (sub >= STR_U1 && sub < STR_U1 + 4) {
            if (!isxdigit(u)) return false;
            st->sub = sub == STR_U1 + 3 ? STR_PLAIN : sub + 1;
        } else if (c == '\\') {
            st->sub = STR_ESC;
        } else if (c == '"') {
            if (key) { st->state = JS_COLON; return true; }
            st->pos++;
            js_value_end(st);
            st->pos--;
            return true;
        } else if (u < 0x20) {
            return false;
        } else if (u >= 0x80) {
            int len = utf8_sequence_bytes(u);
            if (len < 2) return false;
            st->sub = STR_UTF8 + len - 1;
        }
        if (!key && st->sub == STR_PLAIN) { st->pos++; js_safe(st, true); st->pos--; }
        return true;
    }
    case JS_NUM: {
        bool digit = c >= '0' && c <= '9';
        switch (st->sub) {
        case NUM_MINUS: if (!digit) return false; st->sub = c == '0' ? NUM_ZERO : NUM_INT; return true;
        case NUM_DOT: if (!digit) return false; st->sub = NUM_FRAC; return true;
        case NUM_E: if (c == '+' || c == '-') { st->sub = NUM_ESIGN; return true; } /* fall through */
        case NUM_ESIGN: if (!digit) return false; st->sub = NUM_EXP; return true;
        case NUM_INT: case NUM_FRAC: case NUM_EXP:
            if (digit) return true;
            /* fall through */
        case NUM_ZERO:
            if (c == '.' && (st->sub == NUM_ZERO || st->sub == NUM_INT)) { st->sub = NUM_DOT; return true; }
            if ((c == 'e' || c == 'E') && st->sub != NUM_EXP) { st->sub = NUM_E; return true; }
            js_value_end(st);   /* the number ended before this byte */
            *again = true;
            return true;
        }
        return false;
    }
    case JS_LIT: {
        const char *lit = js_literals[st->sub / 8];
        int k = st->sub % 8;
        if (lit[k] == '\0') { js_value_end(st); *again = true; return true; }
        if (c != lit[k]) return false;
        st->sub++;
        if (lit[k + 1] == '\0') { st->pos++; js_value_end(st); st->pos--; }
        return true;
    }
    case JS_AFTER:
        if (js_is_ws(c)) return true;
        if (c == ',') { st->state = st->stack[st->depth - 1] == '{' ? JS_OBJ_KEY : JS_VALUE; return true; }
        if ((c == '}' && st->stack[st->depth - 1] == '{') || (c == ']' && st->stack[st->depth - 1] == '[')) {
            st->depth--;
            st->pos++;
            js_value_end(st);
            st->pos--;
            return true;
        }
        return false;
    }
    return false;
}

int tjson_stream_feed(tjson_stream *st, const char *s, size_t n) {
    if (st->bad) return -1;
    for (size_t i = 0; i < n && !st->done; i++) {
        bool again;
        if (!js_byte(st, s[i], &again)) { st->bad = true; return -1; }
        if (again) {
            if (st->done) return 1;             /* a top-level number ended: this byte is not its */
            i--;
            continue;
        }
        st->pos++;
    }
    return st->done ? 1 : 0;
}
