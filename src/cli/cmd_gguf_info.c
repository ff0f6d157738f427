/*
 * cmd_gguf_info.c — `larder gguf-info FILE`: print a GGUF file's header,
 * metadata (arrays summarised by their first elements) and tensor table
 * (name, type, shape, data offset, bytes).
 *
 * Errors (missing, broken or foreign file): one line "larder: FILE: problem"
 * on stderr, nothing on stdout, exit 1. The whole output is built only after
 * gguf_open has validated the file, so nothing partial is printed.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "gguf/gguf.h"
#include "tensor/dtype.h"

/* Longest string value shown in full; longer ones are cut with their length. */
#define INFO_STRING_SHOW_BYTES 96
/* Elements of an array shown before "...". */
#define INFO_ARRAY_SHOW_ELEMS 8
/* Most command-line arguments accepted (one FILE is expected). */
#define CLI_INFO_MAX_ARGS 16

/* Prints s (len bytes) as a double-quoted, escaped string, cut at max_bytes. */
static void print_quoted(const char *s, size_t len, size_t max_bytes) {
    putchar('"');
    size_t n = len < max_bytes ? len : max_bytes;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c == '\r') printf("\\r");
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < len) printf("...(%zu bytes)", len);
}

/* Prints one numeric/bool element of type at p (unaligned little-endian). */
static void print_scalar(uint32_t type, const unsigned char *p) {
    switch (type) {
    case GGUF_TYPE_UINT8: printf("%u", p[0]); break;
    case GGUF_TYPE_INT8: { int8_t v; memcpy(&v, p, 1); printf("%d", v); break; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); printf("%u", v); break; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); printf("%d", v); break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); printf("%u", v); break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); printf("%d", v); break; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); printf("%llu", (unsigned long long)v); break; }
    case GGUF_TYPE_INT64: { int64_t v; memcpy(&v, p, 8); printf("%lld", (long long)v); break; }
    case GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); printf("%.9g", v); break; }
    case GGUF_TYPE_FLOAT64: { double v; memcpy(&v, p, 8); printf("%.17g", v); break; }
    case GGUF_TYPE_BOOL: printf("%s", p[0] ? "true" : "false"); break;
    default: printf("?"); break;
    }
}

static void print_value(const gguf_file *f, int64_t i) {
    const char *key = gguf_kv_key(f, i);
    uint32_t type = gguf_kv_type(f, i);
    if (type == GGUF_TYPE_STRING) {
        size_t len;
        const char *s = gguf_get_string(f, key, &len);
        printf("string  ");
        print_quoted(s, len, INFO_STRING_SHOW_BYTES);
        return;
    }
    if (type != GGUF_TYPE_ARRAY) {
        /* Scalars: read through the typed getters' raw path via a 1-element view. */
        printf("%-6s  ", gguf_type_name(type));
        double d;
        int64_t iv;
        uint64_t uv;
        if (type == GGUF_TYPE_FLOAT32 || type == GGUF_TYPE_FLOAT64) {
            if (gguf_get_f64(f, key, &d)) printf("%.9g", d);
            return;
        }
        if (type == GGUF_TYPE_BOOL) {
            bool b = false;
            gguf_get_bool(f, key, &b);
            printf("%s", b ? "true" : "false");
            return;
        }
        if (gguf_get_i64(f, key, &iv)) printf("%lld", (long long)iv);
        else if (gguf_get_u64(f, key, &uv)) printf("%llu", (unsigned long long)uv);
        return;
    }
    uint32_t et;
    uint64_t count;
    gguf_get_array_info(f, key, &et, &count);
    printf("[%s x %llu]  [", gguf_type_name(et), (unsigned long long)count);
    uint64_t show = count < INFO_ARRAY_SHOW_ELEMS ? count : INFO_ARRAY_SHOW_ELEMS;
    const unsigned char *data = gguf_get_array_data(f, key);
    for (uint64_t k = 0; k < show; k++) {
        if (k) printf(", ");
        if (et == GGUF_TYPE_STRING) {
            size_t len;
            const char *s = gguf_get_array_string(f, key, k, &len);
            print_quoted(s, len, 32);
        } else {
            print_scalar(et, data + k * gguf_type_size(et));
        }
    }
    printf("%s]", show < count ? ", ..." : "");
}

int cmd_gguf_info(int argc, char **argv) {
    larder_error err = {0};
    char *pos[CLI_INFO_MAX_ARGS];
    int n_pos = 0;
    if (argc > CLI_INFO_MAX_ARGS) {
        fprintf(stderr, "larder gguf-info: too many arguments\n");
        return 1;
    }
    int rc = cli_parse(argc, argv, NULL, 0, pos, &n_pos, &err);
    if (rc == CLI_HELP) {
        printf("usage: larder gguf-info FILE\n\nPrints a GGUF file's version, metadata and tensors.\n");
        return 0;
    }
    if (rc == 0 && n_pos != 1) rc = error_set(&err, ERR_INVALID, "expected one FILE (usage: larder gguf-info FILE)");
    if (rc != 0) {
        fprintf(stderr, "larder gguf-info: %s\n", err.message);
        return 1;
    }
    const char *path = pos[0];
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "larder: %s: %s\n", path, err.message);
        return 1;
    }
    printf("file: %s\n", path);
    printf("version: %u\nsize_bytes: %zu\nalignment: %zu\ndata_offset: %zu\n", gguf_version(f),
           gguf_file_size(f), gguf_alignment(f), gguf_data_offset(f));
    printf("metadata: %lld keys\n", (long long)gguf_kv_count(f));
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        printf("  %-44s ", gguf_kv_key(f, i));
        print_value(f, i);
        putchar('\n');
    }
    printf("tensors: %lld\n", (long long)gguf_tensor_count(f));
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[128];
        int n = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-32s %-5s %-24s offset %-12llu %zu bytes\n", t->name, tensor_type_get(t->type)->name, shape,
               (unsigned long long)t->offset_bytes, t->size_bytes);
    }
    gguf_close(f);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "larder gguf-info: cannot write output\n");
        return 1;
    }
    return 0;
}
