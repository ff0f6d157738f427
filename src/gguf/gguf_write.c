/*
 * gguf_write.c — building and writing GGUF v3 files (see gguf.h).
 *
 * Key idea: each key/value is stored already encoded as the bytes that follow
 * its key in the file (u32 type + value), so writing is a straight copy and
 * gguf_writer_copy_kv is a re-encoding of the parsed record. Tensor data is
 * produced at write time (caller pointer, or a fill callback per chunk of rows
 * into one reused buffer of at most GGUF_WRITE_CHUNK_BYTES), so the writer
 * never holds a whole model. The file is written to a temp file beside the
 * target, fsynced, and renamed over it: readers never see a half-written file.
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/dtype.h"

/* Largest buffer handed to a fill callback (at least one row is always used). */
#define GGUF_WRITE_CHUNK_BYTES ((size_t)32 << 20)

typedef struct writer_kv {
    char *key;
    uint8_t *val;      /* u32 type + encoded value */
    size_t val_bytes;
} writer_kv;

typedef struct writer_tensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    size_t row_bytes;
    int64_t n_rows;
    size_t size_bytes;
    const void *data;      /* or NULL when fill is used */
    gguf_fill_fn fill;
    void *fill_ctx;
} writer_tensor;

struct gguf_writer {
    writer_kv *kvs;
    size_t n_kv, cap_kv;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
};

gguf_writer *gguf_writer_create(larder_error *err) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) error_set(err, ERR_NOMEM, "out of memory");
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Stores (key, encoded value); takes ownership of val (freed on failure). */
static int writer_put(gguf_writer *w, const char *key, uint8_t *val, size_t val_bytes, larder_error *err) {
    if (!val) return error_set(err, ERR_NOMEM, "out of memory");
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen >= GGUF_KEY_MAX_BYTES) {
        free(val);
        return error_set(err, ERR_INVALID, "bad metadata key (empty or longer than %d bytes)", GGUF_KEY_MAX_BYTES - 1);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].val = val;
            w->kvs[i].val_bytes = val_bytes;
            return 0;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        writer_kv *kvs = realloc(w->kvs, cap * sizeof *kvs);
        if (!kvs) { free(val); return error_set(err, ERR_NOMEM, "out of memory"); }
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(val); return error_set(err, ERR_NOMEM, "out of memory"); }
    w->kvs[w->n_kv++] = (writer_kv){k, val, val_bytes};
    return 0;
}

static int put_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v, larder_error *err) {
    size_t n = gguf_type_size(type);
    uint8_t *val = malloc(4 + n);
    if (val) {
        memcpy(val, &type, 4);
        memcpy(val + 4, v, n);
    }
    return writer_put(w, key, val, 4 + n, err);
}

int gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_UINT8, &v, err); }
int gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_INT8, &v, err); }
int gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_UINT16, &v, err); }
int gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_INT16, &v, err); }
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_UINT32, &v, err); }
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_INT32, &v, err); }
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_UINT64, &v, err); }
int gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_INT64, &v, err); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_FLOAT32, &v, err); }
int gguf_writer_set_f64(gguf_writer *w, const char *key, double v, larder_error *err) { return put_scalar(w, key, GGUF_TYPE_FLOAT64, &v, err); }
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v, larder_error *err) {
    uint8_t b = v ? 1 : 0;
    return put_scalar(w, key, GGUF_TYPE_BOOL, &b, err);
}

int gguf_writer_set_string_n(gguf_writer *w, const char *key, const char *s, size_t len, larder_error *err) {
    if (len > SIZE_MAX - 12) return error_set(err, ERR_INVALID, "string too long");
    uint8_t *val = malloc(12 + len);
    if (val) {
        uint32_t type = GGUF_TYPE_STRING;
        uint64_t n = len;
        memcpy(val, &type, 4);
        memcpy(val + 4, &n, 8);
        if (len) memcpy(val + 12, s, len);
    }
    return writer_put(w, key, val, 12 + len, err);
}

int gguf_writer_set_string(gguf_writer *w, const char *key, const char *s, larder_error *err) {
    return gguf_writer_set_string_n(w, key, s, strlen(s), err);
}

int gguf_writer_set_array(gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                          uint64_t count, larder_error *err) {
    size_t es = gguf_type_size(elem_type);
    if (es == 0) return error_set(err, ERR_INVALID, "array of %s is not a numeric array", gguf_type_name(elem_type));
    if (count > (SIZE_MAX - 16) / es) return error_set(err, ERR_INVALID, "array too long");
    size_t n = 16 + (size_t)count * es;
    uint8_t *val = malloc(n);
    if (val) {
        uint32_t type = GGUF_TYPE_ARRAY;
        memcpy(val, &type, 4);
        memcpy(val + 4, &elem_type, 4);
        memcpy(val + 8, &count, 8);
        if (count) memcpy(val + 16, data, (size_t)count * es);
    }
    return writer_put(w, key, val, n, err);
}

int gguf_writer_set_string_array(gguf_writer *w, const char *key, const char *const *strs,
                                 const size_t *lens, uint64_t count, larder_error *err) {
    size_t n = 16;
    for (uint64_t i = 0; i < count; i++) {
        size_t len = lens ? lens[i] : strlen(strs[i]);
        if (len > SIZE_MAX - n - 8) return error_set(err, ERR_INVALID, "string array too long");
        n += 8 + len;
    }
    uint8_t *val = malloc(n);
    if (val) {
        uint32_t type = GGUF_TYPE_ARRAY, et = GGUF_TYPE_STRING;
        memcpy(val, &type, 4);
        memcpy(val + 4, &et, 4);
        memcpy(val + 8, &count, 8);
        size_t at = 16;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t len = lens ? lens[i] : strlen(strs[i]);
            memcpy(val + at, &len, 8);
            if (len) memcpy(val + at + 8, strs[i], (size_t)len);
            at += 8 + (size_t)len;
        }
    }
    return writer_put(w, key, val, n, err);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *key, larder_error *err) {
    const gguf_kv *kv = gguf_kv_get(src, key);
    if (!kv) return error_set(err, ERR_INVALID, "key '%s' not found", key);
    if (kv->type == GGUF_TYPE_STRING) return gguf_writer_set_string_n(w, key, kv->str, kv->str_len, err);
    if (kv->type != GGUF_TYPE_ARRAY) return put_scalar(w, key, kv->type, kv->raw, err);
    if (kv->elem_type != GGUF_TYPE_STRING) return gguf_writer_set_array(w, key, kv->elem_type, kv->raw, kv->count, err);
    /* String array: point at the blob's pieces. */
    const char **strs = malloc((size_t)(kv->count ? kv->count : 1) * sizeof *strs);
    size_t *lens = malloc((size_t)(kv->count ? kv->count : 1) * sizeof *lens);
    int rc;
    if (!strs || !lens) {
        rc = error_set(err, ERR_NOMEM, "out of memory");
    } else {
        for (uint64_t i = 0; i < kv->count; i++) {
            strs[i] = kv->strs_blob + kv->str_offs[i];
            lens[i] = (size_t)(kv->str_offs[i + 1] - kv->str_offs[i] - 1);
        }
        rc = gguf_writer_set_string_array(w, key, strs, lens, kv->count, err);
    }
    free(strs);
    free(lens);
    return rc;
}

static int add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                      const void *data, gguf_fill_fn fill, void *ctx, larder_error *err) {
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen >= GGUF_TENSOR_NAME_MAX_BYTES)
        return error_set(err, ERR_INVALID, "tensor name '%s' is empty or longer than %d bytes",
                         name ? name : "", GGUF_TENSOR_NAME_MAX_BYTES - 1);
    const tensor_type_traits *tt = tensor_type_get(type);
    if (!tt) return error_set(err, ERR_INVALID, "tensor '%s': unknown type %u", name, type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return error_set(err, ERR_INVALID, "tensor '%s': %u dimensions", name, n_dims);
    writer_tensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    int64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] <= 0) return error_set(err, ERR_INVALID, "tensor '%s': dimension %u is %lld", name, d, (long long)t.ne[d]);
        if (d > 0) {
            if (rows > INT64_MAX / t.ne[d]) return error_set(err, ERR_INVALID, "tensor '%s' is too large", name);
            rows *= t.ne[d];
        }
    }
    if (t.ne[0] % tt->block_elems != 0)
        return error_set(err, ERR_INVALID, "tensor '%s' (%s): first dimension %lld is not a multiple of %d",
                         name, tt->name, (long long)t.ne[0], tt->block_elems);
    t.row_bytes = tensor_row_bytes(type, t.ne[0]);
    if (t.row_bytes == 0 || (uint64_t)rows > SIZE_MAX / t.row_bytes)
        return error_set(err, ERR_INVALID, "tensor '%s' is too large", name);
    t.n_rows = rows;
    t.size_bytes = t.row_bytes * (size_t)rows;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return error_set(err, ERR_INVALID, "duplicate tensor name '%s'", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        writer_tensor *ts = realloc(w->tensors, cap * sizeof *ts);
        if (!ts) return error_set(err, ERR_NOMEM, "out of memory");
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    if (!t.name) return error_set(err, ERR_NOMEM, "out of memory");
    t.data = data;
    t.fill = fill;
    t.fill_ctx = ctx;
    w->tensors[w->n_tensors++] = t;
    return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, larder_error *err) {
    if (!data) return error_set(err, ERR_INVALID, "tensor '%s': no data", name ? name : "");
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL, err);
}

int gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const int64_t *ne, gguf_fill_fn fill, void *ctx, larder_error *err) {
    if (!fill) return error_set(err, ERR_INVALID, "tensor '%s': no fill function", name ? name : "");
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ctx, err);
}

/* ---- writing */

typedef struct out_file {
    FILE *fp;
    uint64_t pos;
    larder_error *err;
    int failed;
} out_file;

static void out_bytes(out_file *o, const void *p, size_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->fp) != n) {
        o->failed = 1;
        error_set(o->err, ERR_IO, "write failed: %s", strerror(errno));
        return;
    }
    o->pos += n;
}

static void out_u32(out_file *o, uint32_t v) { out_bytes(o, &v, 4); }
static void out_u64(out_file *o, uint64_t v) { out_bytes(o, &v, 8); }

static void out_pad(out_file *o, size_t alignment) {
    static const uint8_t zeros[256];
    size_t pad = (size_t)((alignment - o->pos % alignment) % alignment);
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        out_bytes(o, zeros, n);
        pad -= n;
    }
}

static size_t writer_alignment(const gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        uint32_t type, a;
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        memcpy(&type, w->kvs[i].val, 4);
        if (type != GGUF_TYPE_UINT32) return 0;
        memcpy(&a, w->kvs[i].val + 4, 4);
        if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT) return 0;
        return a;
    }
    return GGUF_DEFAULT_ALIGNMENT;
}

static int write_body(gguf_writer *w, out_file *o, size_t alignment) {
    out_u32(o, 0x46554747u); /* "GGUF" */
    out_u32(o, 3);
    out_u64(o, w->n_tensors);
    out_u64(o, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t klen = strlen(w->kvs[i].key);
        out_u64(o, klen);
        out_bytes(o, w->kvs[i].key, klen);
        out_bytes(o, w->kvs[i].val, w->kvs[i].val_bytes);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        size_t nlen = strlen(t->name);
        out_u64(o, nlen);
        out_bytes(o, t->name, nlen);
        out_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) out_u64(o, (uint64_t)t->ne[d]);
        out_u32(o, t->type);
        out_u64(o, offset);
        offset += (t->size_bytes + alignment - 1) / alignment * alignment;
    }
    out_pad(o, alignment);
    if (o->failed) return -1;
    /* Tensor data; fill callbacks write into one reused chunk buffer. */
    size_t chunk_cap = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        if (!t->fill) continue;
        size_t rows = GGUF_WRITE_CHUNK_BYTES / t->row_bytes;
        if (rows == 0) rows = 1;
        if ((int64_t)rows > t->n_rows) rows = (size_t)t->n_rows;
        if (rows * t->row_bytes > chunk_cap) chunk_cap = rows * t->row_bytes;
    }
    uint8_t *chunk = NULL;
    if (chunk_cap && !(chunk = malloc(chunk_cap))) return error_set(o->err, ERR_NOMEM, "out of memory for a %zu-byte write buffer", chunk_cap);
    int rc = 0;
    for (size_t i = 0; i < w->n_tensors && !o->failed; i++) {
        const writer_tensor *t = &w->tensors[i];
        if (!t->fill) {
            out_bytes(o, t->data, t->size_bytes);
        } else {
            int64_t step = (int64_t)(chunk_cap / t->row_bytes);
            for (int64_t r = 0; r < t->n_rows && !o->failed; r += step) {
                int64_t n = t->n_rows - r < step ? t->n_rows - r : step;
                if (t->fill(t->fill_ctx, r, n, chunk, o->err) != 0) {
                    error_prefix(o->err, "tensor '%s'", t->name);
                    o->failed = 1;
                    break;
                }
                out_bytes(o, chunk, (size_t)n * t->row_bytes);
            }
        }
        out_pad(o, alignment);
    }
    free(chunk);
    if (o->failed) rc = -1;
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, larder_error *err) {
    size_t alignment = writer_alignment(w);
    if (alignment == 0) return error_set(err, ERR_INVALID, "general.alignment must be a u32 power of two <= %u", GGUF_MAX_ALIGNMENT);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return error_set(err, ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        error_set(err, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        error_set(err, ERR_IO, "cannot open %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    out_file o = {fp, 0, err, 0};
    int rc = write_body(w, &o, alignment);
    if (rc == 0 && fflush(fp) != 0) rc = error_set(err, ERR_IO, "write failed: %s", strerror(errno));
    if (rc == 0 && fsync(fileno(fp)) != 0) rc = error_set(err, ERR_IO, "fsync failed: %s", strerror(errno));
    if (fclose(fp) != 0 && rc == 0) rc = error_set(err, ERR_IO, "close failed: %s", strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = error_set(err, ERR_IO, "cannot rename to %s: %s", path, strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
