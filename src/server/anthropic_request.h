/*
 * anthropic_request.h — an Anthropic Messages API request body
 * (POST /v1/messages, /v1/messages/count_tokens), validated and converted
 * to the OpenAI chat request the rest of the server runs (openai_request).
 *
 * What is converted (and checked: every malformed body is ERR_INVALID with a
 * message naming the field, answered 400):
 *   system        string or text blocks → one system message (blocks joined
 *                 as they are, as llama.cpp does); Claude Code's
 *                 "x-anthropic-billing-header: …;" prefix is dropped unless
 *                 keep_billing_header (it changes on every request and
 *                 would defeat the prompt cache)
 *   messages      user/assistant (and system: Claude Code sends system messages
 *                 between turns), content a string or blocks: text;
 *                 thinking (→ reasoning_content), redacted_thinking (dropped);
 *                 tool_use (→ tool_calls, input as the arguments);
 *                 tool_result (→ tool messages, before the user's text;
 *                 content a string or text blocks; is_error prefixes "Error: ")
 *   tools         {name, description, input_schema} → function tools; server
 *                 tools (a `type` other than "custom") are not offered to the model
 *   tool_choice   auto, any, tool (its name), none
 *   stop_sequences, max_tokens (required for /messages), temperature,
 *   top_p, top_k, stream, metadata (checked, unused)
 *   thinking      {type: enabled|adaptive|disabled} → chat_template_kwargs
 *                 enable_thinking (the template's reasoning switch)
 * Images and documents are refused (text models).
 */
#ifndef LARDER_SERVER_ANTHROPIC_REQUEST_H
#define LARDER_SERVER_ANTHROPIC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "server/openai_request.h"

typedef struct anthropic_request {
    openai_request chat;          /* the conversation as an OpenAI chat request (owned) */
    bool dropped_billing_header;  /* a billing header was removed from the system prompt */
} anthropic_request;

typedef struct anthropic_parse_options {
    bool count_tokens;            /* /count_tokens: max_tokens is not required */
    bool keep_billing_header;     /* --keep-billing-header */
} anthropic_parse_options;

/* Parses body[0, len). 0 and *out filled (free with anthropic_request_free),
 * or -1 with err (ERR_INVALID; ERR_NOMEM) and nothing to free. */
int anthropic_request_parse(const char *body, size_t len, const anthropic_parse_options *o, anthropic_request *out,
                            larder_error *err);
void anthropic_request_free(anthropic_request *r);

/* Length of the billing-header prefix of text ("x-anthropic-billing-header:"
 * then `key=value;` fields and spaces), 0 when text does not start with it. */
size_t anthropic_billing_header_len(const char *text);

#endif
