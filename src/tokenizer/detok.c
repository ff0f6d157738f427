/*
 * detok.c — streaming detokenizer (see detok.h). The pending bytes plus the
 * new piece are scanned with strict UTF-8 rules: complete valid characters
 * are copied out, invalid bytes become U+FFFD, and a valid-so-far but cut-off
 * character at the end stays pending.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/detok.h"

void detok_init(detok *d, const tokenizer *tok, bool render_special, bool strip_leading_space) {
    memset(d, 0, sizeof *d);
    d->tok = tok;
    d->render_special = render_special;
    d->strip_leading_space = strip_leading_space && tokenizer_add_space_prefix(tok);
}

void detok_free(detok *d) {
    free(d->pending);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* Length of the valid UTF-8 sequence at s[0..n): >0 complete, 0 when it is
 * valid so far but cut off by the end, -1 when invalid (one byte to replace). */
static int seq_len(const unsigned char *s, size_t n) {
    unsigned char b0 = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) { need = 3; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
    else if (b0 >= 0xF0 && b0 <= 0xF4) { need = 4; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
    else return -1;
    for (size_t k = 1; k < need; k++) {
        if (k >= n) return 0;
        unsigned char b = s[k];
        if (k == 1 ? (b < lo || b > hi) : ((b & 0xC0) != 0x80)) return -1;
    }
    return (int)need;
}

/* Moves the finished part of pending+piece into d->out. */
static int emit(detok *d, const char *piece, size_t plen, bool final, const char **text, size_t *len,
                larder_error *err) {
    size_t n = d->n_pending + plen;
    char *buf = realloc(d->pending, n ? n : 1);
    if (!buf) return error_set(err, ERR_NOMEM, "out of memory");
    d->pending = buf;
    memcpy(buf + d->n_pending, piece, plen);
    size_t need = n * 3 + 4; /* each invalid byte may become 3 bytes */
    if (need > d->out_cap) {
        char *no = realloc(d->out, need);
        if (!no) return error_set(err, ERR_NOMEM, "out of memory");
        d->out = no;
        d->out_cap = need;
    }
    size_t i = 0, w = 0;
    while (i < n) {
        int k = seq_len((const unsigned char *)buf + i, n - i);
        if (k > 0) {
            memcpy(d->out + w, buf + i, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
        } else if (k == 0 && !final) {
            break; /* unfinished character: keep it */
        } else {
            memcpy(d->out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i += (k == 0) ? n - i : 1; /* at the end, an unfinished tail is one U+FFFD */
        }
    }
    memmove(buf, buf + i, n - i);
    d->n_pending = n - i;
    *text = d->out;
    *len = w;
    return 0;
}

int detok_push(detok *d, int32_t id, const char **text, size_t *len, larder_error *err) {
    if (tokenizer_check_id(d->tok, id, err)) return -1;
    size_t plen;
    const char *piece = tokenizer_piece(d->tok, id, d->render_special, &plen);
    if (!d->started && d->strip_leading_space && plen && piece[0] == ' ') {
        piece++;
        plen--;
    }
    d->started = true;
    return emit(d, piece, plen, false, text, len, err);
}

int detok_flush(detok *d, const char **text, size_t *len, larder_error *err) {
    return emit(d, "", 0, true, text, len, err);
}
