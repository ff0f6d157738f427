/*
 * tokenizer.c — the vocabulary (texts, scores, attributes), special tokens
 * (splitting them out of text, end-of-generation set), encode dispatch and
 * decoding. The hash indexes live in tokenizer_index.c, the merge algorithms
 * in tokenizer_spm.c and tokenizer_bpe.c (over tokenizer_merge.c's heap), the
 * pre-tokenizer regexes in tokenizer_pre.c.
 *
 * Everything the reference tokenizer decides at load time is decided here,
 * once: the family defaults and metadata overrides (BOS/EOS ids, add_bos,
 * add_space_prefix), the end-of-generation set (by ids and by the texts of
 * well-known end markers), the special-token search order (longest first),
 * and the decoded text of every token (so decoding is a table lookup).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sort.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

/* Largest vocabulary accepted (the biggest real ones are ~260k). */
#define TOKENIZER_MAX_TOKENS (1u << 24)
/* Largest token text accepted, in bytes. */
#define TOKENIZER_MAX_TOKEN_BYTES (1u << 16)

/* GGUF token types (tokenizer.ggml.token_type). */
enum { GGUF_TOKTYPE_UNDEFINED = 0, GGUF_TOKTYPE_NORMAL, GGUF_TOKTYPE_UNKNOWN, GGUF_TOKTYPE_CONTROL,
       GGUF_TOKTYPE_USER_DEFINED, GGUF_TOKTYPE_UNUSED, GGUF_TOKTYPE_BYTE };

/* ---- lookups */

int32_t tokenizer_find(const tokenizer *t, const char *text, size_t len) { return tok_find(t, text, len); }

/* ---- loading */

static const char *tok_text(const tokenizer *t, int32_t id) { return t->text_blob + t->text_off[id]; }

static bool text_is(const tokenizer *t, int32_t id, const char *s) {
    size_t n = strlen(s);
    return t->text_len[id] == n && !memcmp(tok_text(t, id), s, n);
}

static int32_t find_cstr(const tokenizer *t, const char *s) { return tok_find(t, s, strlen(s)); }

/* Texts that mark the end of a turn (the reference's list), made EOG and control. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[",
};
/* Texts taken as the EOT token when metadata names none. */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
    "<end_of_utterance>",
};
/* Fill-in-the-middle pad / repo / file-separator tokens: the reference also ends on them. */
static const char *const fim_eog_texts[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

static int cmp_special(const void *a, const void *b, void *ctx) {
    const tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text_len[x] != t->text_len[y]) return t->text_len[x] > t->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Decoded text of a token as output with special rendering on (appended to *blob). */
static int build_piece(tokenizer *t, int32_t id, char **blob, size_t *n, size_t *cap) {
    const char *s = tok_text(t, id);
    size_t len = t->text_len[id];
    uint32_t a = t->attr[id];
    size_t need = len + 8;
    if (t->model == TOKENIZER_MODEL_BPE && (a & TOKEN_ATTR_NORMAL) &&
        !(a & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED))) {
        /* a code point outside the byte alphabet becomes "[UNK_BYTE_0x<hex>" + text + "]" */
        for (size_t i = 0; i < len;)
            if (unicode_cp_to_byte(unicode_decode_utf8(s, len, &i)) < 0) need += 24 + len;
    }
    if (*n + need > *cap) {
        size_t nc = (*cap ? *cap : 4096);
        while (nc < *n + need) nc *= 2;
        char *nb = realloc(*blob, nc);
        if (!nb) return -1;
        *blob = nb;
        *cap = nc;
    }
    char *o = *blob + *n;
    size_t w = 0;
    if (a & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED)) {
        memcpy(o, s, len);
        w = len;
    } else if (a & TOKEN_ATTR_NORMAL) {
        if (t->model == TOKENIZER_MODEL_SPM) {
            for (size_t i = 0; i < len;) { /* U+2581 -> ' ' */
                if (i + 3 <= len && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                    o[w++] = ' ';
                    i += 3;
                } else {
                    o[w++] = s[i++];
                }
            }
        } else {
            for (size_t i = 0; i < len;) { /* byte-level code points -> bytes */
                size_t start = i;
                uint32_t cp = unicode_decode_utf8(s, len, &i);
                int b = unicode_cp_to_byte(cp);
                if (b >= 0) {
                    o[w++] = (char)b;
                } else {
                    char u[4];
                    size_t k = unicode_encode_utf8(cp, u);
                    (void)start;
                    w += (size_t)sprintf(o + w, "[UNK_BYTE_0x");
                    for (size_t j = 0; j < k; j++) w += (size_t)sprintf(o + w, "%02x", (uint8_t)u[j]);
                    memcpy(o + w, s, len);
                    w += len;
                    o[w++] = ']';
                }
            }
        }
    } else if (a & TOKEN_ATTR_BYTE) {
        if (len >= 6) {
            char hex[3] = {s[3], s[4], 0};
            o[w++] = (char)strtol(hex, NULL, 16);
        }
    }
    t->piece_off[id] = (uint32_t)*n;
    t->piece_len[id] = (uint32_t)w;
    *n += w;
    return 0;
}

static void lower_ascii(char *s) {
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* Token texts, scores and attributes (an empty text is named "[EMPTY_i]", as
 * the reference does). */
static int load_texts(tokenizer *t, const tokenizer_source *src, larder_error *err) {
    uint32_t n = t->n_tokens;
    size_t blob_n = 0, blob_cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = src->token_text(src->ctx, i, &len);
        char empty[32];
        if (!s) return error_set(err, ERR_FORMAT, "token %u has no text", i);
        if (len > TOKENIZER_MAX_TOKEN_BYTES)
            return error_set(err, ERR_FORMAT, "token %u is %zu bytes long (limit %u)", i, len, TOKENIZER_MAX_TOKEN_BYTES);
        if (len == 0) {
            len = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%u]", i);
            s = empty;
        }
        if (blob_n + len + 1 > blob_cap) {
            size_t nc = blob_cap ? blob_cap * 2 : 1 << 20;
            while (nc < blob_n + len + 1) nc *= 2;
            char *nb = realloc(t->text_blob, nc);
            if (!nb) return error_set(err, ERR_NOMEM, "out of memory loading the tokenizer");
            t->text_blob = nb;
            blob_cap = nc;
        }
        memcpy(t->text_blob + blob_n, s, len);
        t->text_blob[blob_n + len] = 0;
        t->text_off[i] = (uint32_t)blob_n;
        t->text_len[i] = (uint32_t)len;
        blob_n += len + 1;
        if (blob_n > UINT32_MAX / 2) return error_set(err, ERR_LIMIT, "vocabulary texts too large");
        if (src->token_score) t->scores[i] = src->token_score(src->ctx, i);
        uint32_t a = TOKEN_ATTR_NORMAL;
        if (src->token_type) {
            switch (src->token_type(src->ctx, i)) {
            case GGUF_TOKTYPE_NORMAL: a = TOKEN_ATTR_NORMAL; break;
            case GGUF_TOKTYPE_UNKNOWN: a = TOKEN_ATTR_UNKNOWN; break;
            case GGUF_TOKTYPE_CONTROL: a = TOKEN_ATTR_CONTROL; break;
            case GGUF_TOKTYPE_USER_DEFINED: a = TOKEN_ATTR_USER_DEFINED; break;
            case GGUF_TOKTYPE_UNUSED: a = TOKEN_ATTR_UNUSED; break;
            case GGUF_TOKTYPE_BYTE: a = TOKEN_ATTR_BYTE; break;
            default: a = 0; break;
            }
        }
        t->attr[i] = a;
    }
    return 0;
}

/* The family's defaults (BOS/EOS ids, add_bos, add_space_prefix, ...), then
 * the metadata's overrides (out-of-range ids keep the default). */
static int set_defaults_and_overrides(tokenizer *t, const tokenizer_source *src, larder_error *err) {
    int32_t n = (int32_t)t->n_tokens;
    if (t->model == TOKENIZER_MODEL_SPM) {
        t->bos = 1; t->eos = 2; t->unk = 0;
        t->add_bos = true; t->add_eos = false; t->add_space_prefix = true; t->clean_spaces = false;
    } else {
        t->pre = pretok_create(src->pre, err);
        if (!t->pre) return -1;
        t->bos = 11; t->eos = 11; t->unk = TOKEN_NONE;
        t->add_bos = pretok_add_bos_default(t->pre) == 1; t->add_eos = false;
        t->add_space_prefix = false;
        t->clean_spaces = pretok_clean_spaces(t->pre);
        t->ignore_merges = pretok_ignore_merges(t->pre);
    }
    t->eot = t->eom = t->pad = TOKEN_NONE;
    if (t->bos >= n) t->bos = TOKEN_NONE;
    if (t->eos >= n) t->eos = TOKEN_NONE;
    if (t->unk >= n) t->unk = TOKEN_NONE;
    struct { int32_t v; int32_t *dst; } ids[] = {
        {src->bos_id, &t->bos}, {src->eos_id, &t->eos}, {src->eot_id, &t->eot},
        {src->eom_id, &t->eom}, {src->unk_id, &t->unk}, {src->pad_id, &t->pad},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].v >= 0 && ids[i].v < n) *ids[i].dst = ids[i].v;
    if (src->add_space_prefix >= 0) t->add_space_prefix = src->add_space_prefix;
    if (src->add_bos >= 0) t->add_bos = src->add_bos;
    if (src->add_eos >= 0) t->add_eos = src->add_eos;
    return 0;
}

/* BPE: the merge index ("left right" split at the first space after the
 * first byte) and the GPT-2 byte alphabet. */
static int load_merges(tokenizer *t, const tokenizer_source *src, larder_error *err) {
    if (src->n_merges == 0)
        return error_set(err, ERR_FORMAT, "byte-level BPE tokenizer has no merges (tokenizer.ggml.merges)");
    if (tok_index_merges(t, src)) return error_set(err, ERR_NOMEM, "out of memory loading the tokenizer");
    for (int b = 0; b < 256; b++) {
        uint32_t cp = unicode_byte_to_cp((uint8_t)b);
        t->byte_cp_len[b] = (uint8_t)unicode_encode_utf8(cp, t->byte_cp_utf8[b]);
    }
    return 0;
}

/* The token of each raw byte, for byte fallback. */
static void find_byte_tokens(tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id = TOKEN_NONE;
        if (t->model == TOKENIZER_MODEL_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = find_cstr(t, buf);
            if (id < 0) {
                buf[0] = (char)b;
                id = tok_find(t, buf, 1);
            }
        } else {
            id = tok_find(t, t->byte_cp_utf8[b], t->byte_cp_len[b]);
        }
        t->byte_token[b] = id;
    }
}

/* End of generation: metadata ids + well-known end-marker texts. */
static void mark_end_of_generation(tokenizer *t) {
    uint32_t n = t->n_tokens;
    if (t->eot == TOKEN_NONE) {
        for (uint32_t id = 0; id < n && t->eot == TOKEN_NONE; id++)
            for (size_t k = 0; k < sizeof eot_texts / sizeof eot_texts[0]; k++)
                if (text_is(t, (int32_t)id, eot_texts[k])) { t->eot = (int32_t)id; t->attr[id] |= TOKEN_ATTR_CONTROL; break; }
    }
    if (t->eom == TOKEN_NONE) {
        int32_t id = find_cstr(t, "<|eom_id|>");
        if (id >= 0) { t->eom = id; t->attr[id] |= TOKEN_ATTR_CONTROL; }
    }
    for (uint32_t id = 0; id < n; id++) {
        if ((t->attr[id] & TOKEN_ATTR_CONTROL) && strstr(tok_text(t, (int32_t)id), "unused"))
            t->attr[id] |= TOKEN_ATTR_UNUSED;
        for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++)
            if (text_is(t, (int32_t)id, eog_texts[k])) { t->eog[id] = 1; t->attr[id] |= TOKEN_ATTR_CONTROL; }
    }
    for (size_t k = 0; k < sizeof fim_eog_texts / sizeof fim_eog_texts[0]; k++) {
        int32_t id = find_cstr(t, fim_eog_texts[k]);
        if (id >= 0) { t->eog[id] = 1; t->attr[id] |= TOKEN_ATTR_CONTROL; }
    }
    /* gpt-oss: these always render */
    static const char *const always_user[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    for (size_t k = 0; k < 4; k++) {
        int32_t id = find_cstr(t, always_user[k]);
        if (id >= 0) t->attr[id] = TOKEN_ATTR_USER_DEFINED;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
    /* o200k_harmony / solar-open: "<|end|>" is not the end when return+call exist */
    int32_t ret = find_cstr(t, "<|return|>"), call = find_cstr(t, "<|call|>");
    int32_t calls = find_cstr(t, "<|calls|>"), flush = find_cstr(t, "<|flush|>"), end = find_cstr(t, "<|end|>");
    if (end >= 0 && ((ret >= 0 && call >= 0) || (calls >= 0 && flush >= 0))) {
        t->eog[end] = 0;
        t->attr[end] = TOKEN_ATTR_USER_DEFINED;
    }
    int32_t toolr = find_cstr(t, "<|tool_response>"), s_end = find_cstr(t, "</s>");
    if (toolr >= 0 && s_end >= 0 && t->eog[toolr]) {
        t->eog[s_end] = 0;
        t->attr[s_end] = TOKEN_ATTR_NORMAL;
    }
}

/* The special tokens (control, user-defined, unknown), longest text first. */
static int collect_specials(tokenizer *t) {
    uint32_t n = t->n_tokens;
    const uint32_t special = TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED | TOKEN_ATTR_UNKNOWN;
    for (uint32_t id = 0; id < n; id++)
        if (t->attr[id] & special) t->n_special++;
    t->special_ids = malloc((t->n_special ? t->n_special : 1) * sizeof *t->special_ids);
    if (!t->special_ids) return -1;
    t->n_special = 0;
    for (uint32_t id = 0; id < n; id++)
        if (t->attr[id] & special) t->special_ids[t->n_special++] = (int32_t)id;
    sort_r(t->special_ids, t->n_special, sizeof *t->special_ids, cmp_special, t);
    return 0;
}

/* phi-3: whitespace after special tokens is eaten (reference quirk by model name). */
static void apply_phi3_quirk(tokenizer *t, const char *model_name) {
    if (!model_name) return;
    char name[256];
    snprintf(name, sizeof name, "%s", model_name);
    lower_ascii(name);
    if (!strstr(name, "phi-3") && !strstr(name, "phi3")) return;
    for (uint32_t k = 0; k < t->n_special; k++) t->attr[t->special_ids[k]] |= TOKEN_ATTR_RSTRIP;
    int32_t id = find_cstr(t, "</s>");
    if (id >= 0) t->attr[id] |= TOKEN_ATTR_RSTRIP;
    static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (size_t k = 0; k < 3; k++) {
        id = find_cstr(t, keep[k]);
        if (id >= 0) t->attr[id] &= ~(uint32_t)TOKEN_ATTR_RSTRIP;
    }
}

/* The decoded piece of every token, so decoding is a table lookup. */
static int build_pieces(tokenizer *t, larder_error *err) {
    size_t pn = 0, pcap = 0;
    for (uint32_t id = 0; id < t->n_tokens; id++)
        if (build_piece(t, (int32_t)id, &t->piece_blob, &pn, &pcap))
            return error_set(err, ERR_NOMEM, "out of memory loading the tokenizer");
    if (pn > UINT32_MAX) return error_set(err, ERR_LIMIT, "decoded vocabulary too large");
    return 0;
}

tokenizer *tokenizer_create(const tokenizer_source *src, larder_error *err) {
    if (src->model != TOKENIZER_MODEL_SPM && src->model != TOKENIZER_MODEL_BPE) {
        error_set(err, ERR_UNSUPPORTED, "unsupported tokenizer model");
        return NULL;
    }
    if (src->n_tokens == 0 || src->n_tokens > TOKENIZER_MAX_TOKENS) {
        error_set(err, ERR_FORMAT, "tokenizer has %u tokens (1..%u allowed)", src->n_tokens,
                  TOKENIZER_MAX_TOKENS);
        return NULL;
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->model = src->model;
    uint32_t n = t->n_tokens = src->n_tokens;
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->scores = calloc(n, sizeof *t->scores);
    t->attr = malloc(n * sizeof *t->attr);
    t->eog = calloc(n, 1);
    t->piece_off = malloc(n * sizeof *t->piece_off);
    t->piece_len = malloc(n * sizeof *t->piece_len);
    if (!t->text_off || !t->text_len || !t->scores || !t->attr || !t->eog || !t->piece_off || !t->piece_len)
        goto nomem;

    if (load_texts(t, src, err)) goto fail;
    if (tok_index_texts(t)) goto nomem;
    if (set_defaults_and_overrides(t, src, err)) goto fail;
    if (t->model == TOKENIZER_MODEL_BPE && load_merges(t, src, err)) goto fail;
    find_byte_tokens(t);
    mark_end_of_generation(t);
    if (collect_specials(t)) goto nomem;
    apply_phi3_quirk(t, src->model_name);
    if (build_pieces(t, err)) goto fail;
    return t;

nomem:
    error_set(err, ERR_NOMEM, "out of memory loading the tokenizer");
fail:
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    free(t->text_blob);
    free(t->text_off);
    free(t->text_len);
    free(t->scores);
    free(t->attr);
    free(t->eog);
    free(t->text_slots);
    free(t->merge_keys);
    free(t->merge_ranks);
    free(t->special_ids);
    free(t->piece_blob);
    free(t->piece_off);
    free(t->piece_len);
    pretok_free(t->pre);
    free(t);
}

/* ---- encoding */

/* A run of the input: plain text bytes [off, off+len), or one special token. */
typedef struct fragment {
    int32_t token; /* TOKEN_NONE for text */
    size_t off, len;
} fragment;

typedef struct fragment_list {
    fragment *v;
    size_t n, cap;
} fragment_list;

static int frag_push(fragment_list *l, int32_t token, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        fragment *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (fragment){token, off, len};
    return 0;
}

static bool is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Cuts the special tokens out of the text, longest first (each token is
 * searched in the text fragments left by the longer ones). */
/* True when [at, at+n) overlaps one of the sorted spans. */
static bool overlaps_span(const size_t (*spans)[2], size_t n_spans, size_t at, size_t n) {
    size_t lo = 0, hi = n_spans;
    while (lo < hi) { /* first span ending after at */
        size_t mid = (lo + hi) / 2;
        if (spans[mid][1] <= at) lo = mid + 1;
        else hi = mid;
    }
    return lo < n_spans && spans[lo][0] < at + n;
}

static int split_special(const tokenizer *t, const char *text, size_t len, bool parse_special,
                         const size_t (*spans)[2], size_t n_spans, fragment_list *out, larder_error *err) {
    fragment_list cur = {0}, next = {0};
    if (frag_push(&cur, TOKEN_NONE, 0, len)) goto nomem;
    for (uint32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        uint32_t a = t->attr[id];
        if (!parse_special && (a & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_UNKNOWN))) continue;
        const char *tt = tok_text(t, id);
        size_t tl = t->text_len[id];
        next.n = 0;
        bool found_any = false;
        for (size_t f = 0; f < cur.n; f++) {
            fragment fr = cur.v[f];
            if (fr.token != TOKEN_NONE || fr.len < tl) {
                if (frag_push(&next, fr.token, fr.off, fr.len)) goto nomem;
                continue;
            }
            size_t at = fr.off, end = fr.off + fr.len, from = fr.off;
            for (;;) {
                const char *m = memmem(text + from, end - from, tt, tl);
                if (!m) break;
                size_t mpos = (size_t)(m - text);
                bool control = (a & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_UNKNOWN)) != 0;
                if (control && n_spans && overlaps_span(spans, n_spans, mpos, tl)) {
                    from = mpos + 1; /* content: plain text */
                    continue;
                }
                found_any = true;
                size_t left_len = mpos - at;
                if (a & TOKEN_ATTR_RSTRIP) { /* (LSTRIP is not set by any GGUF we read) */ }
                if (left_len && frag_push(&next, TOKEN_NONE, at, left_len)) goto nomem;
                if (frag_push(&next, id, 0, 0)) goto nomem;
                at = mpos + tl;
                if (a & TOKEN_ATTR_RSTRIP)
                    while (at < end && is_space(text[at])) at++;
                from = at;
            }
            if (at < end && frag_push(&next, TOKEN_NONE, at, end - at)) goto nomem;
        }
        if (found_any) {
            fragment_list tmp = cur; cur = next; next = tmp;
        }
    }
    free(next.v);
    *out = cur;
    return 0;
nomem:
    free(cur.v);
    free(next.v);
    return error_set(err, ERR_NOMEM, "out of memory splitting special tokens");
}

/* The most input bytes one id can stand for: the longest decoded piece
 * (at least 4: an unknown or byte-fallback id covers one character); 0
 * when a token eats the whitespace after it (then bytes give no bound). */
static size_t max_bytes_per_token(const tokenizer *t) {
    size_t most = 4;
    for (uint32_t id = 0; id < t->n_tokens; id++) {
        if (t->attr[id] & TOKEN_ATTR_RSTRIP) return 0;
        if (t->piece_len[id] > most) most = t->piece_len[id];
    }
    return most;
}

/* Bytes of text a bounded encode hands the BPE at once (at least). */
#define TOKENIZE_PIECE_BYTES ((size_t)64 << 10)

static bool ascii_lower(char c) { return c >= 'a' && c <= 'z'; }

/* Where to end the next piece of [at, end): the first "x y" (a lowercase
 * ASCII letter, one space, a lowercase ASCII letter) at least
 * TOKENIZE_PIECE_BYTES on — every byte-level pre-tokenizer ends a word
 * before such a space (the space starts the next word) — cut before the
 * space; end when there is none. */
static size_t bpe_safe_cut(const char *text, size_t at, size_t end) {
    if (end - at <= 2 * TOKENIZE_PIECE_BYTES) return end;
    for (size_t p = at + TOKENIZE_PIECE_BYTES; p + 1 < end; p++)
        if (text[p] == ' ' && ascii_lower(text[p - 1]) && ascii_lower(text[p + 1]) &&
            (p < 2 || text[p - 2] != '\'')) /* not a contraction's "'s x" tail */
            return p;
    return end;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int flags, token_list *out,
                     larder_error *err) {
    tokenize_options opt = {.flags = flags};
    return tokenizer_encode_opts(t, text, len, &opt, out, err);
}

int tokenizer_encode_opts(const tokenizer *t, const char *text, size_t len, const tokenize_options *opt,
                          token_list *out, larder_error *err) {
    static const tokenize_options none = {0};
    if (!opt) opt = &none;
    int flags = opt->flags;
    size_t start_n = out->n;
    if (opt->max_tokens) {
        size_t per = max_bytes_per_token(t);
        if (per && len / per > opt->max_tokens)
            return error_set(err, ERR_LIMIT, "the text needs more than %zu tokens (%zu bytes)", opt->max_tokens, len);
    }
    bool add_special = (flags & TOKENIZE_ADD_SPECIAL) != 0;
    fragment_list frags = {0};
    if (len && split_special(t, text, len, (flags & TOKENIZE_PARSE_SPECIAL) != 0, opt->text_spans, opt->n_text_spans,
                             &frags, err))
        return -1;
    int rc = -1;
    char *buf = NULL;
    if (add_special && t->add_bos) {
        if (t->bos < 0) { error_set(err, ERR_FORMAT, "model asks for BOS but has no BOS token"); goto out; }
        if (token_list_push(out, t->bos, err)) goto out;
    }
    bool prev_special = true; /* SPM: a space is prefixed to text that starts the input or follows a special token */
    for (size_t f = 0; f < frags.n; f++) {
        fragment fr = frags.v[f];
        if (fr.token != TOKEN_NONE) {
            if (token_list_push(out, fr.token, err)) goto out;
            prev_special = true;
            continue;
        }
        if (t->model == TOKENIZER_MODEL_SPM) {
            /* spaces become U+2581 (3 bytes), plus an optional leading one */
            size_t cap = 3 * (fr.len + 1);
            char *nb = realloc(buf, cap);
            if (!nb) { error_set(err, ERR_NOMEM, "out of memory"); goto out; }
            buf = nb;
            size_t w = 0;
            if (t->add_space_prefix && prev_special) { memcpy(buf, "\xe2\x96\x81", 3); w = 3; }
            for (size_t i = 0; i < fr.len; i++) {
                char c = text[fr.off + i];
                if (c == ' ') { memcpy(buf + w, "\xe2\x96\x81", 3); w += 3; }
                else buf[w++] = c;
            }
            if (tok_spm_encode(t, buf, w, out, err)) goto out;
        } else {
            /* With a bound, a long fragment goes in pieces cut where every
             * pre-tokenizer cuts anyway (so the ids are the same), and the
             * bound is checked after each: a huge prompt stops early. */
            size_t stop_after = opt->max_tokens ? start_n + opt->max_tokens : 0;
            size_t at = fr.off, end = fr.off + fr.len;
            while (at < end) {
                size_t cut = opt->max_tokens ? bpe_safe_cut(text, at, end) : end;
                if (tok_bpe_encode(t, text + at, cut - at, stop_after, out, err)) {
                    if (err->code == ERR_LIMIT && opt->max_tokens && out->n - start_n > opt->max_tokens)
                        error_set(err, ERR_LIMIT, "the text needs more than %zu tokens", opt->max_tokens);
                    goto out;
                }
                if (opt->max_tokens && out->n - start_n > opt->max_tokens) {
                    error_set(err, ERR_LIMIT, "the text needs more than %zu tokens", opt->max_tokens);
                    goto out;
                }
                at = cut;
            }
        }
        prev_special = false;
        if (opt->max_tokens && out->n - start_n > opt->max_tokens) {
            error_set(err, ERR_LIMIT, "the text needs more than %zu tokens", opt->max_tokens);
            goto out;
        }
    }
    if (add_special && t->add_eos) {
        if (t->eos < 0) { error_set(err, ERR_FORMAT, "model asks for EOS but has no EOS token"); goto out; }
        if (token_list_push(out, t->eos, err)) goto out;
    }
    rc = 0;
out:
    free(buf);
    free(frags.v);
    return rc;
}

/* ---- decoding */

int tokenizer_check_id(const tokenizer *t, int32_t id, larder_error *err) {
    if (id < 0 || (uint32_t)id >= t->n_tokens)
        return error_set(err, ERR_INVALID, "token id %d out of range (vocabulary has %u tokens)", id, t->n_tokens);
    return 0;
}

const char *tokenizer_piece(const tokenizer *t, int32_t id, bool special, size_t *len_bytes) {
    if (!special && (t->attr[id] & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL))) {
        *len_bytes = 0;
        return "";
    }
    *len_bytes = t->piece_len[id];
    return t->piece_blob + t->piece_off[id];
}

/* The reference's clean-up of tokenizer artefacts: " ?" " !" " ." " ," lose
 * the space; " ' " loses both spaces; " 's" " 'm" " 're" " 've" lose it. */
static size_t clean_spaces(char *s, size_t total) {
    size_t n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) n--;
        s[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < total && s[i - 1] == ' ' && s[i + 1] == ' ') {
            n--;
            s[++i] = 0;
        }
        s[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < total) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') n--;
            else if (i + 2 < total && ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e'))) n--;
        }
        s[n++] = x;
    }
    return n;
}

char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool special, size_t *len_bytes,
                       larder_error *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokenizer_check_id(t, ids[i], err)) return NULL;
        size_t pl;
        tokenizer_piece(t, ids[i], special, &pl);
        total += pl;
    }
    char *s = malloc(total + 1);
    if (!s) {
        error_set(err, ERR_NOMEM, "out of memory decoding %zu tokens", n);
        return NULL;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = tokenizer_piece(t, ids[i], special, &pl);
        if (i == 0 && t->add_space_prefix && pl && p[0] == ' ') { p++; pl--; } /* the prefixed space */
        memcpy(s + w, p, pl);
        w += pl;
    }
    if (t->clean_spaces) w = clean_spaces(s, w);
    s[w] = 0;
    if (len_bytes) *len_bytes = w;
    return s;
}

/* ---- facts */

uint32_t tokenizer_n_tokens(const tokenizer *t) { return t->n_tokens; }
int tokenizer_model(const tokenizer *t) { return t->model; }
const char *tokenizer_token_text(const tokenizer *t, int32_t id) { return tok_text(t, id); }
uint32_t tokenizer_token_attr(const tokenizer *t, int32_t id) { return t->attr[id]; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }
int32_t tokenizer_eot(const tokenizer *t) { return t->eot; }
bool tokenizer_add_bos(const tokenizer *t) { return t->add_bos; }
bool tokenizer_add_space_prefix(const tokenizer *t) { return t->add_space_prefix; }
bool tokenizer_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n_tokens && t->eog[id];
}
