/*
 * tokenizer_merge.c — the binary heap of candidate merges shared by the SPM
 * and BPE algorithms (see tokenizer_merge.h).
 */
#include "tokenizer/tokenizer_merge.h"

#include <stdbool.h>
#include <stdlib.h>

static bool bigram_better(const tok_bigram *a, const tok_bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(tok_heap *h, tok_bigram b) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        tok_bigram *nv = realloc(h->v, nc * sizeof *nv);
        if (!nv) return -1;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) { /* sift up */
        size_t parent = (i - 1) / 2;
        if (!bigram_better(&b, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return 0;
}

tok_bigram tok_heap_pop(tok_heap *h) {
    tok_bigram top = h->v[0];
    tok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) { /* sift down */
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_better(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_better(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}
