/*
 * request_json.h — what the protocol converters (Anthropic Messages, OpenAI
 * Responses) share: reading a request body as one JSON object with the same
 * checks the OpenAI routes make, small typed field getters whose errors name
 * the field, and handing a converted OpenAI chat body to openai_request_parse
 * (so that sampling fields get the one validation every route has).
 */
#ifndef LARDER_SERVER_REQUEST_JSON_H
#define LARDER_SERVER_REQUEST_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "server/openai_request.h"

/* body[0, len) as a JSON object: valid UTF-8, one JSON value, only
 * whitespace after it, an object. NULL with err (ERR_INVALID, ERR_NOMEM). */
cJSON *request_json_parse(const char *body, size_t len, larder_error *err);

/* The field, or NULL when absent or null. */
cJSON *request_json_field(const cJSON *obj, const char *name);

/* The string value of obj.name; NULL when absent/null (or *err set with -1
 * from the int-returning form when present but not a string). `what` names
 * the field in the message (e.g. "messages[2].content[0].text"). */
int request_json_string(const cJSON *obj, const char *name, const char *what, const char **out, larder_error *err);

/* Moves chat (an OpenAI chat-completions body, taken and freed) through
 * openai_request_parse into *req. -1 with err as that function. */
int request_json_to_chat(cJSON *chat, openai_request *req, larder_error *err);

/* Sets chat's tool_choice to a named tool, {"type": "function",
 * "function": {"name": name}} (openai_request then checks that it is one of
 * the tools and forces its call). -1 when out of memory. */
int request_json_named_tool_choice(cJSON *chat, const char *name);

#endif
