/*
 * tokenizer.h — text to token ids and back, exactly as the model's own
 * tokenizer (llama.cpp is the reference) does it.
 *
 * Two families, chosen by the GGUF key tokenizer.ggml.model:
 *   "llama" — SentencePiece-style BPE: spaces become U+2581, a space is
 *             prefixed per add_space_prefix, adjacent pieces are merged
 *             highest score first, and text no token covers falls back to
 *             byte tokens <0xXX>.
 *   "gpt2"  — byte-level BPE: the text is cut into words by the regular
 *             expressions of its pre-tokenizer (tokenizer.ggml.pre), each
 *             word is spelled in the GPT-2 byte alphabet, and merges are
 *             applied lowest rank first.
 * Both use a binary heap of candidate merges over a linked list of symbols
 * (tokenizer_merge.c), so a word of n characters costs O(n log n).
 *
 * Files: tokenizer.c (loading, special tokens, decoding), tokenizer_index.c
 * (text and merge hash indexes), tokenizer_spm.c / tokenizer_bpe.c (the two
 * algorithms), tokenizer_pre.c (pre-tokenizer regexes), unicode.c, detok.c
 * (streaming detokenizer), tokenizer_gguf.c (loading from a GGUF file),
 * token_list.c.
 *
 * Special tokens: control tokens (and unknown) are recognised in the text
 * only with TOKENIZE_PARSE_SPECIAL (prompts built from a chat template);
 * user-defined tokens are always recognised, longest first.
 *
 * A tokenizer is immutable after loading: any number of threads may call
 * tokenizer_encode / tokenizer_piece at once.
 */
#ifndef LARDER_TOKENIZER_H
#define LARDER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct tokenizer tokenizer;

/* A growable list of token ids (owned by the caller; free with token_list_free). */
typedef struct token_list {
    int32_t *ids;   /* (n) token ids */
    size_t n;       /* ids in use */
    size_t cap;     /* ids allocated */
} token_list;

int token_list_push(token_list *list, int32_t id, larder_error *err);
void token_list_free(token_list *list);

enum tokenizer_model {
    TOKENIZER_MODEL_SPM = 1, /* "llama" */
    TOKENIZER_MODEL_BPE = 2, /* "gpt2"  */
};

/* Token attributes (bit flags; GGUF token types are mapped onto them). */
enum {
    TOKEN_ATTR_UNKNOWN = 1 << 0,
    TOKEN_ATTR_UNUSED = 1 << 1,
    TOKEN_ATTR_NORMAL = 1 << 2,
    TOKEN_ATTR_CONTROL = 1 << 3,
    TOKEN_ATTR_USER_DEFINED = 1 << 4,
    TOKEN_ATTR_BYTE = 1 << 5,
    TOKEN_ATTR_RSTRIP = 1 << 6, /* whitespace after it is eaten when parsed from text */
};

/* No such token. */
#define TOKEN_NONE (-1)

/* What a vocabulary is built from (filled by tokenizer_load_gguf, or by tests).
 * Texts are copied; the callbacks are only used during tokenizer_create. */
typedef struct tokenizer_source {
    int model;                /* TOKENIZER_MODEL_* */
    const char *pre;          /* pre-tokenizer name (BPE); NULL or "" = "default" */
    const char *model_name;   /* general.name, for the reference's per-model quirks; may be NULL */
    uint32_t n_tokens;
    void *ctx;
    const char *(*token_text)(void *ctx, uint32_t i, size_t *len_bytes);
    float (*token_score)(void *ctx, uint32_t i);      /* NULL: all 0 */
    int32_t (*token_type)(void *ctx, uint32_t i);     /* GGUF token type; NULL: all normal */
    uint32_t n_merges;                                /* BPE */
    const char *(*merge_text)(void *ctx, uint32_t i, size_t *len_bytes);
    /* special ids from metadata, TOKEN_NONE where absent */
    int32_t bos_id, eos_id, eot_id, eom_id, unk_id, pad_id;
    int add_bos, add_eos, add_space_prefix; /* 1 / 0, or -1: the family's default */
} tokenizer_source;

/* Builds a tokenizer. Errors: ERR_UNSUPPORTED for an unknown model or
 * pre-tokenizer, ERR_FORMAT for inconsistent data, ERR_NOMEM. */
tokenizer *tokenizer_create(const tokenizer_source *src, larder_error *err);

/* Reads tokenizer.ggml.* (and general.name) from the metadata of the GGUF
 * file at path (every length and count is checked against the file). */
tokenizer *tokenizer_load_file(const char *path, larder_error *err);

/* The same from an open GGUF file (the tokenizer copies what it keeps). */
struct gguf_file;
tokenizer *tokenizer_load_gguf(const struct gguf_file *f, larder_error *err);

void tokenizer_free(tokenizer *t);

/* Flags of tokenizer_encode. */
enum {
    TOKENIZE_ADD_SPECIAL = 1 << 0,  /* BOS / EOS as the model's add_bos/add_eos say */
    TOKENIZE_PARSE_SPECIAL = 1 << 1, /* recognise control tokens written in the text */
};

/* Appends the ids of text[0..len) (any bytes; invalid UTF-8 is handled as the
 * reference does) to out. Returns 0, or -1 with err set (ERR_NOMEM, ERR_LIMIT
 * when a regex hits PCRE2's match limits). */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int flags, token_list *out,
                     larder_error *err);

/* What tokenizer_encode_opts takes beyond tokenizer_encode. */
typedef struct tokenize_options {
    int flags;                      /* TOKENIZE_* */
    /* Byte ranges [start, end) of the text (sorted, not overlapping) where
     * control-token text is plain text even with TOKENIZE_PARSE_SPECIAL: the
     * parts of a rendered chat prompt that came from message content. */
    const size_t (*text_spans)[2];
    size_t n_text_spans;
    /* > 0: give up with ERR_LIMIT once the text is known to need more than
     * this many ids (out would pass it): a text too long by the bytes
     * alone (each id covers at most the vocabulary's longest piece) is
     * refused before any work, and encoding stops at the first piece of
     * text that takes the count past the bound. */
    size_t max_tokens;
} tokenize_options;

/* tokenizer_encode with options (opt == NULL: flags 0, no spans, no bound).
 * Without spans and bound the ids are those of tokenizer_encode. */
int tokenizer_encode_opts(const tokenizer *t, const char *text, size_t len, const tokenize_options *opt,
                          token_list *out, larder_error *err);

/* The text of one token as output (spaces restored, bytes decoded). Control
 * and unknown tokens give "" unless `special`. id must be valid (see
 * tokenizer_check_id). Sets *len_bytes; the bytes need not be UTF-8 alone. */
const char *tokenizer_piece(const tokenizer *t, int32_t id, bool special, size_t *len_bytes);

/* 0 when 0 <= id < n_tokens, else -1 with ERR_INVALID "token id N out of range". */
int tokenizer_check_id(const tokenizer *t, int32_t id, larder_error *err);

/* Text of ids (reference llama_detokenize(remove_special=false,
 * unparse_special=special)): the SPM leading space of the first token is
 * dropped, and the family's space clean-up rules apply. Returns a malloc'd
 * NUL-terminated string (length in *len_bytes), or NULL with err set
 * (ERR_INVALID for an id out of range). */
char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool special,
                       size_t *len_bytes, larder_error *err);

/* Vocabulary facts. */
uint32_t tokenizer_n_tokens(const tokenizer *t);
int tokenizer_model(const tokenizer *t);
const char *tokenizer_token_text(const tokenizer *t, int32_t id); /* raw vocab text */
uint32_t tokenizer_token_attr(const tokenizer *t, int32_t id);
int32_t tokenizer_bos(const tokenizer *t);
int32_t tokenizer_eos(const tokenizer *t);
int32_t tokenizer_eot(const tokenizer *t);
bool tokenizer_add_bos(const tokenizer *t);
bool tokenizer_add_space_prefix(const tokenizer *t);
int32_t tokenizer_find(const tokenizer *t, const char *text, size_t len); /* TOKEN_NONE if absent */

/* End of generation: EOS, EOT, EOM and the family end markers (<|im_end|>,
 * <|eot_id|>, <end_of_turn>, <|endoftext|>, ...) found in the vocabulary. */
bool tokenizer_is_eog(const tokenizer *t, int32_t id);

#endif
