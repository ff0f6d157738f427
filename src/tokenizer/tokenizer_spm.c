/*
 * tokenizer_spm.c — SentencePiece-style BPE (tokenizer.ggml.model "llama").
 *
 * The text (spaces already U+2581) starts as one symbol per UTF-8 character
 * (length from the lead byte, so invalid bytes are symbols too). Every
 * adjacent pair whose concatenation is a token is a candidate, scored by
 * that token's score; the best candidate (highest score, then leftmost) is
 * merged, and the new symbol's pairs with its neighbours become candidates.
 * Stale candidates (a side already merged elsewhere) are skipped when popped.
 * At the end each symbol is its token, or, if it is no token, one byte token
 * <0xXX> per byte. O(n log n) in the text length.
 */
#include <stdlib.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_merge.h"
#include "tokenizer/unicode.h"

static int try_add(const tokenizer *t, const char *text, const tok_symbol *sym, int32_t l, int32_t r,
                   tok_heap *heap) {
    if (l < 0 || r < 0) return 0;
    int32_t id = tok_find(t, text + sym[l].off, sym[l].n + sym[r].n);
    if (id < 0) return 0;
    tok_bigram b = {t->scores[id], l, r, sym[l].n, sym[r].n};
    return tok_heap_push(heap, b);
}

int tok_spm_encode(const tokenizer *t, const char *text, size_t len, token_list *out, larder_error *err) {
    if (len == 0) return 0;
    if (len > INT32_MAX / 2) return error_set(err, ERR_LIMIT, "text too long to tokenize (%zu bytes)", len);
    tok_symbol *sym = malloc(len * sizeof *sym);
    tok_heap heap = {0};
    int rc = -1;
    if (!sym) goto nomem;
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = unicode_len_utf8((uint8_t)text[off]);
        if (cl > len - off) cl = len - off;
        sym[n] = (tok_symbol){n - 1, -1, (uint32_t)off, (uint32_t)cl, TOKEN_NONE};
        off += cl;
        if (off < len) sym[n].next = n + 1;
        n++;
    }
    for (int32_t i = 1; i < n; i++)
        if (try_add(t, text, sym, i - 1, i, &heap)) goto nomem;
    while (heap.n) {
        tok_bigram b = tok_heap_pop(&heap);
        tok_symbol *L = &sym[b.left], *R = &sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n != b.n_left || R->n != b.n_right) continue; /* stale */
        L->n += R->n; /* merge right into left */
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        if (try_add(t, text, sym, L->prev, b.left, &heap)) goto nomem;
        if (try_add(t, text, sym, b.left, L->next, &heap)) goto nomem;
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = tok_find(t, text + sym[i].off, sym[i].n);
        if (id >= 0) {
            if (token_list_push(out, id, err)) goto out;
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++) { /* byte fallback */
            int32_t bt = t->byte_token[(uint8_t)text[sym[i].off + j]];
            if (bt < 0) bt = t->unk;
            if (bt >= 0 && token_list_push(out, bt, err)) goto out;
        }
    }
    rc = 0;
    goto out;
nomem:
    error_set(err, ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
out:
    free(sym);
    free(heap.v);
    return rc;
}
