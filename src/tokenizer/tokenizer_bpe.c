/*
 * tokenizer_bpe.c — byte-level BPE (tokenizer.ggml.model "gpt2").
 *
 * The text is decoded reference-style (invalid bytes become U+FFFD), cut
 * into words by the pre-tokenizer, and each word is spelled in the GPT-2
 * byte alphabet (unicode.h). Within a word, symbols start as single
 * characters; the adjacent pair with the lowest merge rank (then leftmost) is
 * merged until no listed merge applies (heap + linked list, O(n log n)).
 * With ignore_merges, a word that is itself a token is taken whole. A final
 * symbol that is no token falls back to the tokens of its single bytes (only
 * those that exist, as the reference does).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_merge.h"
#include "tokenizer/unicode.h"

typedef struct bpe_scratch {
    char *word;        /* byte-level spelling of the current word */
    size_t word_cap;
    tok_symbol *sym;
    size_t sym_cap;
    tok_heap heap;
} bpe_scratch;

static int try_add(const tokenizer *t, const tok_symbol *sym, int32_t l, int32_t r, tok_heap *heap) {
    if (l < 0 || r < 0) return 0;
    int32_t rank = tok_merge_rank(t, sym[l].id, sym[r].id);
    if (rank < 0) return 0;
    tok_bigram b = {-(double)rank, l, r, sym[l].n, sym[r].n};
    return tok_heap_push(heap, b);
}

/* Merges one byte-level word (s[0..n)) and appends its tokens. */
static int encode_word(const tokenizer *t, bpe_scratch *sc, const char *s, size_t n, token_list *out,
                       larder_error *err) {
    if (t->ignore_merges) {
        int32_t id = tok_find(t, s, n);
        if (id >= 0) return token_list_push(out, id, err);
    }
    if (n > sc->sym_cap) {
        tok_symbol *ns = realloc(sc->sym, n * sizeof *ns);
        if (!ns) return error_set(err, ERR_NOMEM, "out of memory");
        sc->sym = ns;
        sc->sym_cap = n;
    }
    tok_symbol *sym = sc->sym;
    int32_t count = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = unicode_len_utf8((uint8_t)s[off]);
        if (cl > n - off) cl = n - off;
        sym[count] = (tok_symbol){count - 1, -1, (uint32_t)off, (uint32_t)cl, tok_find(t, s + off, cl)};
        off += cl;
        if (off < n) sym[count].next = count + 1;
        count++;
    }
    sc->heap.n = 0;
    for (int32_t i = 1; i < count; i++)
        if (try_add(t, sym, i - 1, i, &sc->heap)) return error_set(err, ERR_NOMEM, "out of memory");
    while (sc->heap.n) {
        tok_bigram b = tok_heap_pop(&sc->heap);
        tok_symbol *L = &sym[b.left], *R = &sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n != b.n_left || R->n != b.n_right) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        L->id = tok_find(t, s + L->off, L->n);
        if (try_add(t, sym, L->prev, b.left, &sc->heap) || try_add(t, sym, b.left, L->next, &sc->heap))
            return error_set(err, ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i != -1 && count > 0; i = sym[i].next) {
        if (sym[i].id >= 0) {
            if (token_list_push(out, sym[i].id, err)) return -1;
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++) { /* single raw bytes of the spelling, where tokens */
            int32_t id = tok_find(t, s + sym[i].off + j, 1);
            if (id >= 0 && token_list_push(out, id, err)) return -1;
        }
    }
    return 0;
}

int tok_bpe_encode(const tokenizer *t, const char *text, size_t len, size_t stop_after_n, token_list *out,
                   larder_error *err) {
    if (len == 0) return 0;
    int rc = -1;
    uint32_t *cps = malloc(len * sizeof *cps);
    pretok_word *words = NULL;
    size_t n_words = 0, words_cap = 0;
    bpe_scratch sc = {0};
    if (!cps) { error_set(err, ERR_NOMEM, "out of memory"); goto out; }
    size_t n = 0;
    for (size_t pos = 0; pos < len;) cps[n++] = unicode_decode_utf8(text, len, &pos);
    if (pretok_split(t->pre, cps, n, &words, &n_words, &words_cap, err)) goto out;
    for (size_t w = 0; w < n_words; w++) {
        /* spell the word: code points -> UTF-8 -> one alphabet code point per byte (<= 2 bytes each) */
        size_t need = (size_t)words[w].len * 8;
        if (need > sc.word_cap) {
            char *nw = realloc(sc.word, need);
            if (!nw) { error_set(err, ERR_NOMEM, "out of memory"); goto out; }
            sc.word = nw;
            sc.word_cap = need;
        }
        size_t wn = 0;
        for (uint32_t i = 0; i < words[w].len; i++) {
            char u[4];
            size_t k = unicode_encode_utf8(cps[words[w].start + i], u);
            for (size_t j = 0; j < k; j++) {
                uint8_t b = (uint8_t)u[j];
                memcpy(sc.word + wn, t->byte_cp_utf8[b], t->byte_cp_len[b]);
                wn += t->byte_cp_len[b];
            }
        }
        if (encode_word(t, &sc, sc.word, wn, out, err)) goto out;
        if (stop_after_n && out->n > stop_after_n) {
            error_set(err, ERR_LIMIT, "the text needs more than its bound of tokens");
            goto out;
        }
    }
    rc = 0;
out:
    free(cps);
    free(words);
    free(sc.word);
    free(sc.sym);
    free(sc.heap.v);
    return rc;
}
