/*
 * routes.h — the OpenAI-compatible API over the engine: what each route
 * does with a request, and the state they share (server_app).
 *
 *   POST /v1/chat/completions   chat template → tokens → engine → text, tool calls
 *   POST /v1/completions        prompt text or ids → engine → text
 *   GET  /v1/models             the served model
 *   GET  /health                200 once the model is loaded (no auth)
 *   GET  /metrics               Prometheus text
 *   GET  /v1/cache              prompt-cache statistics (JSON)
 *   DELETE /v1/cache            drop every idle cached entry
 *   POST /v1/messages (+ /count_tokens)   Anthropic Messages: anthropic_messages.h
 *   POST /v1/responses          OpenAI Responses: openai_responses.h
 *
 * Each request's output is read from its engine channel on the connection's
 * thread: detokenized, cut at stop strings, parsed for tool calls and
 * reasoning (chat), and written as one JSON response or as SSE chunks.
 */
#ifndef LARDER_SERVER_ROUTES_H
#define LARDER_SERVER_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/chat_prompt.h"
#include "chat/toolcall_format.h"
#include "engine/engine.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/prewarm.h"

struct tokenizer;

typedef struct server_app {
    engine *eng;
    const struct tokenizer *tok;
    const chat_prompt *chat;        /* the model's chat template (NULL: chat route answers 400) */
    toolcall_format tool_format;    /* tool-call and reasoning syntax read from that template */
    const char *model_name;         /* id in responses and /v1/models */
    int32_t ctx_tokens;             /* per sequence */
    int32_t n_vocab;
    int64_t created_unix_s;         /* for /v1/models */
    int32_t max_n;                  /* most choices per request (--max-n; 0: OPENAI_MAX_CHOICES) */
    bool parse_special_in_content;  /* --parse-special-in-content: content's special-token text is parsed */
    metrics metrics;
    prewarm_ctx prewarm;            /* next-turn pre-warming (prewarm.h) */
    struct kv_disk *disk;           /* the disk tier (NULL: none), for /v1/cache and /metrics */
    bool keep_billing_header;       /* --keep-billing-header: Claude Code's system block stays in the prompt */
} server_app;

/* The route table (static storage). */
const http_route *routes_table(int *n_routes);

/* http_server_config.error_for_path: the server's own errors (401, 404,
 * 405, 413, 415, 429, ...) on /v1/messages and below in Anthropic's shape
 * (anthropic_reply_error), so the Anthropic SDKs and Claude Code read their
 * type; false for every other path (OpenAI's shape, which the Responses
 * routes speak too). */
bool routes_error_for_path(const char *path, int status, const char *message, http_reply *reply);

#endif
