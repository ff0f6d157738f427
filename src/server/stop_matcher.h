/*
 * stop_matcher.h — stop strings matched on generated text across token
 * boundaries, never emitted.
 *
 * Text is fed piece by piece (as the detokenizer produces it). The matcher
 * releases text as soon as it cannot be the start of a stop string, holds
 * back the longest tail that still could be, and reports a match: the text
 * before the stop string is released and everything from it on is dropped.
 * Released text never splits a UTF-8 character (pieces are whole characters
 * and stop strings are valid UTF-8, so a held-back tail starts on a character
 * boundary).
 */
#ifndef LARDER_SERVER_STOP_MATCHER_H
#define LARDER_SERVER_STOP_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/strbuf.h"

typedef struct stop_matcher {
    char *const *stops;   /* n_stops NUL-terminated, non-empty (not owned) */
    int n_stops;
    strbuf held;          /* text not yet released */
    bool matched;
    int matched_index;    /* which stop string matched (valid once matched) */
} stop_matcher;

void stop_matcher_init(stop_matcher *m, char *const *stops, int n_stops);
void stop_matcher_free(stop_matcher *m);

/* Feeds piece[0, n); appends releasable text to out. Returns true once a stop
 * string matched (the text before it has been appended; feed nothing more). */
bool stop_matcher_feed(stop_matcher *m, const char *piece, size_t n, strbuf *out);

/* End of generation: releases what is held. */
void stop_matcher_flush(stop_matcher *m, strbuf *out);

#endif
