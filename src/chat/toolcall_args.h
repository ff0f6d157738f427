/*
 * toolcall_args.h — the request's tool list as the parsers need it: which
 * function names exist, and the JSON-schema type of each parameter, so that
 * XML-style calls (whose parameter values are bare text) become a JSON
 * arguments object with the right value types. Also makes tool-call ids.
 */
#ifndef LARDER_CHAT_TOOLCALL_ARGS_H
#define LARDER_CHAT_TOOLCALL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"

typedef struct toolcall_tools toolcall_tools;

/* Parses an OpenAI `tools` array: [{"type":"function","function":{"name":..,
 * "parameters":{JSON schema}}}, ...] (entries without the "function" wrapper,
 * {"name":..,"parameters":..}, are accepted too). NULL with err (ERR_INVALID)
 * when json is not such an array or an entry has no string name; ERR_NOMEM
 * when memory runs out. An empty array gives a list with no tools. */
toolcall_tools *toolcall_tools_parse(const char *json, size_t len, larder_error *err);
void toolcall_tools_free(toolcall_tools *t);
size_t toolcall_tools_count(const toolcall_tools *t);

/* True when a tool named name[0, len) exists. */
bool toolcall_tools_has(const toolcall_tools *t, const char *name, size_t len);

/* Appends to out the JSON text for one bare-text parameter value v[0, n) of
 * function fn's parameter param (both NUL-terminated). The schema's "type"
 * decides: "string" (alone) keeps the text as a JSON string; any other
 * declared type — or no schema at all — uses the text (trimmed) as JSON when
 * it is exactly one JSON number/boolean/null/object/array of an allowed type;
 * everything else becomes a JSON string. Returns -1 only when out failed. */
int toolcall_args_append_value(const toolcall_tools *t, const char *fn, const char *param,
                               const char *v, size_t n, strbuf *out);

/* True when fn's parameter param is typed "string" alone: its bare-text
 * value is always written as a JSON string of the text (what
 * toolcall_args_append_value does for it), so it can be sent piece by piece. */
bool toolcall_args_is_text(const toolcall_tools *t, const char *fn, const char *param);

/* Writes prefix followed by n_random characters from [A-Za-z0-9] into
 * out (cap bytes, NUL-terminated, truncated to fit), advancing the
 * splitmix64 state *rng. */
void toolcall_id_make(char *out, size_t cap, const char *prefix, size_t n_random, uint64_t *rng);

/* A seed that differs between calls and processes (clock, address, counter). */
uint64_t toolcall_id_seed(void);

#endif
