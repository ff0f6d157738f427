/*
 * gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * Reader: gguf_open mmaps the file read-only and validates EVERYTHING before
 * returning: magic, version, every count and length against the bytes that
 * are really there (no allocation is sized by an unchecked count), value
 * types, duplicate keys, tensor names, shapes, types (src/tensor/dtype.h),
 * block-size multiples, element-count overflow, alignment (general.alignment,
 * a power of two, default 32), tensor data inside the file, aligned and not
 * overlapping. After a successful open every accessor below is safe and O(1)
 * (keys and tensor names are hashed; string arrays are indexed), so callers
 * need no further bounds checks on file contents.
 *
 * The file layout (little-endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x   { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to `alignment` | tensor data (offsets relative to here)
 *   string = u64 length + bytes (no NUL); array = u32 elem_type | u64 count | elems
 *
 * Metadata values stay in the mapping; strings are copied once at open into
 * NUL-terminated storage owned by the file (a string may itself contain NUL
 * bytes, so lengths are returned too). Nested arrays are rejected (llama.cpp
 * has none and cannot read them).
 *
 * Writer: collect key/values and tensors, then gguf_writer_write produces a
 * GGUF v3 file atomically (temp file in the same folder + rename). Tensor data
 * comes from a caller pointer or from a fill callback called row chunk by row
 * chunk at write time, so multi-GB files are written in bounded memory.
 */
#ifndef LARDER_GGUF_GGUF_H
#define LARDER_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Metadata value types (GGUF ids). */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13
};

/* Default general.alignment when the key is absent. */
#define GGUF_DEFAULT_ALIGNMENT 32
/* Longest tensor name in bytes, exclusive (ggml's GGML_MAX_NAME: 64, NUL included). */
#define GGUF_TENSOR_NAME_MAX_BYTES 64
/* Largest number of dimensions of a tensor (ggml's GGML_MAX_DIMS). */
#define GGUF_MAX_DIMS 4
/* Longest metadata key in bytes (keys are short dotted ASCII names). */
#define GGUF_KEY_MAX_BYTES 1024
/* Largest general.alignment accepted (a sanity bound; real files use 32). */
#define GGUF_MAX_ALIGNMENT (1u << 20)

/* Name of a value type ("u32", "string", ...), "?" for unknown ids. */
const char *gguf_type_name(uint32_t type);
/* Bytes of one element of a fixed-size value type; 0 for string/array/unknown. */
size_t gguf_type_size(uint32_t type);

/* ---- reader ------------------------------------------------------------ */

typedef struct gguf_file gguf_file;

typedef struct gguf_tensor {
    const char *name;       /* NUL-terminated, < GGUF_TENSOR_NAME_MAX_BYTES */
    uint32_t n_dims;        /* 1..4 */
    int64_t ne[4];          /* elements per dimension, ne[0] fastest; unused dims are 1 */
    int64_t n_elems;        /* product of ne */
    uint32_t type;          /* tensor_type id (src/tensor/dtype.h), known */
    uint64_t offset_bytes;  /* offset of the data from the start of the data section */
    const void *data;       /* the data, inside the mapping, aligned to the file's alignment
                               relative to the file start (gguf_open: page-aligned base) */
    size_t size_bytes;      /* tensor_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3] */
} gguf_tensor;

/* Maps and validates the file at path. NULL and err set on any problem
 * (the message names the problem, not the file: the caller prefixes it). */
gguf_file *gguf_open(const char *path, larder_error *err);

/* The same parser over a caller buffer (not copied; it must outlive the
 * gguf_file). Tensor data pointers point into it. Used by the fuzzer. */
gguf_file *gguf_open_memory(const void *data, size_t size, larder_error *err);

void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);           /* 2 or 3 */
size_t gguf_alignment(const gguf_file *f);           /* general.alignment or 32 */
size_t gguf_data_offset(const gguf_file *f);         /* file offset of the data section */
size_t gguf_file_size(const gguf_file *f);           /* bytes of the file / buffer */

/* -- metadata: iteration */
int64_t gguf_kv_count(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, int64_t i);   /* NULL if i out of range */
uint32_t gguf_kv_type(const gguf_file *f, int64_t i);     /* GGUF_TYPE_*; GGUF_TYPE_COUNT if out of range */

/* Index of key, or -1. */
int64_t gguf_find_key(const gguf_file *f, const char *key);

/* -- metadata: typed getters. Each returns true when the key exists and its
 * value converts exactly to the requested type (integers: any integer type
 * whose value fits; f32: float32 or float64; bool: bool only). On false,
 * *out is untouched. */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_f64(const gguf_file *f, const char *key, double *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);

/* String value: NUL-terminated, owned by f; *len_out (may be NULL) gets its
 * length in bytes (it may contain NUL). NULL if absent or not a string. */
const char *gguf_get_string(const gguf_file *f, const char *key, size_t *len_out);

/* -- metadata: arrays */
/* True if key holds an array; gives its element type and count (either may be NULL). */
bool gguf_get_array_info(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *count);

/* Raw little-endian elements of a numeric/bool array (count * gguf_type_size
 * bytes, possibly unaligned: read with memcpy). NULL for absent keys, non-arrays
 * and string arrays. */
const void *gguf_get_array_data(const gguf_file *f, const char *key);

/* Element i of a numeric array converted to f32 / i32 (integers must fit in
 * i32 exactly; floats are converted for f32 only). False if out of range, absent
 * or not convertible. */
bool gguf_array_get_f32(const gguf_file *f, const char *key, uint64_t i, float *out);
bool gguf_array_get_i32(const gguf_file *f, const char *key, uint64_t i, int32_t *out);

/* Bulk versions: copy all `count` elements (count must equal the array's
 * length) converted, into dst. False (dst unspecified) on mismatch. */
bool gguf_array_read_f32(const gguf_file *f, const char *key, float *dst, uint64_t count);
bool gguf_array_read_i32(const gguf_file *f, const char *key, int32_t *dst, uint64_t count);

/* Element i of a string array: NUL-terminated, owned by f, O(1). NULL if
 * absent, not a string array or out of range. */
const char *gguf_get_array_string(const gguf_file *f, const char *key, uint64_t i, size_t *len_out);

/* -- tensors */
int64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);       /* NULL if out of range */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* ---- writer ------------------------------------------------------------ */

typedef struct gguf_writer gguf_writer;

/* Fills rows [row_begin, row_begin + n_rows) of a tensor into dst
 * (n_rows * tensor_row_bytes(type, ne[0]) bytes). A "row" is ne[0] elements;
 * a tensor has ne[1]*ne[2]*ne[3] rows. Returns 0, or -1 with err set (the write
 * is abandoned and the temp file removed). ctx is the caller's, per tensor. */
typedef int (*gguf_fill_fn)(void *ctx, int64_t row_begin, int64_t n_rows, void *dst,
                            larder_error *err);

gguf_writer *gguf_writer_create(larder_error *err);
void gguf_writer_free(gguf_writer *w);

/* Setters: a key set twice keeps its first position and the last value.
 * Return 0, or -1 with err set (allocation failure, bad key). */
int gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v, larder_error *err);
int gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v, larder_error *err);
int gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v, larder_error *err);
int gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v, larder_error *err);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v, larder_error *err);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v, larder_error *err);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v, larder_error *err);
int gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v, larder_error *err);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v, larder_error *err);
int gguf_writer_set_f64(gguf_writer *w, const char *key, double v, larder_error *err);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v, larder_error *err);
/* NUL-terminated string. */
int gguf_writer_set_string(gguf_writer *w, const char *key, const char *s, larder_error *err);
/* String of len bytes (may hold NUL). */
int gguf_writer_set_string_n(gguf_writer *w, const char *key, const char *s, size_t len,
                             larder_error *err);
/* Numeric or bool array: `count` elements of elem_type, in little-endian
 * layout at data (copied). */
int gguf_writer_set_array(gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                          uint64_t count, larder_error *err);
/* String array: strs[i] of lens[i] bytes (lens NULL: NUL-terminated). Copied. */
int gguf_writer_set_string_array(gguf_writer *w, const char *key, const char *const *strs,
                                 const size_t *lens, uint64_t count, larder_error *err);
/* Copies key (any type, arrays included) from an open file. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *key, larder_error *err);

/* Adds a tensor whose data (tensor size bytes) is read from `data` at write
 * time (not copied: it must stay valid until gguf_writer_write returns).
 * Validates name (unique, < 64 bytes), type, n_dims 1..4, ne > 0, block multiple. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, larder_error *err);
/* As above, with data produced by fill(ctx, ...) at write time. */
int gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const int64_t *ne, gguf_fill_fn fill, void *ctx, larder_error *err);

/* Writes GGUF v3 to path (alignment: general.alignment if set as u32, else
 * 32; the key is not added). Atomic: a temp file beside path, renamed over it. */
int gguf_writer_write(gguf_writer *w, const char *path, larder_error *err);

#endif
