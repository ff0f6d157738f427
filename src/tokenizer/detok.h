/*
 * detok.h — streaming detokenizer: token ids in, one at a time; only whole,
 * valid UTF-8 out. The server and `larder generate` stream through it.
 *
 * A character may span several tokens (byte-fallback <0xXX> tokens, byte-level
 * BPE pieces of a CJK character or an emoji): bytes of an unfinished
 * character are held back until the character completes. Bytes that can never
 * become valid UTF-8 are replaced by U+FFFD, so the output is always valid
 * (safe to put in JSON). Control tokens render as their text only when asked.
 * The SPM leading space (the space the tokenizer prefixed to the text) is
 * dropped from the first token only with strip_leading_space (decoding a text
 * from its start), not when streaming a continuation.
 */
#ifndef LARDER_TOKENIZER_DETOK_H
#define LARDER_TOKENIZER_DETOK_H

#include <stdbool.h>
#include <stddef.h>

#include "tokenizer/tokenizer.h"

typedef struct detok {
    const tokenizer *tok;
    bool render_special;      /* control tokens as text */
    bool strip_leading_space; /* drop one leading space of the first piece (SPM) */
    bool started;             /* a token has been pushed */
    char *pending;            /* bytes of an unfinished character (<= 3) and scratch */
    size_t n_pending;
    char *out;                /* text returned by the last call */
    size_t out_cap;
} detok;

void detok_init(detok *d, const tokenizer *tok, bool render_special, bool strip_leading_space);
void detok_free(detok *d);

/* Feeds one token. *text and *len receive the newly completed text (possibly
 * empty), valid until the next call. Returns 0, or -1 with err set
 * (ERR_INVALID for an id out of range, ERR_NOMEM). */
int detok_push(detok *d, int32_t id, const char **text, size_t *len, larder_error *err);

/* Ends the stream: an unfinished character comes out as U+FFFD. */
int detok_flush(detok *d, const char **text, size_t *len, larder_error *err);

#endif
