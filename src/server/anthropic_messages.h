/*
 * anthropic_messages.h — Anthropic's Messages API over the engine (what
 * Claude Code and the official Anthropic SDKs speak, ANTHROPIC_BASE_URL):
 *
 *   POST /v1/messages                 a conversation → one assistant message:
 *                                     content blocks (thinking, text, tool_use),
 *                                     stop_reason, usage with cache_read_input_tokens;
 *                                     streamed as Anthropic's SSE events
 *                                     (message_start, content_block_start/delta/stop
 *                                     with text_delta / thinking_delta /
 *                                     input_json_delta, message_delta, message_stop,
 *                                     ping while the prompt is computed)
 *   POST /v1/messages/count_tokens    {"input_tokens": N} of the rendered prompt
 *
 * Errors come in Anthropic's shape, {"type":"error","error":{"type":…,
 * "message":…}}, as a JSON body or (mid-stream) an `error` event. The body is
 * converted by anthropic_request.h and run by chat_session.h. Handlers take
 * the server_app (routes.h) as their app pointer.
 */
#ifndef LARDER_SERVER_ANTHROPIC_MESSAGES_H
#define LARDER_SERVER_ANTHROPIC_MESSAGES_H

#include "server/http_server.h"

void anthropic_messages_handle(void *app, const http_request *req, http_reply *reply);
void anthropic_count_tokens_handle(void *app, const http_request *req, http_reply *reply);

/* Fills reply with an Anthropic error body for status (type from the status:
 * invalid_request_error, authentication_error, not_found_error,
 * request_too_large, overloaded_error (503, with Retry-After), api_error). */
void anthropic_reply_error(http_reply *reply, int status, const char *message);

#endif
