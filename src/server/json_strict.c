/*
 * json_strict.c — the NUL-escape scan and the duplicate-key check (see
 * json_strict.h).
 */
#include "server/json_strict.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

int json_strict_check_nul(const char *text, size_t len, larder_error *err) {
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!in_string) {
            if (c == '"') in_string = true;
            continue;
        }
        if (c == '"') {
            in_string = false;
        } else if (c == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && !memcmp(text + i + 2, "0000", 4))
                return error_set(err, ERR_INVALID, "a JSON string holds \\u0000 (at byte %zu); NUL is not allowed", i);
            i++; /* the escaped character */
        }
    }
    return 0;
}

/* Objects with at most this many keys are checked pairwise. */
#define JSON_STRICT_PAIRWISE_MAX 8

/* Checks one object's keys; *slots is scratch (grown as needed). */
static int check_object(const cJSON *obj, const char ***slots, size_t *slots_cap, larder_error *err) {
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n <= JSON_STRICT_PAIRWISE_MAX) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && !strcmp(a->string, b->string))
                    return error_set(err, ERR_INVALID, "the JSON object key '%.64s' appears twice", a->string);
        return 0;
    }
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > *slots_cap) {
        const char **ns = realloc(*slots, cap * sizeof *ns);
        if (!ns) return error_set(err, ERR_NOMEM, "out of memory");
        *slots = ns;
        *slots_cap = cap;
    }
    memset(*slots, 0, cap * sizeof **slots);
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        size_t s = (size_t)hash_string(k) & (cap - 1);
        while ((*slots)[s]) {
            if (!strcmp((*slots)[s], k))
                return error_set(err, ERR_INVALID, "the JSON object key '%.64s' appears twice", k);
            s = (s + 1) & (cap - 1);
        }
        (*slots)[s] = k;
    }
    return 0;
}

int json_strict_check_keys(const cJSON *root, larder_error *err) {
    /* Iterative walk (no recursion: depth is bounded by cJSON's nesting
     * limit, but a loop needs no stack at all): go down to children, then
     * next siblings, climbing back up through a parent stack. */
    const char **slots = NULL;
    size_t slots_cap = 0;
    size_t depth_cap = 64, depth = 0;
    const cJSON **up = malloc(depth_cap * sizeof *up);
    if (!up) return error_set(err, ERR_NOMEM, "out of memory");
    int rc = 0;
    const cJSON *node = root;
    bool done = false;
    while (!done) {
        if (cJSON_IsObject(node) && (rc = check_object(node, &slots, &slots_cap, err)) != 0) break;
        if ((cJSON_IsObject(node) || cJSON_IsArray(node)) && node->child) {
            if (depth == depth_cap) {
                const cJSON **nu = realloc(up, 2 * depth_cap * sizeof *nu);
                if (!nu) {
                    rc = error_set(err, ERR_NOMEM, "out of memory");
                    break;
                }
                up = nu;
                depth_cap *= 2;
            }
            up[depth++] = node;
            node = node->child;
            continue;
        }
        /* the next sibling, climbing up through finished parents */
        for (;;) {
            if (node == root) {
                done = true;
                break;
            }
            if (node->next) {
                node = node->next;
                break;
            }
            node = up[--depth];
        }
    }
    free(up);
    free(slots);
    return rc;
}
