/*
 * prewarm.h — next-turn pre-warming: when a chat response completes, the
 * server knows the conversation as the client will send it back (this
 * request's messages plus the assistant message it returned). It renders
 * that with the model's template, followed by a placeholder next message (a
 * user message; a tool result when the answer ended in tool calls), takes
 * the token prefix before the placeholder's content, and submits it to the
 * engine as a pre-warming job (engine_job.prefill_only: lowest priority,
 * computed only while the engine is otherwise idle, stopped at once by any
 * real request). The template's own rewriting of history (MiniMax-M2 drops
 * an assistant turn's <think> once a user message follows; Qwen3 drops it
 * always) is thereby in the cache before the next request arrives, instead
 * of diverging at the first earlier assistant turn.
 *
 * Rendering and tokenizing a long conversation takes milliseconds, so it runs
 * on a short-lived detached thread, never on the connection that answered:
 * at most PREWARM_MAX_THREADS at once, a turn beyond that is skipped
 * (counted). Everything it needs is copied first. An answer of tool calls
 * only is pre-warmed in both shapes clients send it back in (content null
 * or "") when the template renders them differently.
 */
#ifndef LARDER_SERVER_PREWARM_H
#define LARDER_SERVER_PREWARM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "chat/chat_prompt.h"
#include "chat/toolcall_parser.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

/* Most pre-warming renderings in flight at once. */
#define PREWARM_MAX_THREADS 2
/* The placeholder's content: the prefix is the rendered text before it. */
#define PREWARM_PLACEHOLDER "\x1flarder-next-message-placeholder\x1f"

/* What pre-warming needs of the server (not owned; outlive every call). */
typedef struct prewarm_ctx {
    engine *eng;
    const tokenizer *tok;
    const chat_prompt *chat;
    atomic_bool enabled;            /* false: --no-prewarm, or shutting down */
    atomic_int threads;             /* renderings in flight */
    atomic_uint_least64_t submitted;/* jobs handed to the engine */
    atomic_uint_least64_t skipped;  /* turns not pre-warmed (busy, render or tokenize failed) */
} prewarm_ctx;

/* One finished chat turn: the request's rendering inputs and the assistant
 * message returned (as in the response: content, reasoning_content,
 * tool_calls). Copied by prewarm_chat_turn. */
typedef struct prewarm_turn {
    const cJSON *messages;
    const cJSON *tools;
    const char *reasoning_effort;
    const cJSON *template_kwargs;
    toolcall_result answer;
} prewarm_turn;

/* Pre-warms the turn after `turn` in the background. Returns 0 when a
 * rendering was started, 1 when skipped (disabled, PREWARM_MAX_THREADS busy),
 * -1 with err when out of memory. */
int prewarm_chat_turn(prewarm_ctx *ctx, const prewarm_turn *turn, larder_error *err);

/* The messages of the next request up to its placeholder: a new array
 * (messages + the answer as an assistant message + a placeholder user
 * message, or a tool message answering the first tool call). NULL when out
 * of memory. An answer of tool calls only has content null, as the response
 * gave it. */
cJSON *prewarm_next_messages(const prewarm_turn *turn);

/* Renders the next request (prewarm_next_messages) and tokenizes the text
 * before the placeholder's content, without its last token (whose merge may
 * depend on the text that follows). With empty_content, an answer of tool
 * calls only is given content "" instead of null (agents such as OpenCode
 * send it back so; templates render the two differently: MiniMax-M2 writes
 * "None", Qwen3 raises on null), and 1 is returned for any other answer.
 * 0 with out filled (n may be 0), -1 with err (the template raised, or the
 * placeholder is not in the text: ERR_INVALID). */
int prewarm_prefix_tokens(const chat_prompt *chat, const tokenizer *tok, const prewarm_turn *turn, bool empty_content,
                          token_list *out, larder_error *err);

/* Waits (up to timeout_ms) until no rendering is in flight: for shutdown. */
void prewarm_drain(prewarm_ctx *ctx, int timeout_ms);

/* Appends the pre-warming counters to a Prometheus exposition. */
void prewarm_render_metrics(const prewarm_ctx *ctx, const engine_stats *st, strbuf *out);

#endif
