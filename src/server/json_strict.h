/*
 * json_strict.h — what cJSON accepts but a request body may not hold.
 *
 *   "\u0000" in a string: cJSON keeps C strings, so "user\u0000x" would be
 *            read as "user" — a silent truncation; refused instead.
 *   duplicate keys in one object: cJSON keeps both and lookups return the
 *            first, while other parsers take the last
 *            ("max_tokens":null,"max_tokens":1e999); refused instead.
 *
 * Both checks are linear in the body (the key check hashes each object's
 * keys), so any request parser can run them on untrusted input first.
 */
#ifndef LARDER_SERVER_JSON_STRICT_H
#define LARDER_SERVER_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"

/* 0 when no JSON string in text[0, len) holds the escape \u0000; else -1
 * with err (ERR_INVALID, naming the byte offset). text must be valid JSON
 * (call after parsing). */
int json_strict_check_nul(const char *text, size_t len, larder_error *err);

/* 0 when no object in the tree has the same key twice; else -1 with err
 * (ERR_INVALID, naming the key) or ERR_NOMEM. */
int json_strict_check_keys(const cJSON *root, larder_error *err);

#endif
