/*
 * gguf_internal.h — the parsed file's layout, shared by the reader and the
 * writer (gguf_writer_copy_kv). Not for use outside src/gguf.
 */
#ifndef LARDER_GGUF_INTERNAL_H
#define LARDER_GGUF_INTERNAL_H

#include "gguf/gguf.h"

typedef struct gguf_kv {
    char *key;             /* NUL-terminated copy */
    uint32_t type;         /* GGUF_TYPE_* */
    uint32_t elem_type;    /* arrays: element type (never ARRAY) */
    uint64_t count;        /* arrays: element count */
    const uint8_t *raw;    /* scalars: the value bytes; numeric arrays: the elements (in the buffer, unaligned) */
    char *str;             /* STRING: NUL-terminated copy */
    size_t str_len;        /* STRING: bytes, without the NUL */
    char *strs_blob;       /* string arrays: every element NUL-terminated, back to back */
    uint64_t *str_offs;    /* string arrays: count + 1 offsets into strs_blob */
} gguf_kv;

struct gguf_file {
    const uint8_t *base;   /* the whole file (mapping or caller buffer) */
    size_t size;           /* bytes */
    bool mapped;           /* base is our mmap (munmap on close) */
    uint32_t version;
    size_t alignment;
    size_t data_offset;    /* file offset of the tensor data section */
    int64_t n_kv;          /* entries of kvs that hold owned memory */
    gguf_kv *kvs;
    int64_t *kv_table;     /* open addressing: kv index + 1, 0 = empty */
    size_t kv_mask;
    int64_t n_tensors;
    gguf_tensor *tensors;
    int64_t *tensor_table; /* open addressing: tensor index + 1, 0 = empty */
    size_t tensor_mask;
};

/* The kv record for key, or NULL. */
const gguf_kv *gguf_kv_get(const gguf_file *f, const char *key);

#endif
