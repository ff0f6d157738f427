/*
 * json_syntax.h — the JSON grammar (RFC 8259) checked without allocating.
 *
 * cJSON answers NULL both for a text that is not JSON and when it runs out
 * of memory; a caller that must tell a bad request (400) from its own
 * failure (500) asks this after cJSON failed.
 */
#ifndef LARDER_BASE_JSON_SYNTAX_H
#define LARDER_BASE_JSON_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0, len) is one JSON value (whitespace around it allowed)
 * nested at most max_depth containers deep. Linear, no allocation. */
bool json_syntax_ok(const char *text, size_t len, int max_depth);

#endif
