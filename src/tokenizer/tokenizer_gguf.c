/*
 * tokenizer_gguf.c — builds a tokenizer from a GGUF file's metadata
 * (tokenizer.ggml.model / pre / tokens / scores / token_type / merges, the
 * special ids, add_bos_token / add_eos_token / add_space_prefix, general.name).
 *
 * The file is read by the GGUF reader (src/gguf), which has validated every
 * length, count and type before this code looks at it; here only the
 * tokenizer's own consistency is checked (types of the arrays, one score and
 * one type per token). Tensor data is never touched, so vocabulary-only files
 * load too.
 */
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static const char *src_text(void *ctx, uint32_t i, size_t *len) {
    return gguf_get_array_string(ctx, "tokenizer.ggml.tokens", i, len);
}

static const char *src_merge(void *ctx, uint32_t i, size_t *len) {
    return gguf_get_array_string(ctx, "tokenizer.ggml.merges", i, len);
}

static float src_score(void *ctx, uint32_t i) {
    float f = 0;
    gguf_array_get_f32(ctx, "tokenizer.ggml.scores", i, &f);
    return f;
}

static int32_t src_type(void *ctx, uint32_t i) {
    int32_t v = 1; /* normal */
    gguf_array_get_i32(ctx, "tokenizer.ggml.token_type", i, &v);
    return v;
}

/* A special id from metadata, TOKEN_NONE when absent or out of int32 range. */
static int32_t special_id(const gguf_file *f, const char *key) {
    int64_t v;
    if (!gguf_get_i64(f, key, &v) || v < 0 || v > INT32_MAX) return TOKEN_NONE;
    return (int32_t)v;
}

/* 1 / 0 from a bool key, -1 (the family's default) when absent. */
static int flag(const gguf_file *f, const char *key) {
    bool b;
    return gguf_get_bool(f, key, &b) ? (int)b : -1;
}

/* The array's length when it is an array of elem_type (or of any type when
 * elem_type is GGUF_TYPE_COUNT); 0 when absent; -1 when of another type. */
static int64_t array_len(const gguf_file *f, const char *key, uint32_t elem_type) {
    uint32_t t;
    uint64_t n;
    if (!gguf_get_array_info(f, key, &t, &n)) return gguf_find_key(f, key) >= 0 ? -1 : 0;
    if (elem_type != GGUF_TYPE_COUNT && t != elem_type) return -1;
    return n > INT64_MAX ? -1 : (int64_t)n;
}

tokenizer *tokenizer_load_gguf(const gguf_file *f, larder_error *err) {
    size_t len;
    const char *model = gguf_get_string(f, "tokenizer.ggml.model", &len);
    tokenizer_source src = {0};
    if (model && !strcmp(model, "llama")) src.model = TOKENIZER_MODEL_SPM;
    else if (model && !strcmp(model, "gpt2")) src.model = TOKENIZER_MODEL_BPE;
    else {
        error_set(err, ERR_UNSUPPORTED, "unsupported tokenizer.ggml.model '%s'", model ? model : "(missing)");
        return NULL;
    }
    int64_t n_tokens = array_len(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
    if (n_tokens <= 0 || n_tokens > UINT32_MAX) {
        error_set(err, ERR_FORMAT, "no tokenizer.ggml.tokens string array");
        return NULL;
    }
    int64_t n_scores = array_len(f, "tokenizer.ggml.scores", GGUF_TYPE_COUNT);
    int64_t n_types = array_len(f, "tokenizer.ggml.token_type", GGUF_TYPE_COUNT);
    int64_t n_merges = array_len(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING);
    if (n_scores < 0 || (n_scores > 0 && n_scores < n_tokens)) {
        error_set(err, ERR_FORMAT, "tokenizer.ggml.scores: fewer scores than tokens");
        return NULL;
    }
    if (n_types < 0 || (n_types > 0 && n_types < n_tokens)) {
        error_set(err, ERR_FORMAT, "tokenizer.ggml.token_type: fewer types than tokens");
        return NULL;
    }
    if (n_merges < 0) {
        error_set(err, ERR_FORMAT, "tokenizer.ggml.merges is not a string array");
        return NULL;
    }
    src.pre = gguf_get_string(f, "tokenizer.ggml.pre", &len);
    src.model_name = gguf_get_string(f, "general.name", &len);
    src.n_tokens = (uint32_t)n_tokens;
    src.ctx = (void *)f;
    src.token_text = src_text;
    src.token_score = n_scores > 0 ? src_score : NULL;
    src.token_type = n_types > 0 ? src_type : NULL;
    src.n_merges = n_merges > UINT32_MAX ? UINT32_MAX : (uint32_t)n_merges;
    src.merge_text = src_merge;
    src.bos_id = special_id(f, "tokenizer.ggml.bos_token_id");
    src.eos_id = special_id(f, "tokenizer.ggml.eos_token_id");
    src.eot_id = special_id(f, "tokenizer.ggml.eot_token_id");
    src.eom_id = special_id(f, "tokenizer.ggml.eom_token_id");
    src.unk_id = special_id(f, "tokenizer.ggml.unknown_token_id");
    src.pad_id = special_id(f, "tokenizer.ggml.padding_token_id");
    src.add_bos = flag(f, "tokenizer.ggml.add_bos_token");
    src.add_eos = flag(f, "tokenizer.ggml.add_eos_token");
    src.add_space_prefix = flag(f, "tokenizer.ggml.add_space_prefix");
    return tokenizer_create(&src, err);
}

tokenizer *tokenizer_load_file(const char *path, larder_error *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) {
        error_prefix(err, "%s", path);
        return NULL;
    }
    tokenizer *t = tokenizer_load_gguf(f, err);
    if (!t) error_prefix(err, "%s", path);
    gguf_close(f);
    return t;
}
