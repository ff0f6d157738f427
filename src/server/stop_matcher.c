/*
 * stop_matcher.c — see stop_matcher.h. After each piece, the held text is
 * searched for every stop string (earliest match wins); without a match, the
 * longest suffix of the held text that is a proper prefix of some stop
 * string stays held and the rest is released. Held text is at most the
 * longest stop string, so each feed costs O(piece + stops × longest stop²)
 * in the worst case, independent of the output length.
 */
#include "server/stop_matcher.h"

#include <string.h>

void stop_matcher_init(stop_matcher *m, char *const *stops, int n_stops) {
    memset(m, 0, sizeof *m);
    m->stops = stops;
    m->n_stops = n_stops;
}

void stop_matcher_free(stop_matcher *m) { strbuf_free(&m->held); }

/* Length of the longest suffix of s[0, n) that is a proper prefix of stop. */
static size_t partial_suffix(const char *s, size_t n, const char *stop) {
    size_t sl = strlen(stop);
    size_t max = n < sl - 1 ? n : sl - 1;
    for (size_t k = max; k > 0; k--)
        if (memcmp(s + n - k, stop, k) == 0) return k;
    return 0;
}

bool stop_matcher_feed(stop_matcher *m, const char *piece, size_t n, strbuf *out) {
    if (m->matched) return true;
    if (m->n_stops == 0) {
        strbuf_append(out, piece, n);
        return false;
    }
    strbuf_append(&m->held, piece, n);
    const char *h = m->held.data ? m->held.data : "";
    size_t hl = m->held.len;
    /* Earliest full match. */
    size_t best = hl + 1;
    for (int i = 0; i < m->n_stops; i++) {
        const char *at = memmem(h, hl, m->stops[i], strlen(m->stops[i]));
        if (at && (size_t)(at - h) < best) {
            best = (size_t)(at - h);
            m->matched_index = i;
        }
    }
    if (best <= hl) {
        strbuf_append(out, h, best);
        strbuf_reset(&m->held);
        m->matched = true;
        return true;
    }
    size_t keep = 0;
    for (int i = 0; i < m->n_stops; i++) {
        size_t k = partial_suffix(h, hl, m->stops[i]);
        if (k > keep) keep = k;
    }
    strbuf_append(out, h, hl - keep);
    strbuf_consume(&m->held, hl - keep);
    return false;
}

void stop_matcher_flush(stop_matcher *m, strbuf *out) {
    if (!m->matched && m->held.len) strbuf_append(out, m->held.data, m->held.len);
    strbuf_reset(&m->held);
}
