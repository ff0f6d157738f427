/*
 * tokenizer_merge.h — the bookkeeping both merge algorithms share
 * (tokenizer_spm.c, tokenizer_bpe.c): a word's symbols in a doubly linked
 * list over its bytes, and its candidate merges in a binary heap, best first
 * (higher key, then smaller left index, so equal keys merge left to right as
 * the reference does). Knows nothing of the vocabulary.
 */
#ifndef LARDER_TOKENIZER_MERGE_H
#define LARDER_TOKENIZER_MERGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_symbol {
    int32_t prev, next; /* neighbours, -1 at the ends */
    uint32_t off, n;    /* bytes [off, off + n) of the word; n == 0: merged away */
    int32_t id;         /* token of those bytes, TOKEN_NONE if none */
} tok_symbol;

typedef struct tok_bigram {
    double key;         /* SPM: score; BPE: -rank */
    int32_t left, right;
    uint32_t n_left, n_right; /* symbol sizes when queued (stale if changed) */
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *v;
    size_t n, cap;
} tok_heap;

/* Queues b; -1 when out of memory (the heap is unchanged). */
int tok_heap_push(tok_heap *h, tok_bigram b);
/* Takes the best bigram out; h->n must be > 0. */
tok_bigram tok_heap_pop(tok_heap *h);

#endif
