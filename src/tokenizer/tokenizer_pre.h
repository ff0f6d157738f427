/*
 * tokenizer_pre.h — pre-tokenizers of byte-level BPE vocabularies: the list of
 * regular expressions named by tokenizer.ggml.pre that cut text into words
 * before merging, and the per-family switches that go with the name.
 *
 * Splitting follows the reference: the text starts as one piece; each regex
 * in turn cuts every current piece into its matches and the unmatched gaps
 * between them (both kept, in order), matching inside the piece only (so
 * lookaheads and `$` see the piece's end). Offsets are in code points of the
 * reference-decoded text (see unicode.h), so invalid UTF-8 splits the same way.
 * Regexes run on PCRE2 (UTF + UCP, JIT where available).
 */
#ifndef LARDER_TOKENIZER_PRE_H
#define LARDER_TOKENIZER_PRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct pretok pretok;

/* One word: code points [start, start + len) of the split text. */
typedef struct pretok_word {
    uint32_t start;
    uint32_t len;
} pretok_word;

/* Compiles the pre-tokenizer `name` (NULL or "" = "default"). ERR_UNSUPPORTED
 * names the unknown pre-tokenizer. */
pretok *pretok_create(const char *name, larder_error *err);
void pretok_free(pretok *p);

/* Family switches that come with the name (reference defaults). */
bool pretok_clean_spaces(const pretok *p);  /* detokenizer removes " ," " ." ... */
bool pretok_ignore_merges(const pretok *p); /* a word that is a token is taken whole */
int pretok_add_bos_default(const pretok *p); /* 1, or 0 */

/* Splits cps[0..n) into words, appended to *words (realloc'd; *n_words and
 * *cap updated). Returns 0 or -1 (ERR_NOMEM, ERR_LIMIT from PCRE2). */
int pretok_split(const pretok *p, const uint32_t *cps, size_t n, pretok_word **words, size_t *n_words,
                 size_t *cap, larder_error *err);

#endif
