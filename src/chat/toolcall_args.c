/*
 * toolcall_args.c — tool list lookups (cJSON tree of the request's `tools`),
 * typed conversion of bare-text parameter values, and call ids.
 */
#include "chat/toolcall_args.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json_syntax.h"
#include "base/utf8.h"
#include "chat/toolcall_json.h"

struct toolcall_tools {
    cJSON *root;        /* the parsed array (owned) */
    size_t n;           /* entries */
    const cJSON **fn;   /* (n) each entry's function object: has "name", maybe "parameters" */
};

toolcall_tools *toolcall_tools_parse(const char *json, size_t len, larder_error *err) {
    toolcall_tools *t = calloc(1, sizeof *t);
    if (!t) { error_set(err, ERR_NOMEM, "out of memory parsing tools"); return NULL; }
    t->root = cJSON_ParseWithLength(json ? json : "", json ? len : 0);
    if (!t->root && json && json_syntax_ok(json, len, CJSON_NESTING_LIMIT)) {
        error_set(err, ERR_NOMEM, "out of memory parsing tools");
        toolcall_tools_free(t);
        return NULL;
    }
    if (!t->root || !cJSON_IsArray(t->root)) {
        error_set(err, ERR_INVALID, "tools: not a JSON array");
        toolcall_tools_free(t);
        return NULL;
    }
    int count = cJSON_GetArraySize(t->root);
    t->fn = calloc(count > 0 ? (size_t)count : 1, sizeof *t->fn);
    if (!t->fn) {
        error_set(err, ERR_NOMEM, "out of memory parsing tools");
        toolcall_tools_free(t);
        return NULL;
    }
    const cJSON *entry;
    cJSON_ArrayForEach(entry, t->root) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(entry, "function");
        if (!cJSON_IsObject(fn)) fn = entry;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!cJSON_IsObject(fn) || !cJSON_IsString(name) || !name->valuestring[0]) {
            error_set(err, ERR_INVALID, "tools[%zu]: no function name", t->n);
            toolcall_tools_free(t);
            return NULL;
        }
        t->fn[t->n++] = fn;
    }
    return t;
}

void toolcall_tools_free(toolcall_tools *t) {
    if (!t) return;
    cJSON_Delete(t->root);
    free(t->fn);
    free(t);
}

size_t toolcall_tools_count(const toolcall_tools *t) { return t ? t->n : 0; }

static const cJSON *find_fn(const toolcall_tools *t, const char *name, size_t len) {
    for (size_t i = 0; t && i < t->n; i++) {
        const char *s = cJSON_GetObjectItemCaseSensitive(t->fn[i], "name")->valuestring;
        if (strlen(s) == len && memcmp(s, name, len) == 0) return t->fn[i];
    }
    return NULL;
}

bool toolcall_tools_has(const toolcall_tools *t, const char *name, size_t len) {
    return find_fn(t, name, len) != NULL;
}

/* JSON-schema type bits. */
enum { T_STRING = 1, T_NUMBER = 2, T_INTEGER = 4, T_BOOLEAN = 8, T_OBJECT = 16, T_ARRAY = 32, T_NULL = 64,
       T_ANY = 127 };

static unsigned type_bit(const char *s) {
    if (!strcmp(s, "string")) return T_STRING;
    if (!strcmp(s, "number")) return T_NUMBER;
    if (!strcmp(s, "integer")) return T_INTEGER;
    if (!strcmp(s, "boolean")) return T_BOOLEAN;
    if (!strcmp(s, "object")) return T_OBJECT;
    if (!strcmp(s, "array")) return T_ARRAY;
    if (!strcmp(s, "null")) return T_NULL;
    return 0;
}

/* The allowed types of fn's parameter param; T_ANY when unknown. */
static unsigned param_types(const toolcall_tools *t, const char *fn_name, const char *param) {
    const cJSON *fn = find_fn(t, fn_name, strlen(fn_name));
    const cJSON *params = fn ? cJSON_GetObjectItemCaseSensitive(fn, "parameters") : NULL;
    const cJSON *props = params ? cJSON_GetObjectItemCaseSensitive(params, "properties") : NULL;
    const cJSON *prop = props ? cJSON_GetObjectItemCaseSensitive(props, param) : NULL;
    const cJSON *type = prop ? cJSON_GetObjectItemCaseSensitive(prop, "type") : NULL;
    unsigned bits = 0;
    if (cJSON_IsString(type)) {
        bits = type_bit(type->valuestring);
    } else if (cJSON_IsArray(type)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, type) if (cJSON_IsString(e)) bits |= type_bit(e->valuestring);
    }
    return bits ? bits : T_ANY;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool toolcall_args_is_text(const toolcall_tools *t, const char *fn, const char *param) {
    return param_types(t, fn, param) == T_STRING;
}

int toolcall_args_append_value(const toolcall_tools *t, const char *fn, const char *param,
                               const char *v, size_t n, strbuf *out) {
    unsigned types = param_types(t, fn, param);
    if (types != T_STRING) {
        size_t a = 0, b = n;
        while (a < b && is_ws(v[a])) a++;
        while (b > a && is_ws(v[b - 1])) b--;
        if (a < b && tjson_is_value(v + a, b - a) && utf8_valid_prefix(v + a, b - a) == b - a) {
            char c = v[a];
            unsigned kind = c == '{' ? T_OBJECT : c == '[' ? T_ARRAY : c == 't' || c == 'f' ? T_BOOLEAN
                          : c == 'n' ? T_NULL : c == '"' ? T_STRING : T_NUMBER;
            bool ok = kind != T_STRING && (kind & types);
            if (kind == T_NUMBER && (types & T_INTEGER)) ok = true;
            if (ok) return strbuf_append(out, v + a, b - a);
        }
    }
    return strbuf_json_string(out, v, n);
}

/* splitmix64: a full-period 64-bit generator, good enough for ids. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void toolcall_id_make(char *out, size_t cap, const char *prefix, size_t n_random, uint64_t *rng) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (cap == 0) return;
    size_t o = 0;
    for (; prefix && *prefix && o + 1 < cap; prefix++) out[o++] = *prefix;
    for (size_t i = 0; i < n_random && o + 1 < cap; i++) out[o++] = alphabet[splitmix64(rng) % 62];
    out[o] = '\0';
}

uint64_t toolcall_id_seed(void) {
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    s ^= (uint64_t)(uintptr_t)&ts;
    s += atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull;
    return splitmix64(&s);
}
