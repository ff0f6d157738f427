/*
 * openai_responses.h — OpenAI's Responses API over the engine (what Codex
 * CLI speaks with a provider whose wire_api is "responses", and the official
 * `openai` clients' responses.create):
 *
 *   POST /v1/responses    a conversation (responses_request.h) → a response
 *                         object: output items (reasoning with reasoning_text,
 *                         message with output_text, function_call), status
 *                         completed or incomplete (max_output_tokens), usage
 *                         with input_tokens_details.cached_tokens; streamed as
 *                         response.created, response.in_progress,
 *                         response.output_item.added/done,
 *                         response.content_part.added/done,
 *                         response.output_text.delta/done,
 *                         response.reasoning_text.delta/done,
 *                         response.function_call_arguments.delta/done and
 *                         response.completed (response.incomplete), each with
 *                         its sequence_number; an `error` event on failure.
 *
 * Stateless: nothing is stored, whatever `store` says. Errors before the
 * stream are OpenAI-shaped JSON (http_reply_error). The handler takes the
 * server_app (routes.h) as its app pointer.
 */
#ifndef LARDER_SERVER_OPENAI_RESPONSES_H
#define LARDER_SERVER_OPENAI_RESPONSES_H

#include "server/http_server.h"

void openai_responses_handle(void *app, const http_request *req, http_reply *reply);

#endif
