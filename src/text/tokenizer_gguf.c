/*
 * tokenizer_gguf.c — builds a tokenizer from a GGUF file's metadata
 * (tokenizer.ggml.model / pre / tokens / scores / token_type / merges, the
 * special ids, add_bos_token / add_eos_token / add_space_prefix, general.name).
 *
 * It walks only the metadata section, on an mmap of the file, checking every
 * length and count against the bytes that remain (a truncated or hostile file
 * gives ERR_FORMAT, never a read past the end). String arrays are indexed
 * once so token i's text is O(1). Tensor data is never touched, so
 * vocabulary-only files load too.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/tokenizer.h"

/* GGUF metadata value types. */
enum { GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING, GT_ARRAY, GT_U64, GT_I64, GT_F64,
       GT_COUNT };
/* Deepest array nesting accepted (real files use 1). */
#define GGUF_MAX_ARRAY_DEPTH 4

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

typedef struct str_array {     /* an array of strings, indexed */
    const uint8_t **s;         /* (n) start of each string */
    uint64_t *len;             /* (n) its length in bytes */
    uint64_t n;
} str_array;

typedef struct num_array {     /* an array of 4-byte numbers (unaligned) */
    const uint8_t *data;
    uint64_t n;
    uint32_t type;
} num_array;

typedef struct vocab_meta {
    char model[32], pre[64], name[256];
    str_array tokens, merges;
    num_array scores, types;
    int64_t bos, eos, eot, eom, unk, pad;
    int add_bos, add_eos, add_space_prefix;
} vocab_meta;

static size_t scalar_size(uint32_t t) {
    static const size_t sz[GT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GT_COUNT ? sz[t] : 0;
}

static int need(cursor *c, uint64_t n) { return (uint64_t)(c->end - c->p) >= n ? 0 : -1; }

static int rd_u32(cursor *c, uint32_t *v) {
    if (need(c, 4)) return -1;
    memcpy(v, c->p, 4);
    c->p += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v) {
    if (need(c, 8)) return -1;
    memcpy(v, c->p, 8);
    c->p += 8;
    return 0;
}

static int rd_str(cursor *c, const uint8_t **s, uint64_t *len) {
    if (rd_u64(c, len) || need(c, *len)) return -1;
    *s = c->p;
    c->p += *len;
    return 0;
}

static int skip_value(cursor *c, uint32_t type, int depth) {
    if (type == GT_STRING) {
        const uint8_t *s;
        uint64_t l;
        return rd_str(c, &s, &l);
    }
    if (type == GT_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (depth >= GGUF_MAX_ARRAY_DEPTH || rd_u32(c, &et) || rd_u64(c, &n)) return -1;
        if (et == GT_STRING || et == GT_ARRAY) {
            for (uint64_t i = 0; i < n; i++)
                if (skip_value(c, et, depth + 1)) return -1;
            return 0;
        }
        size_t sz = scalar_size(et);
        if (!sz || n > UINT64_MAX / sz || need(c, n * sz)) return -1;
        c->p += n * sz;
        return 0;
    }
    size_t sz = scalar_size(type);
    if (!sz || need(c, sz)) return -1;
    c->p += sz;
    return 0;
}

static int read_int(cursor *c, uint32_t type, int64_t *v) {
    size_t sz = scalar_size(type);
    if (!sz || type == GT_F32 || type == GT_F64 || need(c, sz)) return -1;
    uint8_t b[8] = {0};
    memcpy(b, c->p, sz);
    c->p += sz;
    switch (type) {
    case GT_U8: case GT_BOOL: *v = b[0]; break;
    case GT_I8: *v = (int8_t)b[0]; break;
    case GT_U16: { uint16_t x; memcpy(&x, b, 2); *v = x; break; }
    case GT_I16: { int16_t x; memcpy(&x, b, 2); *v = x; break; }
    case GT_U32: { uint32_t x; memcpy(&x, b, 4); *v = x; break; }
    case GT_I32: { int32_t x; memcpy(&x, b, 4); *v = x; break; }
    case GT_U64: { uint64_t x; memcpy(&x, b, 8); *v = x > INT64_MAX ? -1 : (int64_t)x; break; }
    default: { int64_t x; memcpy(&x, b, 8); *v = x; break; }
    }
    return 0;
}

static bool key_is(const uint8_t *k, uint64_t kl, const char *name) {
    size_t n = strlen(name);
    return kl == n && !memcmp(k, name, n);
}

static void copy_str(char *dst, size_t cap, const uint8_t *s, uint64_t l) {
    size_t n = l < cap - 1 ? (size_t)l : cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static int read_str_array(cursor *c, str_array *a, const char *key, larder_error *err) {
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et) || rd_u64(c, &n)) return error_set(err, ERR_FORMAT, "truncated array %s", key);
    if (et != GT_STRING) return error_set(err, ERR_FORMAT, "%s is not an array of strings", key);
    if (n > (uint64_t)(c->end - c->p) / 8) return error_set(err, ERR_FORMAT, "%s: count %llu exceeds the file", key, (unsigned long long)n);
    free(a->s);
    free(a->len);
    a->s = malloc((n ? n : 1) * sizeof *a->s);
    a->len = malloc((n ? n : 1) * sizeof *a->len);
    if (!a->s || !a->len) return error_set(err, ERR_NOMEM, "out of memory reading %s", key);
    for (uint64_t i = 0; i < n; i++)
        if (rd_str(c, &a->s[i], &a->len[i])) return error_set(err, ERR_FORMAT, "%s: string %llu runs past the end of the file", key, (unsigned long long)i);
    a->n = n;
    return 0;
}

static int read_num_array(cursor *c, num_array *a, const char *key, larder_error *err) {
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et) || rd_u64(c, &n)) return error_set(err, ERR_FORMAT, "truncated array %s", key);
    if (et != GT_F32 && et != GT_I32 && et != GT_U32)
        return error_set(err, ERR_FORMAT, "%s has element type %u (want 4-byte numbers)", key, et);
    if (n > (uint64_t)(c->end - c->p) / 4) return error_set(err, ERR_FORMAT, "%s runs past the end of the file", key);
    a->data = c->p;
    a->n = n;
    a->type = et;
    c->p += n * 4;
    return 0;
}

static int parse_meta(const uint8_t *data, size_t size, vocab_meta *m, larder_error *err) {
    cursor c = {data, data + size};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &magic) || memcmp(data, "GGUF", 4)) return error_set(err, ERR_FORMAT, "not a GGUF file (bad magic)");
    if (rd_u32(&c, &version) || (version != 2 && version != 3))
        return error_set(err, ERR_FORMAT, "unsupported GGUF version %u", version);
    if (rd_u64(&c, &n_tensors) || rd_u64(&c, &n_kv)) return error_set(err, ERR_FORMAT, "truncated GGUF header");
    for (uint64_t k = 0; k < n_kv; k++) {
        const uint8_t *key;
        uint64_t kl;
        uint32_t type;
        if (rd_str(&c, &key, &kl) || rd_u32(&c, &type)) return error_set(err, ERR_FORMAT, "truncated metadata key %llu", (unsigned long long)k);
        char kname[96];
        copy_str(kname, sizeof kname, key, kl);
        int rc = 0;
        if (key_is(key, kl, "tokenizer.ggml.tokens") && type == GT_ARRAY) rc = read_str_array(&c, &m->tokens, kname, err);
        else if (key_is(key, kl, "tokenizer.ggml.merges") && type == GT_ARRAY) rc = read_str_array(&c, &m->merges, kname, err);
        else if (key_is(key, kl, "tokenizer.ggml.scores") && type == GT_ARRAY) rc = read_num_array(&c, &m->scores, kname, err);
        else if (key_is(key, kl, "tokenizer.ggml.token_type") && type == GT_ARRAY) rc = read_num_array(&c, &m->types, kname, err);
        else if (type == GT_STRING && (key_is(key, kl, "tokenizer.ggml.model") || key_is(key, kl, "tokenizer.ggml.pre") ||
                                       key_is(key, kl, "general.name"))) {
            const uint8_t *s;
            uint64_t l;
            if (rd_str(&c, &s, &l)) return error_set(err, ERR_FORMAT, "truncated value of %s", kname);
            if (key_is(key, kl, "tokenizer.ggml.model")) copy_str(m->model, sizeof m->model, s, l);
            else if (key_is(key, kl, "tokenizer.ggml.pre")) copy_str(m->pre, sizeof m->pre, s, l);
            else copy_str(m->name, sizeof m->name, s, l);
        } else if (type != GT_STRING && type != GT_ARRAY && kl > 15 && !memcmp(key, "tokenizer.ggml.", 15)) {
            int64_t v;
            if (type == GT_F32 || type == GT_F64) { rc = skip_value(&c, type, 0); }
            else if (read_int(&c, type, &v)) return error_set(err, ERR_FORMAT, "bad value of %s", kname);
            else if (key_is(key, kl, "tokenizer.ggml.bos_token_id")) m->bos = v;
            else if (key_is(key, kl, "tokenizer.ggml.eos_token_id")) m->eos = v;
            else if (key_is(key, kl, "tokenizer.ggml.eot_token_id")) m->eot = v;
            else if (key_is(key, kl, "tokenizer.ggml.eom_token_id")) m->eom = v;
            else if (key_is(key, kl, "tokenizer.ggml.unknown_token_id")) m->unk = v;
            else if (key_is(key, kl, "tokenizer.ggml.padding_token_id")) m->pad = v;
            else if (key_is(key, kl, "tokenizer.ggml.add_bos_token")) m->add_bos = v != 0;
            else if (key_is(key, kl, "tokenizer.ggml.add_eos_token")) m->add_eos = v != 0;
            else if (key_is(key, kl, "tokenizer.ggml.add_space_prefix")) m->add_space_prefix = v != 0;
        } else {
            if (skip_value(&c, type, 0)) return error_set(err, ERR_FORMAT, "metadata value of %s is malformed or truncated", kname);
        }
        if (rc) return -1;
    }
    return 0;
}

static const char *src_text(void *ctx, uint32_t i, size_t *len) {
    vocab_meta *m = ctx;
    *len = (size_t)m->tokens.len[i];
    return (const char *)m->tokens.s[i];
}

static const char *src_merge(void *ctx, uint32_t i, size_t *len) {
    vocab_meta *m = ctx;
    *len = (size_t)m->merges.len[i];
    return (const char *)m->merges.s[i];
}

static float src_score(void *ctx, uint32_t i) {
    vocab_meta *m = ctx;
    if (m->scores.type == GT_F32) {
        float f;
        memcpy(&f, m->scores.data + 4 * (size_t)i, 4);
        return f;
    }
    int32_t v;
    memcpy(&v, m->scores.data + 4 * (size_t)i, 4);
    return (float)v;
}

static int32_t src_type(void *ctx, uint32_t i) {
    vocab_meta *m = ctx;
    int32_t v;
    memcpy(&v, m->types.data + 4 * (size_t)i, 4);
    return v;
}

static int32_t clamp_id(int64_t v) { return v < 0 || v > INT32_MAX ? TOKEN_NONE : (int32_t)v; }

tokenizer *tokenizer_load_file(const char *path, larder_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        error_set(err, ERR_IO, "%s: cannot open", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 24) {
        close(fd);
        error_set(err, ERR_FORMAT, "%s: not a GGUF file (too small)", path);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        error_set(err, ERR_IO, "%s: cannot map", path);
        return NULL;
    }
    vocab_meta m;
    memset(&m, 0, sizeof m);
    m.bos = m.eos = m.eot = m.eom = m.unk = m.pad = -1;
    m.add_bos = m.add_eos = m.add_space_prefix = -1;
    tokenizer *t = NULL;
    if (parse_meta(map, size, &m, err)) goto out;
    tokenizer_source src = {0};
    if (!strcmp(m.model, "llama")) src.model = TOKENIZER_MODEL_SPM;
    else if (!strcmp(m.model, "gpt2")) src.model = TOKENIZER_MODEL_BPE;
    else {
        error_set(err, ERR_UNSUPPORTED, "unsupported tokenizer.ggml.model '%s'", m.model[0] ? m.model : "(missing)");
        goto out;
    }
    if (m.tokens.n == 0 || m.tokens.n > UINT32_MAX) {
        error_set(err, ERR_FORMAT, "no tokenizer.ggml.tokens");
        goto out;
    }
    if (m.scores.data && m.scores.n < m.tokens.n) { error_set(err, ERR_FORMAT, "fewer scores than tokens"); goto out; }
    if (m.types.data && m.types.n < m.tokens.n) { error_set(err, ERR_FORMAT, "fewer token types than tokens"); goto out; }
    src.pre = m.pre;
    src.model_name = m.name;
    src.n_tokens = (uint32_t)m.tokens.n;
    src.ctx = &m;
    src.token_text = src_text;
    src.token_score = m.scores.data ? src_score : NULL;
    src.token_type = m.types.data ? src_type : NULL;
    src.n_merges = m.merges.n > UINT32_MAX ? UINT32_MAX : (uint32_t)m.merges.n;
    src.merge_text = src_merge;
    src.bos_id = clamp_id(m.bos);
    src.eos_id = clamp_id(m.eos);
    src.eot_id = clamp_id(m.eot);
    src.eom_id = clamp_id(m.eom);
    src.unk_id = clamp_id(m.unk);
    src.pad_id = clamp_id(m.pad);
    src.add_bos = m.add_bos;
    src.add_eos = m.add_eos;
    src.add_space_prefix = m.add_space_prefix;
    t = tokenizer_create(&src, err);
out:
    if (!t && err) error_prefix(err, "%s", path);
    free(m.tokens.s);
    free(m.tokens.len);
    free(m.merges.s);
    free(m.merges.len);
    munmap(map, size);
    return t;
}
