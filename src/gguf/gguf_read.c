/*
 * gguf_read.c — the validating GGUF parser and the metadata / tensor accessors
 * (see gguf.h for the format and the contract).
 *
 * Key idea: a bounds-checked cursor over the whole file. Every read asks the
 * cursor for n bytes first, and every count is compared with the bytes that
 * are left (times the smallest size one item can have) BEFORE anything is
 * allocated for it, so a hostile header cannot make us allocate more than a
 * small multiple of the file size. Keys and tensor names go into
 * open-addressing hash tables (index + 1, 0 = empty) for O(1) lookups and
 * duplicate detection; string arrays are copied into one NUL-separated blob
 * with an offset table, so element i is O(1).
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hash.h"
#include "tensor/dtype.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */

/* Smallest encodings, used to bound counts by the bytes left:
 * a kv is key length (8) + key (>= 1) + type (4) + value (>= 1);
 * a tensor info is name length (8) + name (>= 1) + n_dims (4) + ne (>= 8) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 14
#define GGUF_MIN_TENSOR_INFO_BYTES 33

static const struct { const char *name; size_t size; } GGUF_TYPES[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = {"u8", 1},     [GGUF_TYPE_INT8] = {"i8", 1},
    [GGUF_TYPE_UINT16] = {"u16", 2},   [GGUF_TYPE_INT16] = {"i16", 2},
    [GGUF_TYPE_UINT32] = {"u32", 4},   [GGUF_TYPE_INT32] = {"i32", 4},
    [GGUF_TYPE_FLOAT32] = {"f32", 4},  [GGUF_TYPE_BOOL] = {"bool", 1},
    [GGUF_TYPE_STRING] = {"string", 0}, [GGUF_TYPE_ARRAY] = {"array", 0},
    [GGUF_TYPE_UINT64] = {"u64", 8},   [GGUF_TYPE_INT64] = {"i64", 8},
    [GGUF_TYPE_FLOAT64] = {"f64", 8},
};

const char *gguf_type_name(uint32_t type) {
    return type < GGUF_TYPE_COUNT ? GGUF_TYPES[type].name : "?";
}

size_t gguf_type_size(uint32_t type) {
    return type < GGUF_TYPE_COUNT ? GGUF_TYPES[type].size : 0;
}

/* ---- the bounds-checked cursor */

typedef struct cursor {
    const uint8_t *base;
    size_t size;  /* bytes in the buffer */
    size_t pos;   /* next byte to read */
    larder_error *err;
} cursor;

static size_t cursor_left(const cursor *c) { return c->size - c->pos; }

/* Takes n bytes: pointer to them, or NULL with err set ("truncated"). */
static const uint8_t *cursor_take(cursor *c, size_t n, const char *what) {
    if (n > cursor_left(c)) {
        error_set(c->err, ERR_FORMAT, "truncated file: %s at offset %zu needs %zu bytes, %zu left",
                  what, c->pos, n, cursor_left(c));
        return NULL;
    }
    const uint8_t *p = c->base + c->pos;
    c->pos += n;
    return p;
}

static int cursor_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p = cursor_take(c, 4, what);
    if (!p) return -1;
    memcpy(v, p, 4);
    return 0;
}

static int cursor_u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p = cursor_take(c, 8, what);
    if (!p) return -1;
    memcpy(v, p, 8);
    return 0;
}

/* A string: u64 length + bytes. Returns the bytes (not NUL-terminated) or NULL. */
static const uint8_t *cursor_string(cursor *c, uint64_t *len, const char *what) {
    size_t at = c->pos;
    if (cursor_u64(c, len, what) != 0) return NULL;
    if (*len > cursor_left(c)) {
        error_set(c->err, ERR_FORMAT,
                  "%s at offset %zu has length %llu, beyond the end of the file (%zu bytes left)",
                  what, at, (unsigned long long)*len, cursor_left(c));
        return NULL;
    }
    return cursor_take(c, (size_t)*len, what);
}

static char *dup_bytes(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- hash tables: slots hold index + 1; 0 is empty */

static int64_t *table_alloc(int64_t n, size_t *mask_out) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    int64_t *t = calloc(cap, sizeof *t);
    *mask_out = cap - 1;
    return t;
}

/* ---- parsing */

static int parse_kv_value(gguf_file *f, cursor *c, gguf_kv *kv) {
    uint32_t type = kv->type;
    if (type >= GGUF_TYPE_COUNT)
        return error_set(c->err, ERR_FORMAT, "key '%s' has unknown value type %u", kv->key, type);
    if (type == GGUF_TYPE_STRING) {
        uint64_t len;
        const uint8_t *s = cursor_string(c, &len, "string value");
        if (!s) return error_prefix(c->err, "key '%s'", kv->key);
        kv->str = dup_bytes(s, (size_t)len);
        if (!kv->str) return error_set(c->err, ERR_NOMEM, "out of memory reading key '%s'", kv->key);
        kv->str_len = (size_t)len;
        return 0;
    }
    if (type != GGUF_TYPE_ARRAY) {
        kv->raw = cursor_take(c, gguf_type_size(type), "value");
        return kv->raw ? 0 : error_prefix(c->err, "key '%s'", kv->key);
    }
    uint32_t et;
    uint64_t count;
    if (cursor_u32(c, &et, "array element type") != 0 || cursor_u64(c, &count, "array count") != 0)
        return error_prefix(c->err, "key '%s'", kv->key);
    if (et == GGUF_TYPE_ARRAY)
        return error_set(c->err, ERR_FORMAT, "key '%s' is a nested array (not supported)", kv->key);
    if (et >= GGUF_TYPE_COUNT)
        return error_set(c->err, ERR_FORMAT, "key '%s' is an array of unknown type %u", kv->key, et);
    kv->elem_type = et;
    kv->count = count;
    if (et != GGUF_TYPE_STRING) {
        size_t es = gguf_type_size(et);
        if (count > cursor_left(c) / es)
            return error_set(c->err, ERR_FORMAT,
                             "key '%s': array of %llu %s elements at offset %zu exceeds the file (%zu bytes left)",
                             kv->key, (unsigned long long)count, gguf_type_name(et), c->pos, cursor_left(c));
        kv->raw = cursor_take(c, (size_t)count * es, "array");
        return 0;
    }
    /* String array: every element needs at least its 8-byte length. */
    if (count > cursor_left(c) / 8)
        return error_set(c->err, ERR_FORMAT,
                         "key '%s': array of %llu strings at offset %zu exceeds the file (%zu bytes left)",
                         kv->key, (unsigned long long)count, c->pos, cursor_left(c));
    /* Pass 1: validate every length and sum them (the sum is <= file size). */
    size_t start = c->pos;
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t len;
        if (!cursor_string(c, &len, "array string"))
            return error_prefix(c->err, "key '%s' element %llu", kv->key, (unsigned long long)i);
        total += (size_t)len;
    }
    /* Pass 2: copy into one blob, each string NUL-terminated. */
    kv->str_offs = malloc(((size_t)count + 1) * sizeof *kv->str_offs);
    kv->strs_blob = malloc(total + (size_t)count + 1);
    if (!kv->str_offs || !kv->strs_blob)
        return error_set(c->err, ERR_NOMEM, "out of memory reading key '%s'", kv->key);
    size_t off = 0, pos = start;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t len;
        memcpy(&len, c->base + pos, 8);
        pos += 8;
        kv->str_offs[i] = off;
        if (len) memcpy(kv->strs_blob + off, c->base + pos, (size_t)len);
        pos += (size_t)len;
        off += (size_t)len;
        kv->strs_blob[off++] = '\0';
    }
    kv->str_offs[count] = off;
    (void)f;
    return 0;
}

static int parse_kvs(gguf_file *f, cursor *c, uint64_t n_kv) {
    if (n_kv > cursor_left(c) / GGUF_MIN_KV_BYTES)
        return error_set(c->err, ERR_FORMAT,
                         "metadata count %llu is more than the file can hold (%zu bytes left: truncated or corrupt file)",
                         (unsigned long long)n_kv, cursor_left(c));
    f->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kvs);
    f->kv_table = table_alloc((int64_t)n_kv, &f->kv_mask);
    if (!f->kvs || !f->kv_table) return error_set(c->err, ERR_NOMEM, "out of memory for %llu keys", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        uint64_t len;
        size_t at = c->pos;
        const uint8_t *k = cursor_string(c, &len, "metadata key");
        if (!k) return error_prefix(c->err, "metadata entry %llu", (unsigned long long)i);
        if (len == 0) return error_set(c->err, ERR_FORMAT, "metadata entry %llu at offset %zu has an empty key", (unsigned long long)i, at);
        if (len >= GGUF_KEY_MAX_BYTES)
            return error_set(c->err, ERR_FORMAT, "metadata entry %llu: key of %llu bytes is too long (limit %d)",
                             (unsigned long long)i, (unsigned long long)len, GGUF_KEY_MAX_BYTES);
        if (memchr(k, 0, (size_t)len))
            return error_set(c->err, ERR_FORMAT, "metadata entry %llu: key contains a NUL byte", (unsigned long long)i);
        kv->key = dup_bytes(k, (size_t)len);
        if (!kv->key) return error_set(c->err, ERR_NOMEM, "out of memory");
        f->n_kv = (int64_t)i + 1; /* from here on gguf_close frees this entry */
        /* Insert into the key table, rejecting duplicates. */
        size_t slot = hash_string(kv->key) & f->kv_mask;
        while (f->kv_table[slot]) {
            if (strcmp(f->kvs[f->kv_table[slot] - 1].key, kv->key) == 0)
                return error_set(c->err, ERR_FORMAT, "duplicate metadata key '%s'", kv->key);
            slot = (slot + 1) & f->kv_mask;
        }
        f->kv_table[slot] = (int64_t)i + 1;
        if (cursor_u32(c, &kv->type, "value type") != 0) return error_prefix(c->err, "key '%s'", kv->key);
        if (parse_kv_value(f, c, kv) != 0) return -1;
    }
    return 0;
}

static int parse_alignment(gguf_file *f, larder_error *err) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_find_key(f, "general.alignment");
    if (i < 0) return 0;
    if (f->kvs[i].type != GGUF_TYPE_UINT32)
        return error_set(err, ERR_FORMAT, "general.alignment has type %s, expected u32",
                         gguf_type_name(f->kvs[i].type));
    uint32_t a;
    memcpy(&a, f->kvs[i].raw, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return error_set(err, ERR_FORMAT, "general.alignment %u is not a power of two", a);
    if (a > GGUF_MAX_ALIGNMENT)
        return error_set(err, ERR_FORMAT, "general.alignment %u is larger than the limit %u", a, GGUF_MAX_ALIGNMENT);
    f->alignment = a;
    return 0;
}

static int parse_tensor_info(gguf_file *f, cursor *c, int64_t i) {
    gguf_tensor *t = &f->tensors[i];
    uint64_t len;
    const uint8_t *name = cursor_string(c, &len, "tensor name");
    if (!name) return error_prefix(c->err, "tensor %lld", (long long)i);
    if (len == 0) return error_set(c->err, ERR_FORMAT, "tensor %lld has an empty name", (long long)i);
    if (len >= GGUF_TENSOR_NAME_MAX_BYTES)
        return error_set(c->err, ERR_FORMAT, "tensor %lld: name of %llu bytes is too long (limit %d)",
                         (long long)i, (unsigned long long)len, GGUF_TENSOR_NAME_MAX_BYTES - 1);
    if (memchr(name, 0, (size_t)len))
        return error_set(c->err, ERR_FORMAT, "tensor %lld: name contains a NUL byte", (long long)i);
    char *copy = dup_bytes(name, (size_t)len);
    if (!copy) return error_set(c->err, ERR_NOMEM, "out of memory");
    t->name = copy;
    f->n_tensors = i + 1; /* gguf_close frees this name from here on */
    size_t slot = hash_string(t->name) & f->tensor_mask;
    while (f->tensor_table[slot]) {
        if (strcmp(f->tensors[f->tensor_table[slot] - 1].name, t->name) == 0)
            return error_set(c->err, ERR_FORMAT, "duplicate tensor name '%s'", t->name);
        slot = (slot + 1) & f->tensor_mask;
    }
    f->tensor_table[slot] = i + 1;

    if (cursor_u32(c, &t->n_dims, "tensor dimension count") != 0) return error_prefix(c->err, "tensor '%s'", t->name);
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return error_set(c->err, ERR_FORMAT, "tensor '%s' has %u dimensions (must be 1 to %d)",
                         t->name, t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && cursor_u64(c, &ne, "tensor dimension") != 0)
            return error_prefix(c->err, "tensor '%s'", t->name);
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return error_set(c->err, ERR_FORMAT, "tensor '%s' dimension %u is %lld (must be positive)",
                             t->name, d, (long long)ne);
        t->ne[d] = (int64_t)ne;
        if (n_elems > INT64_MAX / t->ne[d])
            return error_set(c->err, ERR_FORMAT, "tensor '%s': element count overflows", t->name);
        n_elems *= t->ne[d];
    }
    t->n_elems = n_elems;
    if (cursor_u32(c, &t->type, "tensor type") != 0) return error_prefix(c->err, "tensor '%s'", t->name);
    const tensor_type_traits *tt = tensor_type_get(t->type);
    if (!tt) return error_set(c->err, ERR_FORMAT, "tensor '%s' has unknown type %u", t->name, t->type);
    if (t->ne[0] % tt->block_elems != 0)
        return error_set(c->err, ERR_FORMAT,
                         "tensor '%s' (%s): first dimension %lld is not a multiple of the block size %d",
                         t->name, tt->name, (long long)t->ne[0], tt->block_elems);
    size_t row = tensor_row_bytes(t->type, t->ne[0]);
    uint64_t rows = (uint64_t)(n_elems / t->ne[0]);
    if (row == 0 || rows > SIZE_MAX / row)
        return error_set(c->err, ERR_FORMAT, "tensor '%s': byte size overflows", t->name);
    t->size_bytes = row * (size_t)rows;
    if (cursor_u64(c, &t->offset_bytes, "tensor data offset") != 0) return error_prefix(c->err, "tensor '%s'", t->name);
    if (t->offset_bytes % f->alignment != 0)
        return error_set(c->err, ERR_FORMAT, "tensor '%s': data offset %llu is not a multiple of the alignment %zu",
                         t->name, (unsigned long long)t->offset_bytes, f->alignment);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset_bytes < y->offset_bytes ? -1 : x->offset_bytes > y->offset_bytes;
}

static int place_tensors(gguf_file *f, larder_error *err) {
    size_t data_bytes = f->size - f->data_offset;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset_bytes > data_bytes || t->size_bytes > data_bytes - t->offset_bytes)
            return error_set(err, ERR_FORMAT,
                             "tensor '%s': data [%llu, +%zu) lies outside the file (data section holds %zu bytes)",
                             t->name, (unsigned long long)t->offset_bytes, t->size_bytes, data_bytes);
        t->data = f->base + f->data_offset + t->offset_bytes;
    }
    if (f->n_tensors < 2) return 0;
    const gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return error_set(err, ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    int rc = 0;
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->offset_bytes + a->size_bytes > b->offset_bytes) {
            rc = error_set(err, ERR_FORMAT, "tensors '%s' and '%s' overlap", a->name, b->name);
            break;
        }
    }
    free(order);
    return rc;
}

static int parse_file(gguf_file *f, larder_error *err) {
    cursor c = {f->base, f->size, 0, err};
    uint32_t magic;
    if (f->size < 4) return error_set(err, ERR_FORMAT, "not a GGUF file (only %zu bytes)", f->size);
    memcpy(&magic, f->base, 4);
    if (magic != GGUF_MAGIC)
        return error_set(err, ERR_FORMAT, "not a GGUF file (starts with bytes %02x %02x %02x %02x, expected 'GGUF')",
                         f->base[0], f->base[1], f->base[2], f->base[3]);
    c.pos = 4;
    if (cursor_u32(&c, &f->version, "version") != 0) return -1;
    if (f->version == 1) return error_set(err, ERR_UNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3)");
    if (f->version != 2 && f->version != 3) {
        uint32_t v = __builtin_bswap32(f->version);
        if (v == 2 || v == 3) return error_set(err, ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
        return error_set(err, ERR_FORMAT, "unsupported GGUF version %u (only 2 and 3)", f->version);
    }
    uint64_t n_tensors, n_kv;
    if (cursor_u64(&c, &n_tensors, "tensor count") != 0 || cursor_u64(&c, &n_kv, "metadata count") != 0) return -1;
    if (parse_kvs(f, &c, n_kv) != 0) return -1;
    if (parse_alignment(f, err) != 0) return -1;
    if (n_tensors > cursor_left(&c) / GGUF_MIN_TENSOR_INFO_BYTES)
        return error_set(err, ERR_FORMAT,
                         "tensor count %llu is more than the file can hold (%zu bytes left: truncated or corrupt file)",
                         (unsigned long long)n_tensors, cursor_left(&c));
    f->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *f->tensors);
    f->tensor_table = table_alloc((int64_t)n_tensors, &f->tensor_mask);
    if (!f->tensors || !f->tensor_table) return error_set(err, ERR_NOMEM, "out of memory for %llu tensors", (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++)
        if (parse_tensor_info(f, &c, (int64_t)i) != 0) return -1;
    /* The data section starts at the next multiple of the alignment. */
    size_t pad = (f->alignment - c.pos % f->alignment) % f->alignment;
    if (n_tensors > 0 && pad > cursor_left(&c))
        return error_set(err, ERR_FORMAT, "truncated file: tensor data section would start at %zu, beyond the end (%zu bytes)",
                         c.pos + pad, f->size);
    f->data_offset = pad > cursor_left(&c) ? f->size : c.pos + pad;
    return place_tensors(f, err);
}

static gguf_file *open_buffer(const void *data, size_t size, bool mapped, larder_error *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    f->base = data;
    f->size = size;
    f->mapped = mapped;
    if (parse_file(f, err) != 0) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, larder_error *err) {
    if (!data && size) {
        error_set(err, ERR_INVALID, "no buffer");
        return NULL;
    }
    static const uint8_t empty[1];
    return open_buffer(size ? data : empty, size, false, err);
}

gguf_file *gguf_open(const char *path, larder_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_set(err, ERR_IO, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        error_set(err, ERR_IO, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        error_set(err, ERR_IO, "not a regular file");
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        error_set(err, ERR_FORMAT, "not a GGUF file (empty)");
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        error_set(err, ERR_IO, "file too large to map");
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        error_set(err, ERR_IO, "cannot mmap: %s", strerror(errno));
        return NULL;
    }
    return open_buffer(map, size, true, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) {
        free(f->kvs[i].key);
        free(f->kvs[i].str);
        free(f->kvs[i].strs_blob);
        free(f->kvs[i].str_offs);
    }
    for (int64_t i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->kvs);
    free(f->kv_table);
    free(f->tensors);
    free(f->tensor_table);
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f);
}

/* ---- accessors */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
size_t gguf_alignment(const gguf_file *f) { return f->alignment; }
size_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
int64_t gguf_kv_count(const gguf_file *f) { return f->n_kv; }

const char *gguf_kv_key(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? f->kvs[i].key : NULL;
}

uint32_t gguf_kv_type(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? f->kvs[i].type : GGUF_TYPE_COUNT;
}

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    if (!f->kv_table || !key) return -1;
    size_t slot = hash_string(key) & f->kv_mask;
    while (f->kv_table[slot]) {
        int64_t i = f->kv_table[slot] - 1;
        if (strcmp(f->kvs[i].key, key) == 0) return i;
        slot = (slot + 1) & f->kv_mask;
    }
    return -1;
}

const gguf_kv *gguf_kv_get(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kvs[i];
}

/* Reads one numeric value of `type` at p into an integer (is_int) or a double. */
static bool value_read(uint32_t type, const uint8_t *p, bool *is_int, int64_t *iv, uint64_t *uv, double *dv) {
    *is_int = true;
    *uv = 0;
    switch (type) {
    case GGUF_TYPE_UINT8: { uint8_t v = p[0]; *iv = v; return true; }
    case GGUF_TYPE_INT8: { int8_t v; memcpy(&v, p, 1); *iv = v; return true; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); *iv = v; return true; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); *iv = v; return true; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); *iv = v; return true; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); *iv = v; return true; }
    case GGUF_TYPE_INT64: { int64_t v; memcpy(&v, p, 8); *iv = v; return true; }
    case GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) { *uv = v; *iv = -1; return true; } /* marked by uv != 0 */
        *iv = (int64_t)v;
        return true;
    }
    case GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); *is_int = false; *dv = v; return true; }
    case GGUF_TYPE_FLOAT64: { double v; memcpy(&v, p, 8); *is_int = false; *dv = v; return true; }
    default: return false;
    }
}

/* The integer value of key (scalar), as i64 or a big u64. */
static bool get_int(const gguf_file *f, const char *key, int64_t *iv, uint64_t *big) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type == GGUF_TYPE_STRING || kv->type == GGUF_TYPE_ARRAY || kv->type == GGUF_TYPE_BOOL) return false;
    bool is_int;
    double dv;
    if (!value_read(kv->type, kv->raw, &is_int, iv, big, &dv) || !is_int) return false;
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    int64_t v; uint64_t big;
    if (!get_int(f, key, &v, &big) || big || v < 0 || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    int64_t v; uint64_t big;
    if (!get_int(f, key, &v, &big) || big || v < INT32_MIN || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    int64_t v; uint64_t big;
    if (!get_int(f, key, &v, &big)) return false;
    if (big) { *out = big; return true; }
    if (v < 0) return false;
    *out = (uint64_t)v;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    int64_t v; uint64_t big;
    if (!get_int(f, key, &v, &big) || big) return false;
    *out = v;
    return true;
}

bool gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv) return false;
    if (kv->type == GGUF_TYPE_FLOAT32) { float v; memcpy(&v, kv->raw, 4); *out = v; return true; }
    if (kv->type == GGUF_TYPE_FLOAT64) { memcpy(out, kv->raw, 8); return true; }
    return false;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    double d;
    if (!gguf_get_f64(f, key, &d)) return false;
    *out = (float)d;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->raw[0] != 0;
    return true;
}

const char *gguf_get_string(const gguf_file *f, const char *key, size_t *len_out) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return NULL;
    if (len_out) *len_out = kv->str_len;
    return kv->str;
}

bool gguf_get_array_info(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *count) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) return false;
    if (elem_type) *elem_type = kv->elem_type;
    if (count) *count = kv->count;
    return true;
}

const void *gguf_get_array_data(const gguf_file *f, const char *key) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type == GGUF_TYPE_STRING) return NULL;
    return kv->raw ? (const void *)kv->raw : (const void *)"";
}

/* Element i of a numeric array kv as f32 or i32. */
static bool array_elem_f32(const gguf_kv *kv, uint64_t i, float *out) {
    if (i >= kv->count) return false;
    if (kv->elem_type == GGUF_TYPE_BOOL) { *out = kv->raw[i] != 0; return true; }
    bool is_int; int64_t iv; uint64_t big; double dv;
    if (!value_read(kv->elem_type, kv->raw + i * gguf_type_size(kv->elem_type), &is_int, &iv, &big, &dv)) return false;
    *out = is_int ? (big ? (float)big : (float)iv) : (float)dv;
    return true;
}

static bool array_elem_i32(const gguf_kv *kv, uint64_t i, int32_t *out) {
    if (i >= kv->count) return false;
    if (kv->elem_type == GGUF_TYPE_BOOL) { *out = kv->raw[i] != 0; return true; }
    bool is_int; int64_t iv; uint64_t big; double dv;
    if (!value_read(kv->elem_type, kv->raw + i * gguf_type_size(kv->elem_type), &is_int, &iv, &big, &dv)) return false;
    if (!is_int || big || iv < INT32_MIN || iv > INT32_MAX) return false;
    *out = (int32_t)iv;
    return true;
}

static const gguf_kv *numeric_array(const gguf_file *f, const char *key) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type == GGUF_TYPE_STRING) return NULL;
    return kv;
}

bool gguf_array_get_f32(const gguf_file *f, const char *key, uint64_t i, float *out) {
    const gguf_kv *kv = numeric_array(f, key);
    return kv && array_elem_f32(kv, i, out);
}

bool gguf_array_get_i32(const gguf_file *f, const char *key, uint64_t i, int32_t *out) {
    const gguf_kv *kv = numeric_array(f, key);
    return kv && array_elem_i32(kv, i, out);
}

bool gguf_array_read_f32(const gguf_file *f, const char *key, float *dst, uint64_t count) {
    const gguf_kv *kv = numeric_array(f, key);
    if (!kv || kv->count != count) return false;
    if (kv->elem_type == GGUF_TYPE_FLOAT32) {
        if (count) memcpy(dst, kv->raw, (size_t)count * 4);
        return true;
    }
    for (uint64_t i = 0; i < count; i++)
        if (!array_elem_f32(kv, i, &dst[i])) return false;
    return true;
}

bool gguf_array_read_i32(const gguf_file *f, const char *key, int32_t *dst, uint64_t count) {
    const gguf_kv *kv = numeric_array(f, key);
    if (!kv || kv->count != count) return false;
    for (uint64_t i = 0; i < count; i++)
        if (!array_elem_i32(kv, i, &dst[i])) return false;
    return true;
}

const char *gguf_get_array_string(const gguf_file *f, const char *key, uint64_t i, size_t *len_out) {
    const gguf_kv *kv = gguf_kv_get(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING || i >= kv->count) return NULL;
    if (len_out) *len_out = (size_t)(kv->str_offs[i + 1] - kv->str_offs[i] - 1);
    return kv->strs_blob + kv->str_offs[i];
}

int64_t gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f->tensor_table || !name) return NULL;
    size_t slot = hash_string(name) & f->tensor_mask;
    while (f->tensor_table[slot]) {
        int64_t i = f->tensor_table[slot] - 1;
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
        slot = (slot + 1) & f->tensor_mask;
    }
    return NULL;
}
