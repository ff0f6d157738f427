/*
 * tokenizer_impl.h — the tokenizer's internal layout, shared by tokenizer.c
 * (loading, special tokens, decoding), tokenizer_index.c (the text and merge
 * hash indexes), tokenizer_spm.c and tokenizer_bpe.c (the two merge
 * algorithms, over tokenizer_merge.h). Not for use outside
 * src/tokenizer/tokenizer*.c.
 */
#ifndef LARDER_TOKENIZER_IMPL_H
#define LARDER_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_pre.h"

struct tokenizer {
    int model;                 /* TOKENIZER_MODEL_* */
    uint32_t n_tokens;

    char *text_blob;           /* all token texts, each NUL-terminated */
    uint32_t *text_off;        /* (n_tokens) offset of token i's text in text_blob */
    uint32_t *text_len;        /* (n_tokens) bytes of token i's text */
    float *scores;             /* (n_tokens) SPM merge scores */
    uint32_t *attr;            /* (n_tokens) TOKEN_ATTR_* bits */
    uint8_t *eog;              /* (n_tokens) 1 if the token ends generation */

    int32_t *text_slots;       /* (text_mask + 1) open-addressing text -> id, -1 empty */
    uint32_t text_mask;

    uint64_t *merge_keys;      /* (merge_mask + 1) (left id << 32 | right id), UINT64_MAX empty */
    int32_t *merge_ranks;      /* (merge_mask + 1) rank of that merge */
    uint32_t merge_mask;

    int32_t *special_ids;      /* (n_special) control/user-defined/unknown ids, longest text first */
    uint32_t n_special;

    char *piece_blob;          /* decoded piece of every token (special rendering) */
    uint32_t *piece_off;       /* (n_tokens) */
    uint32_t *piece_len;       /* (n_tokens) */

    int32_t byte_token[256];   /* token of each raw byte for byte fallback, TOKEN_NONE if none */

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;

    pretok *pre;               /* BPE only */
    char byte_cp_utf8[256][3]; /* GPT-2 map: UTF-8 of the code point standing for each byte */
    uint8_t byte_cp_len[256];
};

/* The hash indexes (tokenizer_index.c). tok_index_texts builds text -> id
 * from the texts; tok_index_merges builds (left, right) -> rank from
 * src's "left right" merge lines (it needs the text index). Both: -1 when
 * out of memory. */
int tok_index_texts(tokenizer *t);
int tok_index_merges(tokenizer *t, const tokenizer_source *src);
/* text -> id, TOKEN_NONE if absent. */
int32_t tok_find(const tokenizer *t, const char *s, size_t n);
/* rank of merging (left, right), -1 if none. */
int32_t tok_merge_rank(const tokenizer *t, int32_t left, int32_t right);

/* Encodes one piece of plain text (no special tokens in it). */
int tok_spm_encode(const tokenizer *t, const char *text, size_t len, token_list *out, larder_error *err);
/* stop_after_n > 0: ERR_LIMIT as soon as out holds more than that many ids
 * (checked per pre-tokenized word). */
int tok_bpe_encode(const tokenizer *t, const char *text, size_t len, size_t stop_after_n, token_list *out,
                   larder_error *err);

#endif
