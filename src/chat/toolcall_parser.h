/*
 * toolcall_parser.h — turns a model's output text, fed piece by piece as it
 * is generated, into OpenAI chat pieces: content, reasoning_content and
 * tool_calls, with streaming deltas emitted as soon as they are certain.
 *
 * Use, per request:
 *
 *     toolcall_format fmt = toolcall_format_from_template(chat_prompt_source(cp));
 *     toolcall_parser_options o = {
 *         .format = &fmt,
 *         .tools_json = req_tools_json,    // NULL / "[]" / tool_choice "none": no tool calls
 *         .starts_in_reasoning = toolcall_prompt_opens_reasoning(&fmt, prompt, prompt_len),
 *     };
 *     toolcall_parser *p = toolcall_parser_create(&o, &err);
 *     for each detokenized piece:
 *         toolcall_parser_feed(p, piece, piece_len, &err);
 *         for (size_t i = 0; i < toolcall_parser_event_count(p); i++)
 *             send_sse(toolcall_parser_event(p, i));
 *     toolcall_parser_finish(p, &err);         // flushes held text: more events
 *     ... events again, then toolcall_parser_result(p) for the final message
 *     toolcall_parser_free(p);
 *
 * Contract:
 *   - Pieces are any split of the text (whole UTF-8 sequences as the
 *     streaming detokenizer emits them, or single bytes): the results and the
 *     concatenated deltas are the same for every split.
 *   - Concatenated content deltas == result.content; reasoning deltas ==
 *     result.reasoning; each call's argument deltas == its arguments, a JSON
 *     object text.
 *   - Text that may be the start of a marker is held back until resolved.
 *     XML-style calls (Qwen3-Coder / Nemotron / Seed, MiniMax-M2, GLM) stream:
 *     CALL_START as soon as the function name is parsed and is one of the
 *     request's tools, then the JSON arguments in fragments as the
 *     parameters arrive (string-typed values as their text comes, other
 *     types when the parameter closes; toolcall_block.h "streaming calls").
 *     Such a committed call stays a call: if its block breaks later, or the
 *     output ends inside it, its arguments are closed where they stand and
 *     the text from the break on is content. JSON-style calls stream too
 *     once `{"name": N, "arguments": {` (Hermes, Llama 3 "parameters") or
 *     Mistral's `N[ARGS]{` is read with N a tool: the arguments go out up to
 *     the last point where they can be closed (tjson_stream), and broken
 *     arguments are closed there. Other JSON shapes (arguments first, a JSON
 *     array of calls, arguments as a string) are emitted whole (CALL_START,
 *     then one CALL_ARGS) when their block is complete and valid — closing
 *     marker parsed, JSON valid, function one of the tools. A block that
 *     commits no call and
 *     turns out malformed (bad JSON, unknown function, unclosed at the end,
 *     larger than TOOLCALL_MAX_BLOCK_BYTES) is emitted as plain content,
 *     byte for byte.
 *   - Reasoning is recognised only at the start of the output (leading
 *     whitespace aside), or from the first byte when starts_in_reasoning; an
 *     unclosed reasoning block is all reasoning. Leading and trailing
 *     whitespace of content and of reasoning is dropped (whitespace inside is
 *     kept), so text around markers comes out clean.
 *   - Special tokens that act as markers ([TOOL_CALLS], <|python_tag|>,
 *     <think> where it is a special token) must be in the fed text: the
 *     detokenizer must render them for this parser.
 *   - Work is linear in the output: every byte is scanned a bounded number
 *     of times (cursors persist between pieces).
 */
#ifndef LARDER_CHAT_TOOLCALL_PARSER_H
#define LARDER_CHAT_TOOLCALL_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "chat/toolcall_format.h"

/* A call block (from its open marker) longer than this is content. */
#define TOOLCALL_MAX_BLOCK_BYTES ((size_t)8 << 20)
/* Most tool calls in one output; later blocks stay content. */
#define TOOLCALL_MAX_CALLS 128
/* Longest function or parameter name, in bytes. */
#define TOOLCALL_MAX_NAME_BYTES 256
/* Most parameters in one XML call. */
#define TOOLCALL_MAX_PARAMS 256

typedef struct toolcall_parser toolcall_parser;

typedef struct toolcall_parser_options {
    const toolcall_format *format;  /* copied; NULL: plain content only */
    const char *tools_json;         /* the request's `tools` array (NUL-terminated JSON);
                                       NULL or no tools: no tool calls are parsed */
    bool starts_in_reasoning;       /* the prompt opened the reasoning block */
    uint64_t id_seed;               /* 0: random ids; else a fixed seed (tests) */
} toolcall_parser_options;

typedef enum toolcall_event_kind {
    TOOLCALL_EVENT_CONTENT = 1,     /* text: a content delta */
    TOOLCALL_EVENT_REASONING,       /* text: a reasoning_content delta */
    TOOLCALL_EVENT_CALL_START,      /* index, id, name: a new tool call */
    TOOLCALL_EVENT_CALL_ARGS,       /* index, text: a delta of that call's arguments */
} toolcall_event_kind;

typedef struct toolcall_event {
    toolcall_event_kind kind;
    size_t index;          /* tool call index (0, 1, ...) for CALL_* events */
    const char *text;      /* delta bytes (not NUL-terminated) for CONTENT/REASONING/CALL_ARGS */
    size_t len;
    const char *id;        /* CALL_START: NUL-terminated id */
    const char *name;      /* CALL_START: NUL-terminated function name */
} toolcall_event;

typedef struct toolcall_call {
    char *id;              /* "call_" + 24 alphanumerics; Mistral: 9 alphanumerics (its templates demand it) */
    char *name;            /* function name */
    char *arguments;       /* JSON object text */
} toolcall_call;

typedef struct toolcall_result {
    const char *content;   /* NUL-terminated, "" when none */
    size_t content_len;
    const char *reasoning; /* NUL-terminated, "" when none */
    size_t reasoning_len;
    const toolcall_call *calls;
    size_t n_calls;
} toolcall_result;

/* NULL with err: ERR_INVALID when tools_json is not a tools array; ERR_NOMEM. */
toolcall_parser *toolcall_parser_create(const toolcall_parser_options *o, larder_error *err);
void toolcall_parser_free(toolcall_parser *p);

/* Feeds text[0, len). Clears the previous events, then queues the new ones.
 * -1 with err only on ERR_NOMEM (the parser is then unusable) or when called
 * after finish (ERR_INVALID). */
int toolcall_parser_feed(toolcall_parser *p, const char *text, size_t len, larder_error *err);

/* Ends the output: resolves every held byte (unfinished blocks become
 * content) and queues the last events. Calling it twice is harmless. */
int toolcall_parser_finish(toolcall_parser *p, larder_error *err);

/* Events of the last feed/finish call; valid until the next feed/finish/free. */
size_t toolcall_parser_event_count(const toolcall_parser *p);
toolcall_event toolcall_parser_event(const toolcall_parser *p, size_t i);

/* The message so far (complete after finish); valid until the next
 * feed/finish/free. */
toolcall_result toolcall_parser_result(const toolcall_parser *p);

#endif
