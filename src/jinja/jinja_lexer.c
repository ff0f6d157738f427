/*
 * jinja_lexer.c — Jinja2's lexer rules, written out by hand.
 *
 * Root state: text up to the next `{{`, `{%` or `{#`. A `-` after the opener
 * strips all whitespace before the tag; otherwise (no `+`) a block or comment
 * tag alone on its line since the last newline loses that line's indentation
 * (lstrip_blocks). Block and comment ends `%}`/`#}` eat one following "\n"
 * (trim_blocks); `-%}`/`-}}`/`-#}` eat all following whitespace; `+%}` eats
 * nothing. `{% raw %}...{% endraw %}` is text. Inside a tag, end markers only
 * count while (), [] and {} are balanced, like Jinja2.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja/jinja_lexer.h"

typedef struct lexer {
    jarena *a;
    const char *s;  /* normalized source */
    size_t n, pos;
    int line;
    jtok *toks;
    size_t n_toks, cap;
    larder_error *err;
} lexer;

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || (c >= 0x1c && c <= 0x1f); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static int count_lines(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

static jtok *push(lexer *L, jtok_type t, const char *s, size_t n) {
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *nt = jarena_alloc(L->a, cap * sizeof(jtok));
        if (!nt) { error_set(L->err, ERR_NOMEM, "out of memory lexing the template"); return NULL; }
        if (L->n_toks) memcpy(nt, L->toks, L->n_toks * sizeof(jtok));
        L->toks = nt;
        L->cap = cap;
    }
    jtok *t_ = &L->toks[L->n_toks++];
    memset(t_, 0, sizeof *t_);
    t_->type = t;
    t_->line = L->line;
    t_->s = s;
    t_->n = n;
    return t_;
}

static int fail(lexer *L, const char *msg) {
    return error_set(L->err, ERR_FORMAT, "line %d: %s", L->line, msg);
}

/* Appends the code point cp as UTF-8. */
static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal at L->pos (quote q); decodes Python escapes. */
static int lex_string(lexer *L) {
    char q = L->s[L->pos];
    size_t start = L->pos + 1, i = start;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\' && i + 1 < L->n) i++;
        i++;
    }
    if (i >= L->n) return fail(L, "unexpected end of string");
    size_t raw_n = i - start;
    char *o = jarena_alloc(L->a, raw_n * 2 + 8); /* an escape never expands past 4 bytes for 2+ input */
    if (!o) return error_set(L->err, ERR_NOMEM, "out of memory lexing the template");
    size_t on = 0;
    const char *p = L->s + start, *e = L->s + i;
    while (p < e) {
        if (*p != '\\' || p + 1 >= e) { o[on++] = *p++; continue; }
        char c = p[1];
        p += 2;
        switch (c) {
        case '\n': break;
        case '\\': o[on++] = '\\'; break;
        case '\'': o[on++] = '\''; break;
        case '"': o[on++] = '"'; break;
        case 'a': o[on++] = 7; break;
        case 'b': o[on++] = 8; break;
        case 'f': o[on++] = 12; break;
        case 'n': o[on++] = '\n'; break;
        case 'r': o[on++] = '\r'; break;
        case 't': o[on++] = '\t'; break;
        case 'v': o[on++] = 11; break;
        case 'x': case 'u': case 'U': {
            int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = p + k < e ? hexval(p[k]) : -1;
                if (h < 0) return fail(L, "truncated \\x/\\u escape in a string");
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail(L, "invalid code point escape in a string");
            p += digits;
            on += put_utf8(o + on, cp);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                uint32_t cp = (uint32_t)(c - '0');
                for (int k = 0; k < 2 && p < e && *p >= '0' && *p <= '7'; k++) cp = cp * 8 + (uint32_t)(*p++ - '0');
                on += put_utf8(o + on, cp);
            } else {
                o[on++] = '\\';
                o[on++] = c;
            }
        }
    }
    o[on] = '\0';
    jtok *t = push(L, JT_STRING, o, on);
    if (!t) return -1;
    L->line += count_lines(L->s + L->pos, i + 1 - L->pos);
    L->pos = i + 1;
    return 0;
}

/* Digits with single underscores between them at p; returns the end. */
static size_t scan_digits(const char *s, size_t n, size_t p) {
    if (p >= n || !is_digit(s[p])) return p;
    while (p < n) {
        if (is_digit(s[p])) p++;
        else if (s[p] == '_' && p + 1 < n && is_digit(s[p + 1])) p++;
        else break;
    }
    return p;
}

static int lex_number(lexer *L) {
    size_t p0 = L->pos, p = scan_digits(L->s, L->n, p0);
    bool is_float = false;
    bool after_dot = p0 > 0 && L->s[p0 - 1] == '.';
    if (!after_dot) {
        size_t q = p;
        if (q + 1 < L->n && L->s[q] == '.' && is_digit(L->s[q + 1])) {
            q = scan_digits(L->s, L->n, q + 1);
            is_float = true;
        }
        if (q < L->n && (L->s[q] == 'e' || L->s[q] == 'E') && L->s[q] == 'e') {
            size_t r = q + 1;
            if (r < L->n && (L->s[r] == '+' || L->s[r] == '-')) r++;
            size_t r2 = scan_digits(L->s, L->n, r);
            if (r2 > r) { q = r2; is_float = true; }
        }
        if (is_float) p = q;
    }
    char buf[128];
    size_t bn = 0;
    for (size_t i = p0; i < p && bn + 1 < sizeof buf; i++)
        if (L->s[i] != '_') buf[bn++] = L->s[i];
    buf[bn] = '\0';
    if (p - p0 >= sizeof buf - 1) return fail(L, "number literal too long");
    jtok *t = push(L, is_float ? JT_FLOAT : JT_INT, L->s + p0, p - p0);
    if (!t) return -1;
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        int64_t v = 0;
        for (size_t i = 0; i < bn; i++) {
            if (v > (INT64_MAX - (buf[i] - '0')) / 10) return fail(L, "integer literal too large");
            v = v * 10 + (buf[i] - '0');
        }
        t->i = v;
    }
    L->pos = p;
    return 0;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", ">=", "<="};
static const char OPS1[] = "+-/*%~[](){}><=.:|,;";

/* Tokens inside {{ }} or {% %} up to the end marker. is_block selects %}. */
static int lex_tag(lexer *L, bool is_block, bool *line_starting) {
    char stack[JINJA_MAX_PARSE_DEPTH];
    int depth = 0;
    char endc = is_block ? '%' : '}';
    for (;;) {
        while (L->pos < L->n && is_space((unsigned char)L->s[L->pos])) {
            if (L->s[L->pos] == '\n') L->line++;
            L->pos++;
        }
        if (L->pos >= L->n) return fail(L, is_block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
        const char *s = L->s + L->pos;
        size_t left = L->n - L->pos;
        if (depth == 0) {
            size_t m = 0;
            bool strip_after = false, trim_nl = false;
            if (left >= 3 && (s[0] == '-' || (s[0] == '+' && is_block)) && s[1] == endc && s[2] == '}') {
                m = 3;
                strip_after = s[0] == '-';
            } else if (left >= 2 && s[0] == endc && s[1] == '}') {
                m = 2;
                trim_nl = is_block;
            }
            if (m) {
                if (!push(L, is_block ? JT_BLOCK_END : JT_VAR_END, s, m)) return -1;
                L->pos += m;
                char last = s[m - 1];
                if (strip_after) {
                    while (L->pos < L->n && is_space((unsigned char)L->s[L->pos])) {
                        last = L->s[L->pos];
                        if (last == '\n') L->line++;
                        L->pos++;
                    }
                } else if (trim_nl && L->pos < L->n && L->s[L->pos] == '\n') {
                    last = '\n';
                    L->line++;
                    L->pos++;
                }
                *line_starting = last == '\n';
                return 0;
            }
        }
        char c = s[0];
        if (is_digit(c)) {
            if (lex_number(L)) return -1;
        } else if (is_name_start(c)) {
            size_t k = 1;
            while (k < left && is_name_char(s[k])) k++;
            if (!push(L, JT_NAME, s, k)) return -1;
            L->pos += k;
        } else if (c == '\'' || c == '"') {
            if (lex_string(L)) return -1;
        } else {
            size_t k = 0;
            for (size_t o = 0; o < sizeof OPS2 / sizeof OPS2[0]; o++)
                if (left >= 2 && s[0] == OPS2[o][0] && s[1] == OPS2[o][1]) k = 2;
            if (!k && c && strchr(OPS1, c)) k = 1;
            if (!k) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected char '%c'", c >= 0x20 && c < 0x7f ? c : '?');
                return fail(L, msg);
            }
            if (k == 1 && (c == '(' || c == '[' || c == '{')) {
                if (depth >= JINJA_MAX_PARSE_DEPTH) return error_set(L->err, ERR_LIMIT, "line %d: brackets nested deeper than %d", L->line, JINJA_MAX_PARSE_DEPTH);
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (k == 1 && (c == ')' || c == ']' || c == '}')) {
                char msg[64];
                if (!depth) { snprintf(msg, sizeof msg, "unexpected '%c'", c); return fail(L, msg); }
                if (stack[depth - 1] != c) { snprintf(msg, sizeof msg, "unexpected '%c', expected '%c'", c, stack[depth - 1]); return fail(L, msg); }
                depth--;
            }
            if (!push(L, JT_OP, s, k)) return -1;
            L->pos += k;
        }
    }
}

/* Emits text[0, n) as data after whitespace control for a following tag. */
static int emit_data(lexer *L, size_t start, size_t end, char sign, bool lstrip_ok, bool line_starting) {
    if (sign == '-') {
        while (end > start && is_space((unsigned char)L->s[end - 1])) end--;
    } else if (sign != '+' && lstrip_ok) {
        size_t l = end;
        while (l > start && L->s[l - 1] != '\n') l--;
        if (l > start || line_starting) {
            bool ws = true;
            for (size_t i = l; i < end; i++)
                if (!is_space((unsigned char)L->s[i])) { ws = false; break; }
            if (ws) end = l;
        }
    }
    if (end > start && !push(L, JT_DATA, L->s + start, end - start)) return -1;
    return 0;
}

/* Matches `{%(-|+|)\s*NAME\s*` at p; returns the position after it or 0. */
static size_t match_tag_word(const lexer *L, size_t p, const char *word, char *sign) {
    if (p + 2 > L->n || L->s[p] != '{' || L->s[p + 1] != '%') return 0;
    p += 2;
    *sign = 0;
    if (p < L->n && (L->s[p] == '-' || L->s[p] == '+')) *sign = L->s[p++];
    while (p < L->n && is_space((unsigned char)L->s[p])) p++;
    size_t wn = strlen(word);
    if (p + wn > L->n || memcmp(L->s + p, word, wn)) return 0;
    p += wn;
    if (p < L->n && is_name_char(L->s[p])) return 0;
    while (p < L->n && is_space((unsigned char)L->s[p])) p++;
    return p;
}

/* src with "\r\n" and "\r" made "\n" and one trailing newline dropped
 * (keep_trailing_newline=False), NUL-terminated, in the arena; NULL when out
 * of memory. */
static char *normalize_newlines(jarena *a, const char *src, size_t len, size_t *n_out) {
    char *s = jarena_alloc(a, len + 1);
    if (!s) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = '\0';
    *n_out = n;
    return s;
}

/* The next "{{", "{%" or "{#" at or after L->pos, or NULL. */
static const char *next_tag_opener(const lexer *L) {
    size_t p = L->pos;
    while (p + 1 < L->n) {
        const char *q = memchr(L->s + p, '{', L->n - p - 1);
        if (!q) return NULL;
        if (q[1] == '{' || q[1] == '%' || q[1] == '#') return q;
        p = (size_t)(q - L->s) + 1;
    }
    return NULL;
}

/* {% raw %} at tag, its name ending at raw_end: the body up to
 * {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?) is one data token. */
static int lex_raw(lexer *L, size_t tag, size_t raw_end, bool *line_starting) {
    size_t p2 = raw_end;
    if (L->s[p2] == '-') {
        p2 += 3;
        while (p2 < L->n && is_space((unsigned char)L->s[p2])) p2++;
    } else {
        p2 += 2;
    }
    L->line += count_lines(L->s + tag, p2 - tag);
    *line_starting = L->s[p2 - 1] == '\n';
    size_t q = p2;
    size_t body_end = 0, after = 0;
    char esign = 0;
    while (q + 1 < L->n) {
        const char *h = memchr(L->s + q, '{', L->n - q - 1);
        if (!h) break;
        size_t hp = (size_t)(h - L->s);
        size_t e = match_tag_word(L, hp, "endraw", &esign);
        if (e) {
            if (e + 2 < L->n && (L->s[e] == '+' || L->s[e] == '-') && L->s[e + 1] == '%' && L->s[e + 2] == '}') {
                after = e + 3;
                if (L->s[e] == '-')
                    while (after < L->n && is_space((unsigned char)L->s[after])) after++;
            } else if (e + 1 < L->n && L->s[e] == '%' && L->s[e + 1] == '}') {
                after = e + 2;
                if (after < L->n && L->s[after] == '\n') after++;
            }
            if (after) { body_end = hp; break; }
        }
        q = hp + 1;
    }
    if (!after) return fail(L, "missing end of raw directive");
    if (emit_data(L, p2, body_end, esign, true, *line_starting)) return -1;
    L->line += count_lines(L->s + p2, after - p2);
    *line_starting = L->s[after - 1] == '\n';
    L->pos = after;
    return 0;
}

/* A {# comment #} whose body starts at L->pos: skipped, with its
 * whitespace control. */
static int lex_comment(lexer *L, bool *line_starting) {
    size_t q = L->pos;
    const char *e = NULL;
    while (q + 1 < L->n) {
        const char *h = memchr(L->s + q, '#', L->n - q - 1);
        if (!h) break;
        if (h[1] == '}') { e = h; break; }
        q = (size_t)(h - L->s) + 1;
    }
    if (!e) return fail(L, "missing end of comment tag");
    size_t ep = (size_t)(e - L->s), after = ep + 2;
    char csign = ep > L->pos && (L->s[ep - 1] == '-' || L->s[ep - 1] == '+') ? L->s[ep - 1] : 0;
    if (csign == '-') {
        while (after < L->n && is_space((unsigned char)L->s[after])) after++;
    } else if (csign != '+' && after < L->n && L->s[after] == '\n') {
        after++;
    }
    L->line += count_lines(L->s + L->pos, after - L->pos);
    *line_starting = L->s[after - 1] == '\n';
    L->pos = after;
    return 0;
}

int jinja_lex(jarena *a, const char *src, size_t len, jtok **toks, size_t *n_toks, larder_error *err) {
    size_t n = 0;
    char *s = normalize_newlines(a, src, len, &n);
    if (!s) return error_set(err, ERR_NOMEM, "out of memory lexing the template");
    lexer L = {.a = a, .s = s, .n = n, .pos = 0, .line = 1, .err = err};
    bool line_starting = true;
    while (L.pos < L.n) {
        const char *hit = next_tag_opener(&L);
        if (!hit) {
            if (!push(&L, JT_DATA, L.s + L.pos, L.n - L.pos)) return -1;
            L.line += count_lines(L.s + L.pos, L.n - L.pos);
            break;
        }
        size_t tag = (size_t)(hit - L.s);
        char kind = hit[1];
        char sign = tag + 2 < L.n && (L.s[tag + 2] == '-' || L.s[tag + 2] == '+') ? L.s[tag + 2] : 0;
        char rs = 0;
        size_t raw_end = kind == '%' ? match_tag_word(&L, tag, "raw", &rs) : 0;
        if (raw_end) {
            bool closed = (raw_end + 2 < L.n && L.s[raw_end] == '-' && L.s[raw_end + 1] == '%' && L.s[raw_end + 2] == '}') ||
                          (raw_end + 1 < L.n && L.s[raw_end] == '%' && L.s[raw_end + 1] == '}');
            if (!closed) raw_end = 0;
        }
        if (emit_data(&L, L.pos, tag, sign, kind != '{', line_starting)) return -1;
        L.line += count_lines(L.s + L.pos, tag - L.pos);
        L.pos = tag + 2 + (sign ? 1 : 0);
        if (raw_end) {
            if (lex_raw(&L, tag, raw_end, &line_starting)) return -1;
            continue;
        }
        if (kind == '#') {
            if (lex_comment(&L, &line_starting)) return -1;
            continue;
        }
        bool is_block = kind == '%';
        if (!push(&L, is_block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, L.s + tag, 2)) return -1;
        if (lex_tag(&L, is_block, &line_starting)) return -1;
    }
    if (!push(&L, JT_EOF, L.s + L.n, 0)) return -1;
    *toks = L.toks;
    *n_toks = L.n_toks;
    return 0;
}
