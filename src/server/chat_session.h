/*
 * chat_session.h — one chat generation, run for the protocol routes that
 * speak something other than OpenAI chat completions (Anthropic Messages,
 * OpenAI Responses): the request, already converted to an OpenAI chat
 * request (openai_request), is rendered through the chat template,
 * tokenized, submitted to the engine, and its output is read back as parsed
 * pieces (content, reasoning, tool-call starts and argument fragments, the
 * toolcall_parser's events) plus a finish reason and usage. Each protocol
 * writes those pieces in its own wire format.
 *
 * tool_choice required or a named tool forces a call: the prompt ends with
 * the model's call opener (chat_request_prompt_tokens) and the parser reads
 * it before the generated text, so the answer is that call.
 *
 * One choice only (n = 1). Stop strings are matched before the parser sees
 * the text; which one matched is reported. Not thread-safe: one HTTP thread
 * drives a session.
 *
 *     chat_session *s = chat_session_start(app, &req, &opts, &err);  // req is taken
 *     while (!chat_session_done(s)) {
 *         int r = chat_session_step(s, 1000);
 *         if (r < 0) ... chat_session_error(s) ...
 *         for (i < chat_session_event_count(s)) write(chat_session_event(s, i));
 *     }
 *     chat_session_free(s);   // cancels the generation if it still runs
 */
#ifndef LARDER_SERVER_CHAT_SESSION_H
#define LARDER_SERVER_CHAT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "chat/chat_prompt_tokens.h"
#include "chat/toolcall_parser.h"
#include "sample/sample.h"
#include "server/openai_request.h"
#include "server/routes.h"

typedef struct chat_session chat_session;

typedef enum chat_finish {
    CHAT_FINISH_NONE = 0,     /* still running */
    CHAT_FINISH_END,          /* the model ended its turn */
    CHAT_FINISH_LENGTH,       /* max tokens or the end of the context */
    CHAT_FINISH_STOP_STRING,  /* one of the request's stop strings matched */
    CHAT_FINISH_TOOL_CALLS,   /* the answer holds tool calls */
} chat_finish;

typedef struct chat_session_options {
    const char *id_prefix;    /* the request id's prefix: "msg_", "resp_" */
} chat_session_options;

/* A chat request's prompt ids as the engine gets them: chat_prompt_tokens
 * with the server's settings (content marking unless
 * --parse-special-in-content, the model's tool-call format, the tools left
 * out for tool_choice none, a forced call's opener for required / a named
 * tool). The one path for the chat completions route and the sessions.
 * max_tokens, after_render/ctx, res: chat_prompt_tokens_options'. */
int chat_request_prompt_tokens(server_app *app, const openai_request *req, size_t max_tokens,
                               int (*after_render)(void *ctx, larder_error *err), void *ctx, token_list *out,
                               chat_prompt_tokens_result *res, larder_error *err);

/* The request's tools as the output parser takes them (*tools_json
 * malloc'd JSON, cJSON_free it; NULL: no calls are parsed): none for
 * tool_choice none or no tools, only the forced one for a named tool.
 * -1 when out of memory. */
int chat_request_parser_tools(const openai_request *req, char **tools_json);

/* The request's sampling settings (OpenAI's defaults, not llama.cpp's:
 * temperature 1, no top-k / min-p unless asked) over sampler_params_default;
 * the logit bias is the caller's. */
void chat_request_sampling(const openai_request *req, sampler_params *p);

/* The tools the prompt shows: none for tool_choice none. */
const cJSON *chat_request_prompt_tools(const openai_request *req);

/* Builds the prompt from req (taken over whatever the outcome: freed by the
 * session, or here on failure) and submits it. NULL with err: ERR_INVALID
 * (a bad request: 400), ERR_LIMIT (the queue is full: 503), ERR_NOMEM. */
chat_session *chat_session_start(server_app *app, openai_request *req, const chat_session_options *o,
                                 larder_error *err);

/* The number of tokens req's prompt renders to (what /count_tokens
 * answers), without running anything. -1 with err as chat_session_start. */
int chat_session_count_tokens(server_app *app, const openai_request *req, int32_t *n_tokens, larder_error *err);

/* Waits up to timeout_ms for the next engine event and applies it; the
 * events it produced are then listed by chat_session_event_*.
 * 1: an event was applied; 0: none came in time; -1: the generation failed
 * (chat_session_error). */
int chat_session_step(chat_session *s, int timeout_ms);

/* The parsed pieces of the last step (valid until the next step or free). */
size_t chat_session_event_count(const chat_session *s);
toolcall_event chat_session_event(const chat_session *s, size_t i);

bool chat_session_done(const chat_session *s);
chat_finish chat_session_finish(const chat_session *s);
/* The stop string that matched (CHAT_FINISH_STOP_STRING), else NULL. */
const char *chat_session_stop_string(const chat_session *s);
/* The whole answer (complete once done). */
toolcall_result chat_session_result(const chat_session *s);

/* After -1 from step: the HTTP status (400, 503, 500) and why. */
int chat_session_error(const chat_session *s, const char **message);

typedef struct chat_usage {
    int32_t prompt_tokens, cached_tokens, completion_tokens;
} chat_usage;
/* Token counts: the prompt's are known from the start (cached ones at the
 * end), completion tokens as they come. */
chat_usage chat_session_usage(const chat_session *s);

/* The request id ("msg_…"), the model name and the request. */
const char *chat_session_id(const chat_session *s);
const openai_request *chat_session_request(const chat_session *s);
int64_t chat_session_created_s(const chat_session *s);

/* Logs the request's summary line and counts its tokens in the metrics;
 * `aborted`: the client went away first. Then frees (cancelling the
 * generation if the engine is still at it). NULL is fine. */
void chat_session_free(chat_session *s, bool aborted);

#endif
