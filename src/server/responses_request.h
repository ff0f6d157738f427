/*
 * responses_request.h — an OpenAI Responses API request body
 * (POST /v1/responses), validated and converted to the OpenAI chat request
 * the rest of the server runs (openai_request).
 *
 * larder is stateless here (as with store: false): every request carries its
 * whole conversation; `previous_response_id`, `item_reference` items and
 * `background` are answered 400 with a message saying so.
 *
 *   instructions, leading system/developer messages → one system message
 *   input         a string (one user message) or items:
 *                   message (role user/assistant/system/developer; content a
 *                   string or input_text/output_text/text/refusal parts),
 *                   function_call (→ the assistant's tool_calls; consecutive
 *                   calls join one assistant message), function_call_output
 *                   (→ a tool message), reasoning (summary_text or
 *                   reasoning_text → the next assistant message's reasoning_content)
 *   tools         function tools; other kinds (web_search, namespace, custom …)
 *                 are not offered to the model
 *   tool_choice   auto, none, required, {type: function, name}
 *   max_output_tokens, temperature, top_p, stream
 *   reasoning     {effort} → the template's reasoning_effort (effort "none"
 *                 also turns enable_thinking off)
 *   text.format   "text" only (structured outputs are refused)
 * Every malformed field is ERR_INVALID naming the field (HTTP 400).
 */
#ifndef LARDER_SERVER_RESPONSES_REQUEST_H
#define LARDER_SERVER_RESPONSES_REQUEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "server/openai_request.h"

typedef struct responses_request {
    openai_request chat;     /* the conversation as an OpenAI chat request (owned) */
    cJSON *echo;             /* request fields a response object repeats (instructions,
                                tool_choice, tools, temperature, top_p, max_output_tokens,
                                parallel_tool_calls, reasoning, store, metadata); owned */
} responses_request;

/* Parses body[0, len). 0 and *out filled (free with responses_request_free),
 * or -1 with err and nothing to free. */
int responses_request_parse(const char *body, size_t len, responses_request *out, larder_error *err);
void responses_request_free(responses_request *r);

#endif
