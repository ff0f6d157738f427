/*
 * fuzz_gguf.c — libFuzzer target for the GGUF parser: gguf_open_memory on
 * arbitrary bytes, then every accessor over everything the file claims
 * (keys, typed getters, arrays element by element, tensors and their data),
 * so ASan/UBSan see any read the validation let through.
 * FUZZ_SOURCES: src/gguf/gguf_read.c src/gguf/gguf_write.c src/tensor/dtype.c src/base/error.c src/base/hash.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    larder_error err;
    gguf_file *f = gguf_open_memory(data, size, &err);
    if (!f) return 0;
    volatile uint64_t sink = 0;
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        const char *key = gguf_kv_key(f, i);
        sink += gguf_find_key(f, key) == i;
        uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; float f32; double f64; bool b; size_t len;
        sink += gguf_get_u32(f, key, &u32) + gguf_get_i32(f, key, &i32) + gguf_get_u64(f, key, &u64) +
                gguf_get_i64(f, key, &i64) + gguf_get_f32(f, key, &f32) + gguf_get_f64(f, key, &f64) +
                gguf_get_bool(f, key, &b);
        const char *s = gguf_get_string(f, key, &len);
        if (s) sink += (unsigned char)s[len];
        uint32_t et; uint64_t count;
        if (gguf_get_array_info(f, key, &et, &count)) {
            const uint8_t *raw = gguf_get_array_data(f, key);
            size_t es = gguf_type_size(et);
            for (uint64_t k = 0; k < count && k < 4096; k++) {
                if (et == GGUF_TYPE_STRING) {
                    const char *e = gguf_get_array_string(f, key, k, &len);
                    if (e) sink += (unsigned char)e[len];
                } else {
                    sink += raw[k * es + es - 1];
                    sink += gguf_array_get_f32(f, key, k, &f32) + gguf_array_get_i32(f, key, k, &i32);
                }
            }
            sink += gguf_array_get_f32(f, key, count, &f32); /* one past the end: must be false */
        }
    }
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        sink += gguf_find_tensor(f, t->name) == t;
        const uint8_t *p = t->data;
        sink += p[0] + p[t->size_bytes - 1];
    }
    (void)sink;
    gguf_close(f);
    return 0;
}
